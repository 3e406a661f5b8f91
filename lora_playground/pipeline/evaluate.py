"""Evaluate one model on a split of a task: metrics, per-example predictions and inference cost."""

import logging
import time

from lora_playground.errors import DataError
from lora_playground.evaluation import (
    InferenceLatency,
    RunResult,
    classification_metrics,
    generate_responses,
    generation_metrics,
    predict_classification,
    response_perplexity,
)
from lora_playground.settings import check_sequence_length
from lora_playground.tasks.task import LABEL, MESSAGES, TEXT, TEXT_PAIR, TaskData

logger = logging.getLogger(__name__)


def evaluate_model(
    model,
    tokenizer,
    task_data: TaskData,
    *,
    name: str,
    kind: str,
    split: str = "test",
    batch_size: int = 32,
    max_length: int = 128,
    max_new_tokens: int = 64,
    max_examples: int | None = None,
) -> RunResult:
    """Evaluate `model` on `split` of `task_data` and return a RunResult (its `cost` holds inference figures).

    Classification reports accuracy, macro-F1, per-class scores and the confusion matrix; generation
    reports ROUGE-L, exact match, token F1 (greedy decoding, so results repeat) and the perplexity of the
    reference replies. `max_examples` evaluates only the first N rows of the split (for quick looks).
    Raises LimitError when `max_length` is above the server's sequence limit (LORA_PLAYGROUND_MAX_SEQ_LEN).
    """
    check_sequence_length(max_length)
    if split not in task_data.splits:
        raise DataError(
            f"The task {task_data.task.name!r} has no {split!r} split.",
            f"Available splits: {', '.join(task_data.splits)}.",
        )
    rows = task_data.splits[split]
    if max_examples is not None:
        rows = rows.select(range(min(max_examples, len(rows))))
    if len(rows) == 0:
        raise DataError(f"The {split!r} split of task {task_data.task.name!r} is empty.", "Give it at least one row.")

    if task_data.task.type == "classification":
        pairs = rows[TEXT_PAIR] if TEXT_PAIR in rows.column_names else None
        predictions, probabilities, latency = predict_classification(
            model, tokenizer, rows[TEXT], pairs, batch_size=batch_size, max_length=max_length
        )
        metrics = classification_metrics(predictions, rows[LABEL], task_data.task.label_names)
        result = RunResult(
            name=name,
            kind=kind,
            metrics=metrics,
            predictions=predictions.tolist(),
            probabilities=probabilities.tolist(),
            cost=latency.to_dict(),
        )
    else:
        conversations = rows[MESSAGES]
        prompts = [messages[:-1] for messages in conversations]
        references = [messages[-1]["content"] for messages in conversations]
        generation_batch = min(batch_size, 16)
        started = time.perf_counter()
        replies = generate_responses(model, tokenizer, prompts, max_new_tokens=max_new_tokens, batch_size=generation_batch)
        latency = InferenceLatency(len(replies), generation_batch, time.perf_counter() - started)
        metrics = generation_metrics(replies, references)
        metrics["perplexity"] = response_perplexity(model, tokenizer, conversations, max_length=max_length)
        result = RunResult(
            name=name,
            kind=kind,
            metrics=metrics,
            predictions=replies,
            cost=latency.to_dict(),
        )
    logger.info("Evaluated %s on %d %s rows: %s", name, len(rows), split, _headline(result.metrics))
    return result


def _headline(metrics: dict) -> str:
    shown = {key: value for key, value in metrics.items() if isinstance(value, float)}
    return ", ".join(f"{key}={value:.4f}" for key, value in shown.items())
