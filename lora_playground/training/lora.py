"""LoRA setup: wrap a model from the shared base in a PEFT LoRA adapter with a trainable head."""

import logging

from peft import LoraConfig, PeftModel, TaskType, get_peft_model
from transformers import PreTrainedModel

from lora_playground.errors import ConfigError
from lora_playground.models.layers import (
    classification_head_names,
    default_target_modules,
    validate_target_modules,
)
from lora_playground.tasks.task import TaskType as PlaygroundTaskType
from lora_playground.training.config import TrainConfig
from lora_playground.training.full import find_transformer_blocks

logger = logging.getLogger(__name__)

ALL_LINEAR = "all-linear"

_PEFT_TASK_TYPES = {"classification": TaskType.SEQ_CLS, "generation": TaskType.CAUSAL_LM}


def build_lora_config(model: PreTrainedModel, config: TrainConfig, task_type: PlaygroundTaskType) -> LoraConfig:
    """Translate a TrainConfig into a PEFT LoraConfig for `model`.

    `config.target_modules=None` picks the default for the model's architecture, "all-linear" lets PEFT
    pick every linear layer except the output layer, and a list is checked against the model (ModelError
    listing the model's linear layers when a name does not exist). For classification the head is listed
    in `modules_to_save`, so it is trained in full and saved inside the adapter.
    """
    if task_type not in _PEFT_TASK_TYPES:
        raise ConfigError(
            f"Task type {task_type!r} is not supported for LoRA.", f"Use one of {sorted(_PEFT_TASK_TYPES)}."
        )

    targets = config.target_modules
    if targets is None:
        targets = default_target_modules(model.config.model_type)
    elif isinstance(targets, str) and targets != ALL_LINEAR:
        targets = [targets]
    if targets != ALL_LINEAR:
        validate_target_modules(model, targets)

    modules_to_save = None
    if task_type == "classification":
        modules_to_save = classification_head_names(model)
    layers_to_transform, layers_pattern = _last_blocks(model, config.lora_last_n_blocks)

    return LoraConfig(
        task_type=_PEFT_TASK_TYPES[task_type],
        r=config.rank,
        lora_alpha=config.alpha,
        lora_dropout=config.dropout,
        target_modules=targets,
        use_rslora=config.use_rslora,
        use_dora=config.use_dora,
        modules_to_save=modules_to_save,
        layers_to_transform=layers_to_transform,
        layers_pattern=layers_pattern,
        bias="none",
    )


def _last_blocks(model: PreTrainedModel, count: int | None) -> tuple[list[int] | None, str | None]:
    """Return PEFT's (layers_to_transform, layers_pattern) for the last `count` blocks, or (None, None)."""
    if count is None:
        return None, None
    blocks_name, blocks = find_transformer_blocks(model)
    if count > len(blocks):
        raise ConfigError(
            f"lora_last_n_blocks={count} exceeds the {len(blocks)} transformer blocks of the model.",
            f"Use a value from 1 to {len(blocks)}, or leave it unset to adapt every block.",
        )
    # PEFT finds a layer's index after the last part of the blocks' name ("layers" in model.layers.7.mlp).
    return list(range(len(blocks) - count, len(blocks))), blocks_name.rsplit(".", 1)[-1]


def apply_lora(
    model: PreTrainedModel,
    config: TrainConfig,
    task_type: PlaygroundTaskType,
    adapter_name: str = "default",
) -> PeftModel:
    """Wrap `model` in a new LoRA adapter named `adapter_name`; only LoRA weights and the head train.

    PEFT replaces the target linear layers in place, so `model` itself is changed and must not be used
    on its own afterwards. The frozen base weights are not copied: a model from `SharedBase` keeps
    sharing them with every other adapter. LoRA A matrices are initialized from torch's global RNG, so
    seed it first for reproducible runs.
    """
    lora_config = build_lora_config(model, config, task_type)
    peft_model = get_peft_model(model, lora_config, adapter_name=adapter_name)

    trainable, total = peft_model.get_nb_trainable_parameters()
    logger.info(
        "LoRA adapter %r: r=%d, alpha=%s, targets=%s, %d of %d parameters trainable (%.3f%%)",
        adapter_name,
        config.rank,
        config.alpha,
        lora_config.target_modules,
        trainable,
        total,
        100.0 * trainable / total,
    )
    return peft_model
