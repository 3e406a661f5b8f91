"""The cost of a LoRA adapter before training: trainable parameters, stored bytes and share of the model.

The numbers come from the same code path as training. The task model of the shared base is built on
the meta device (no memory for weights) and wrapped by `training.lora.build_lora_config` and PEFT's
`get_peft_model`. Its parameters are then counted the way `training.cost` counts a trained run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from lora_playground.errors import ConfigError, ModelError
from lora_playground.models.shared_base import GENERATION_NEEDS_DECODER, SharedBase
from lora_playground.tasks.task import TaskType
from lora_playground.training.config import TrainConfig


@dataclass(frozen=True)
class LoraFootprint:
    """What a LoRA run on a base will train and store.

    `trainable_params` and `total_params` match `CostReport` of the trained run (total includes the
    adapter). `adapter_bytes` is the size of the tensors in `adapter_model.safetensors`: LoRA matrices,
    DoRA magnitudes and, for classification, the head. The file adds a JSON header of a few KiB.
    `full_model_bytes` is the size of the task model's own weights, i.e. what a full finetune stores.
    """

    trainable_params: int
    total_params: int
    base_params: int
    adapter_bytes: int
    full_model_bytes: int
    target_modules: list[str]
    adapted_layers: int

    @property
    def trainable_fraction(self) -> float:
        """Trainable parameters as a fraction of all parameters of the adapted model."""
        return self.trainable_params / self.total_params if self.total_params else 0.0

    @property
    def size_fraction(self) -> float:
        """Adapter tensor bytes as a fraction of the full model's tensor bytes."""
        return self.adapter_bytes / self.full_model_bytes if self.full_model_bytes else 0.0

    def to_dict(self) -> dict:
        return {**asdict(self), "trainable_fraction": self.trainable_fraction, "size_fraction": self.size_fraction}


def estimate_lora(
    base: SharedBase,
    config: TrainConfig,
    task_type: TaskType = "classification",
    num_labels: int = 2,
) -> LoraFootprint:
    """Count what LoRA with `config` trains and stores on `base`, without allocating any weights.

    `num_labels` sets the size of the classification head (ignored for generation). Raises ConfigError
    for a non-LoRA config or invalid options, and ModelError for target modules the base does not have
    (the message lists its linear layers). Takes well under a second for a 135M-parameter base.
    """
    # PEFT is imported here, not at module level, because the app's Learn screen imports this module and
    # importing PEFT (with transformers) would add seconds to the app's start-up.
    from peft import get_peft_model, get_peft_model_state_dict

    from lora_playground.training.lora import build_lora_config

    if config.method != "lora":
        raise ConfigError(f"method={config.method!r} has no adapter to estimate.", "Use method='lora'.")
    config.validate()
    if task_type == "classification":
        model = base.meta_model("classification", num_labels=num_labels)
    elif base.spec.architecture == "decoder":
        model = base.meta_model("causal_lm")
    else:
        raise ModelError(
            f"Base model {base.spec.name!r} is an encoder: {GENERATION_NEEDS_DECODER}.",
            "Pick a decoder base for generation tasks.",
        )

    # parameters() yields a tied weight once, because tied modules share one Parameter object.
    base_parameters = list(model.parameters())
    base_params = sum(parameter.numel() for parameter in base_parameters)
    full_model_bytes = sum(parameter.numel() * parameter.element_size() for parameter in base_parameters)

    lora_config = build_lora_config(model, config, task_type)
    peft_model = get_peft_model(model, lora_config)

    trainable_params = 0
    total_params = 0
    for parameter in peft_model.parameters():
        total_params += parameter.numel()
        if parameter.requires_grad:
            trainable_params += parameter.numel()
    # Counted as the adapter store saves it: without the frozen base's embeddings, and without the Hub
    # lookup that PEFT's default save_embedding_layers="auto" makes.
    adapter_state = get_peft_model_state_dict(peft_model, save_embedding_layers=False)
    adapter_bytes = sum(tensor.numel() * tensor.element_size() for tensor in adapter_state.values())
    adapted_layers = sum(1 for name, _ in peft_model.named_modules() if name.endswith(".lora_A"))

    targets = lora_config.target_modules
    return LoraFootprint(
        trainable_params=trainable_params,
        total_params=total_params,
        base_params=base_params,
        adapter_bytes=adapter_bytes,
        full_model_bytes=full_model_bytes,
        target_modules=sorted(targets) if not isinstance(targets, str) else [targets],
        adapted_layers=adapted_layers,
    )
