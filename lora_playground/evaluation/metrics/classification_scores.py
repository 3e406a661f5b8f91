"""Single-label classification scores computed from a confusion matrix.

The `evaluate` modules beside this file (accuracy, precision, recall, f1, confusion_matrix) call these
functions, so every score in the project comes from one implementation.
"""

from collections.abc import Sequence
from typing import Literal

import numpy as np

from lora_playground.errors import DataError

Average = Literal["macro", "micro", "weighted"] | None
AVERAGES = ("macro", "micro", "weighted", None)


def _as_label_array(values: Sequence[int], role: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise DataError(f"The {role} must be a flat list of class indices, got an array of shape {array.shape}.")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise DataError(
            f"The {role} must be integer class indices, got dtype {array.dtype}.", "Map label names to indices first."
        )
    return array.astype(np.int64)


def check_pairs(predictions: Sequence[int], references: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Convert predictions and references to int64 arrays; raise DataError if they are empty or differ in length."""
    predicted = _as_label_array(predictions, "predictions")
    expected = _as_label_array(references, "references")
    if len(predicted) != len(expected):
        raise DataError(
            f"Got {len(predicted)} predictions for {len(expected)} references.", "Pass one prediction per reference."
        )
    if len(expected) == 0:
        raise DataError("There are no examples to score: the predictions and references are empty.")
    return predicted, expected


def resolve_labels(predicted: np.ndarray, expected: np.ndarray, labels: Sequence[int] | None) -> list[int]:
    """Return `labels` as ints, or the sorted classes seen in either array when `labels` is None."""
    if labels is None:
        return sorted(set(predicted.tolist()) | set(expected.tolist()))
    resolved = [int(label) for label in labels]
    if len(set(resolved)) != len(resolved):
        raise DataError(f"The labels {resolved} contain duplicates.", "List each class index once.")
    return resolved


def accuracy(predictions: Sequence[int], references: Sequence[int]) -> float:
    """Return the fraction of predictions equal to their reference (0.0 to 1.0)."""
    predicted, expected = check_pairs(predictions, references)
    return float(np.mean(predicted == expected))


def confusion_matrix(
    predictions: Sequence[int], references: Sequence[int], labels: Sequence[int] | None = None
) -> np.ndarray:
    """Count examples per (reference, prediction) pair.

    Row i is the reference class labels[i] and column j the predicted class labels[j]. Examples whose
    reference or prediction is not in `labels` are left out of the matrix.
    """
    predicted, expected = check_pairs(predictions, references)
    classes = resolve_labels(predicted, expected, labels)
    position = {label: index for index, label in enumerate(classes)}
    matrix = np.zeros((len(classes), len(classes)), dtype=np.int64)
    for reference, prediction in zip(expected.tolist(), predicted.tolist()):
        if reference in position and prediction in position:
            matrix[position[reference], position[prediction]] += 1
    return matrix


def _safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    # A class that is never predicted (or never present) scores 0 rather than NaN, so a macro average
    # over all classes stays defined and penalizes the missing class.
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    return np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator > 0)


def per_class_scores(
    predictions: Sequence[int], references: Sequence[int], labels: Sequence[int] | None = None
) -> dict[str, np.ndarray]:
    """Compute precision, recall, F1, support, true positives, false positives and false negatives per class.

    Each value is an array in the order of `labels` (sorted seen classes when None). Predictions of a
    class outside `labels` count as false negatives for their reference class.
    """
    predicted, expected = check_pairs(predictions, references)
    classes = resolve_labels(predicted, expected, labels)
    class_array = np.asarray(classes, dtype=np.int64)[:, None]  # (classes, 1)
    is_predicted = predicted[None, :] == class_array  # (classes, examples)
    is_reference = expected[None, :] == class_array  # (classes, examples)

    true_positives = np.sum(is_predicted & is_reference, axis=1)
    false_positives = np.sum(is_predicted & ~is_reference, axis=1)
    false_negatives = np.sum(~is_predicted & is_reference, axis=1)
    precision = _safe_divide(true_positives, true_positives + false_positives)
    recall = _safe_divide(true_positives, true_positives + false_negatives)
    f1 = _safe_divide(2 * precision * recall, precision + recall)
    return {
        "labels": np.asarray(classes, dtype=np.int64),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "support": true_positives + false_negatives,
        "true_positives": true_positives,
        "false_positives": false_positives,
        "false_negatives": false_negatives,
    }


def averaged_score(
    score: Literal["precision", "recall", "f1"],
    predictions: Sequence[int],
    references: Sequence[int],
    labels: Sequence[int] | None = None,
    average: Average = "macro",
) -> float | list[float]:
    """Return one score averaged over classes, or the per-class list when `average` is None.

    "macro" is the unweighted mean over `labels`, "weighted" weights each class by its support, and
    "micro" pools the true/false positive and false negative counts of all classes in `labels`.
    """
    if average not in AVERAGES:
        raise DataError(f"Unknown average {average!r}.", f"Use one of {list(AVERAGES)}.")
    scores = per_class_scores(predictions, references, labels)
    if average is None:
        return scores[score].tolist()
    if average == "macro":
        return float(np.mean(scores[score]))
    if average == "weighted":
        support = scores["support"]
        return float(np.sum(scores[score] * support) / support.sum()) if support.sum() else 0.0

    true_positives = scores["true_positives"].sum()
    micro_precision = float(_safe_divide(true_positives, true_positives + scores["false_positives"].sum()))
    micro_recall = float(_safe_divide(true_positives, true_positives + scores["false_negatives"].sum()))
    if score == "precision":
        return micro_precision
    if score == "recall":
        return micro_recall
    return float(_safe_divide(2 * micro_precision * micro_recall, micro_precision + micro_recall))
