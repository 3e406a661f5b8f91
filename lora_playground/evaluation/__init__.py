"""Evaluation: predictions, offline `evaluate` metrics, uncertainty estimates and run comparisons."""

from lora_playground.evaluation.classification import (
    ClassificationPredictions,
    classification_metrics,
    predict_classification,
)
from lora_playground.evaluation.generation import generate_responses, generation_metrics, response_perplexity
from lora_playground.evaluation.latency import InferenceLatency
from lora_playground.evaluation.metrics import compute_metric, load_metric
from lora_playground.evaluation.prompting import encode_chat, render_conversation, render_prompt
from lora_playground.evaluation.report import ComparisonReport, MetricSpec, RunResult, compare_runs
from lora_playground.evaluation.statistics import bootstrap_ci, mcnemar

__all__ = [
    "ClassificationPredictions",
    "ComparisonReport",
    "InferenceLatency",
    "MetricSpec",
    "RunResult",
    "bootstrap_ci",
    "classification_metrics",
    "compare_runs",
    "compute_metric",
    "encode_chat",
    "generate_responses",
    "generation_metrics",
    "load_metric",
    "mcnemar",
    "predict_classification",
    "render_conversation",
    "render_prompt",
    "response_perplexity",
]
