"""Builders shared by the adapter store and compatibility tests: a trained-looking LoRA model and its metadata."""

import torch
from peft import LoraConfig, TaskType, get_peft_model

from lora_playground.adapters import AdapterMetadata, BaseModelRef
from lora_playground.models import default_target_modules
from lora_playground.tasks import Task
from lora_playground.training.config import TrainConfig

LABELS = ["ham", "spam", "other"]
TEXTS = ["win a free prize now", "see you at lunch", "a somewhat longer message about the meeting tomorrow"]


def perturbed_lora_model(base, *, adapter_name: str = "default", seed: int = 0, use_dora: bool = False):
    """Return a LoRA classification model whose adapter and head weights are moved off their initial values.

    LoRA initialises B to zero, so without the perturbation the adapter would not change predictions
    and a reload that dropped it would go unnoticed.
    """
    torch.manual_seed(seed)
    model = base.classification_model(len(LABELS), LABELS)
    config = LoraConfig(
        task_type=TaskType.SEQ_CLS,
        r=4,
        lora_alpha=8,
        target_modules=default_target_modules(base.model_type),
        use_dora=use_dora,
    )
    peft_model = get_peft_model(model, config, adapter_name=adapter_name)
    with torch.no_grad():
        for parameter in peft_model.parameters():
            if parameter.requires_grad:
                parameter.add_(torch.randn_like(parameter) * 0.2)
    return peft_model.eval()


def metadata_for(base, kind: str = "lora", task_type: str = "classification") -> AdapterMetadata:
    labels = LABELS if task_type == "classification" else []
    return AdapterMetadata(
        name="unnamed",
        kind=kind,
        task=Task(name="toy-spam", type=task_type, label_names=labels).to_dict(),
        base_model=BaseModelRef.from_shared_base(base),
        train_config=TrainConfig(method=kind).to_dict(),
        metrics={"accuracy": 0.5},
        data_fingerprint="0" * 64,
    )


def logits(model, tokenizer, texts=TEXTS) -> torch.Tensor:
    inputs = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        return model(**inputs).logits
