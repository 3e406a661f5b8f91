"""Evaluation: predictions, offline `evaluate` metrics, uncertainty estimates and run comparisons.

Names are imported on first use, so importing a light submodule (for example `formatting`, or the
metric modules that `evaluate.load` executes) does not import torch and transformers.
"""

import importlib

_EXPORTS = {
    "ClassificationPredictions": "classification",
    "classification_metrics": "classification",
    "predict_classification": "classification",
    "generate_responses": "generation",
    "generation_metrics": "generation",
    "response_perplexity": "generation",
    "InferenceLatency": "latency",
    "compute_metric": "metrics",
    "load_metric": "metrics",
    "encode_chat": "prompting",
    "render_conversation": "prompting",
    "render_prompt": "prompting",
    "ComparisonReport": "report",
    "MetricSpec": "report",
    "RunResult": "report",
    "compare_runs": "report",
    "bootstrap_ci": "statistics",
    "mcnemar": "statistics",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f"{__name__}.{_EXPORTS[name]}")
    return getattr(module, name)


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
