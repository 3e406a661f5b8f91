"""Class predictions of a sequence-classification model and the scores computed from them."""

import logging
import time
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from lora_playground.errors import ConfigError, DataError, ModelError
from lora_playground.evaluation.inference import evaluation_mode, model_device
from lora_playground.evaluation.latency import InferenceLatency
from lora_playground.evaluation.metrics import compute_metric

logger = logging.getLogger(__name__)


class ClassificationPredictions(NamedTuple):
    """Output of `predict_classification`; unpack as `predictions, probabilities, latency = ...`."""

    predictions: np.ndarray  # (examples,) int64 class indices
    probabilities: np.ndarray  # (examples, num_labels) float32 softmax probabilities
    latency: InferenceLatency


def predict_classification(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    text_pairs: Sequence[str] | None = None,
    *,
    batch_size: int = 32,
    max_length: int = 128,
) -> ClassificationPredictions:
    """Predict the class of every text (or text pair) with a sequence-classification model.

    Each batch is padded to its longest member (dynamic padding) and inputs longer than `max_length`
    tokens are truncated. The model runs in eval mode under `torch.inference_mode` on the device of its
    parameters; its previous train/eval mode is restored afterwards. The latency covers the whole pass.
    Works with a PEFT-wrapped model too.
    """
    if batch_size < 1:
        raise ConfigError(f"batch_size={batch_size} must be at least 1.")
    if max_length < 1:
        raise ConfigError(f"max_length={max_length} must be at least 1 token.")
    if text_pairs is not None and len(text_pairs) != len(texts):
        raise DataError(f"Got {len(text_pairs)} second texts for {len(texts)} texts.", "Give one text_pair per text.")
    if tokenizer.pad_token_id is None:
        raise ModelError(
            f"The tokenizer of {tokenizer.name_or_path!r} has no pad token, so batches cannot be padded.",
            "Set tokenizer.pad_token (for decoder models usually to the EOS token) and model.config.pad_token_id.",
        )

    num_labels = model.config.num_labels
    device = model_device(model)
    all_probabilities = []
    started = time.perf_counter()
    with evaluation_mode(model):
        for start in range(0, len(texts), batch_size):
            batch_texts = list(texts[start : start + batch_size])
            batch_pairs = list(text_pairs[start : start + batch_size]) if text_pairs is not None else None
            encoded = tokenizer(
                batch_texts, batch_pairs, padding=True, truncation=True, max_length=max_length, return_tensors="pt"
            ).to(device)
            logits = model(**encoded).logits  # (batch, num_labels)
            all_probabilities.append(torch.softmax(logits.float(), dim=-1).cpu().numpy())
    elapsed = time.perf_counter() - started

    probabilities = np.concatenate(all_probabilities) if all_probabilities else np.zeros((0, num_labels), np.float32)
    predictions = probabilities.argmax(axis=-1).astype(np.int64)
    latency = InferenceLatency(n_examples=len(texts), batch_size=batch_size, wall_time_s=elapsed)
    logger.info(
        "Predicted %d examples in %.2f s (%.2f ms per example at batch size %d)",
        len(texts),
        elapsed,
        latency.ms_per_example,
        batch_size,
    )
    return ClassificationPredictions(predictions, probabilities.astype(np.float32), latency)


def _check_indices(values: Sequence[int], role: str, num_labels: int) -> None:
    array = np.asarray(values)
    outside = array[(array < 0) | (array >= num_labels)] if array.size else array
    if outside.size:
        raise DataError(
            f"The {role} contain class index {int(outside[0])}, but there are only {num_labels} label names.",
            "Pass label_names that cover every class index.",
        )


def classification_metrics(predictions: Sequence[int], references: Sequence[int], label_names: Sequence[str]) -> dict:
    """Score class predictions against reference classes with the local `evaluate` modules.

    Returns `accuracy` and `macro_f1` (0.0 to 1.0; the macro average counts every class in
    `label_names`, including ones absent from the references), `per_class` as
    `{name: {precision, recall, f1, support}}`, `confusion_matrix` (rows are reference classes,
    columns predicted classes, both in `label_names` order) and `n` (examples scored).
    """
    if len(predictions) != len(references):
        raise DataError(f"Got {len(predictions)} predictions for {len(references)} references.")
    if len(references) == 0:
        raise DataError("There are no examples to score.", "Check that the evaluation split is not empty.")
    if not label_names:
        raise DataError("label_names is empty.", "Pass the task's class names in index order.")
    if len(set(label_names)) != len(label_names):
        raise DataError(f"label_names {list(label_names)} contain duplicates.", "Give each class a distinct name.")
    _check_indices(predictions, "predictions", len(label_names))
    _check_indices(references, "references", len(label_names))

    predicted = [int(value) for value in predictions]
    expected = [int(value) for value in references]
    labels = list(range(len(label_names)))
    per_class_options = {"labels": labels, "average": None}
    precision = compute_metric("precision", predicted, expected, **per_class_options)["precision"]
    recall = compute_metric("recall", predicted, expected, **per_class_options)["recall"]
    f1 = compute_metric("f1", predicted, expected, **per_class_options)["f1"]
    matrix = compute_metric("confusion_matrix", predicted, expected, labels=labels)["confusion_matrix"]

    per_class = {
        name: {
            "precision": precision[index],
            "recall": recall[index],
            "f1": f1[index],
            "support": int(sum(matrix[index])),
        }
        for index, name in enumerate(label_names)
    }
    return {
        "accuracy": compute_metric("accuracy", predicted, expected)["accuracy"],
        "macro_f1": compute_metric("f1", predicted, expected, labels=labels, average="macro")["f1"],
        "per_class": per_class,
        "confusion_matrix": matrix,
        "n": len(expected),
    }
