"""Workflows shared by the CLI and the app: train-evaluate-store, compare, and side-by-side inference.

Names are imported lazily, so `import lora_playground.pipeline` stays cheap until one is used.
"""

import importlib

_EXPORTS = {
    "evaluate_model": "lora_playground.pipeline.evaluate",
    "ComparisonOutcome": "lora_playground.pipeline.experiment",
    "StoredRun": "lora_playground.pipeline.experiment",
    "compare": "lora_playground.pipeline.experiment",
    "compare_stored": "lora_playground.pipeline.experiment",
    "train_and_store": "lora_playground.pipeline.experiment",
    "answer_side_by_side": "lora_playground.pipeline.inference",
    "stream_side_by_side": "lora_playground.pipeline.inference",
    "evaluate_merge": "lora_playground.pipeline.merge_evaluation",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
