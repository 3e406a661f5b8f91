"""Confusion matrix: how many examples of each reference class were predicted as each class."""

import evaluate

from lora_playground.evaluation.metrics import classification_scores
from lora_playground.evaluation.metrics.module_base import metric_info

_INPUTS = """
Args:
    predictions (list of int): predicted class indices.
    references (list of int): reference class indices, one per prediction.
    labels (list of int, optional): the classes in row and column order; default: the sorted classes that
        occur in predictions or references. Examples with a class outside labels are not counted.
Returns:
    confusion_matrix (list of list of int): row i is reference class labels[i], column j is predicted
        class labels[j].
"""


class ConfusionMatrix(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return metric_info(__doc__, "int64", _INPUTS)

    def _compute(self, predictions, references, labels=None) -> dict:
        matrix = classification_scores.confusion_matrix(predictions, references, labels)
        return {"confusion_matrix": matrix.tolist()}
