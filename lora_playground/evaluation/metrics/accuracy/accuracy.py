"""Accuracy: the fraction of predicted class indices that equal the reference class index."""

import evaluate

from lora_playground.evaluation.metrics import classification_scores
from lora_playground.evaluation.metrics.module_base import metric_info

_INPUTS = """
Args:
    predictions (list of int): predicted class indices.
    references (list of int): reference class indices, one per prediction.
Returns:
    accuracy (float): correct predictions / examples, 0.0 to 1.0.
"""


class Accuracy(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return metric_info(__doc__, "int64", _INPUTS)

    def _compute(self, predictions, references) -> dict:
        return {"accuracy": classification_scores.accuracy(predictions, references)}
