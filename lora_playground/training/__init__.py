"""Training: TrainConfig, LoRA and full-finetune setup, tokenization and collators, the Trainer loop, costs.

The heavy names (`train`, `TrainedRun`, `apply_lora`, ...) are imported on first access, so importing
`lora_playground.training.config` alone does not load transformers or peft.
"""

from importlib import import_module

from lora_playground.training.config import TrainConfig

_LAZY = {
    "train": "lora_playground.training.trainer",
    "TrainedRun": "lora_playground.training.trainer",
    "CostReport": "lora_playground.training.cost",
    "measure_peak_rss": "lora_playground.training.cost",
    "apply_lora": "lora_playground.training.lora",
    "build_lora_config": "lora_playground.training.lora",
    "prepare_full_finetune": "lora_playground.training.full",
}

__all__ = ["TrainConfig", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
