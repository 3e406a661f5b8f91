"""Base classes and the `evaluate.MetricInfo` shared by the local metric modules in this folder.

A metric module imports this module (not the classes by name): `evaluate.load` picks the first
`evaluate.Metric` subclass it finds in the module's namespace, which must be the module's own class.
"""

import datasets
import evaluate

from lora_playground.evaluation.metrics import classification_scores, text_scores

_CITATION = "Implemented in LoRA Playground (lora_playground.evaluation.metrics)."

_AVERAGED_INPUTS = """
Args:
    predictions (list of int): predicted class indices.
    references (list of int): reference class indices, one per prediction.
    labels (list of int, optional): the classes to score, in output order; default: the sorted classes that
        occur in predictions or references. Pass every class index so that a class missing from the
        test data still counts (as 0) in the macro average.
    average (str or None, default "macro"): "macro" (unweighted mean over classes), "weighted" (mean weighted
        by each class's reference count), "micro" (from counts pooled over classes), or None (one score
        per class in the order of labels). A class with no predicted or no reference examples scores 0.
Returns:
    {score} (float, or list of float when average is None): 0.0 to 1.0.
"""

_TEXT_INPUTS = """
Args:
    predictions (list of str): generated texts.
    references (list of str): reference texts, one per prediction.
    return_per_example (bool, default False): also return the score of every example.
Returns:
    {score} (float): mean over examples, 0.0 to 1.0.
        {tokenization}
    {score}_per_example (list of float): only when return_per_example is True.
"""


def metric_info(description: str, value_type: str, inputs_description: str) -> evaluate.MetricInfo:
    """Describe a metric whose predictions and references are each one `datasets.Value(value_type)` per example."""
    features = datasets.Features({"predictions": datasets.Value(value_type), "references": datasets.Value(value_type)})
    return evaluate.MetricInfo(
        description=description,
        citation=_CITATION,
        inputs_description=inputs_description,
        features=features,
    )


class AveragedClassScore(evaluate.Metric):
    """Precision, recall or F1 of class predictions, per class or averaged; subclasses set `score` and `description`."""

    score: str
    description: str

    def _info(self) -> evaluate.MetricInfo:
        return metric_info(self.description, "int64", _AVERAGED_INPUTS.format(score=self.score))

    def _compute(self, predictions, references, labels=None, average="macro") -> dict:
        return {self.score: classification_scores.averaged_score(self.score, predictions, references, labels, average)}


class TextOverlapScore(evaluate.Metric):
    """A per-example text score averaged over examples; subclasses set `score`, `description` and `tokenization`."""

    score: str
    description: str
    tokenization: str

    def _info(self) -> evaluate.MetricInfo:
        inputs = _TEXT_INPUTS.format(score=self.score, tokenization=self.tokenization)
        return metric_info(self.description, "string", inputs)

    def _compute(self, predictions, references, return_per_example=False) -> dict:
        return text_scores.mean_text_score(self.score, predictions, references, return_per_example)
