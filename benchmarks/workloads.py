"""The data the benchmarks train on: the book's balanced SMS spam split when present, else a built-in task.

`../shared/datasets/sms_spam/` (beside the repository) contains the train/validation/test CSV files of the
SMS spam split used in chapter 6 of "Build a Large Language Model From Scratch". The product never
depends on it, so on a machine without it the benchmarks fall back to the built-in task
`chatterbot-language`, which ships with a pip package, and say so in their notes.
"""

import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import datasets

from lora_playground.data import data_fingerprint, load_task_data
from lora_playground.tasks.task import TaskData

from benchmarks.isolation import REPO_ROOT

logger = logging.getLogger(__name__)

SMS_SPAM_FOLDER = REPO_ROOT.parent / "shared" / "datasets" / "sms_spam"
FALLBACK_TASK = "chatterbot-language"
SUBSET_SEED = 0


def default_data_source() -> str:
    """Return the SMS spam folder when it exists, else the name of the built-in fallback task."""
    if (SMS_SPAM_FOLDER / "train.csv").is_file():
        return str(SMS_SPAM_FOLDER)
    logger.warning("%s not found; benchmarking on the built-in task %r instead.", SMS_SPAM_FOLDER, FALLBACK_TASK)
    return FALLBACK_TASK


def load_workload(
    source: str | None,
    *,
    max_rows: dict[str, int] | None = None,
    drop_splits: tuple[str, ...] = (),
    min_words: int | None = None,
) -> TaskData:
    """Load `source` (None: `default_data_source()`) and optionally reshape it.

    `max_rows` maps split names to a row count. A longer split keeps a seeded random sample of that many
    rows, and a shorter one is repeated up to it (for scaling runs). `drop_splits` removes
    splits (for example "validation", so that a training benchmark times training steps only).
    `min_words` lengthens every text by appending the following texts of its split until it has at least
    that many words, so that truncation to N <= min_words tokens gives rows of exactly N tokens (the
    label stays that of the first text). The fingerprint is recomputed for changed data.
    """
    task_data = load_task_data(source or default_data_source())
    if not max_rows and not drop_splits and not min_words:
        return task_data
    return reshape_splits(task_data, max_rows or {}, drop_splits, min_words)


def reshape_splits(
    task_data: TaskData, max_rows: dict[str, int], drop_splits: tuple[str, ...] = (), min_words: int | None = None
) -> TaskData:
    """Return a copy of `task_data` with splits dropped, resized or lengthened, and a matching fingerprint."""
    splits = datasets.DatasetDict(task_data.splits)
    for name in drop_splits:
        splits.pop(name, None)
    for name, limit in max_rows.items():
        if name not in splits or len(splits[name]) == limit:
            continue
        if len(splits[name]) > limit:
            splits[name] = splits[name].shuffle(seed=SUBSET_SEED).select(range(limit))
        else:
            splits[name] = splits[name].select([index % len(splits[name]) for index in range(limit)])
    if min_words:
        for name in list(splits):
            splits[name] = _lengthen(splits[name], min_words)
    rows = {name: [dict(row) for row in split] for name, split in splits.items()}
    fingerprint = data_fingerprint(task_data.task.type, task_data.task.label_names, rows)
    return TaskData(task=task_data.task, splits=splits, fingerprint=fingerprint, notes=list(task_data.notes))


def _lengthen(split: datasets.Dataset, min_words: int) -> datasets.Dataset:
    texts = list(split["text"])
    longer = []
    for index, text in enumerate(texts):
        parts = [text]
        words = len(text.split())
        following = index + 1
        while words < min_words:
            addition = texts[following % len(texts)]
            parts.append(addition)
            words += max(1, len(addition.split()))
            following += 1
        longer.append(" ".join(parts))
    return split.remove_columns("text").add_column("text", longer)


def describe_workload(task_data: TaskData) -> str:
    """Return e.g. "sms_spam (train 1,045, validation 149, test 300 rows)"."""
    sizes = ", ".join(f"{name} {len(split):,}" for name, split in task_data.splits.items())
    return f"{task_data.task.name} ({sizes} rows)"


def repo_relative(path: str | Path) -> str:
    """Show a path relative to the repository root when it lies below it (shorter in reports)."""
    try:
        return str(Path(path).resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


@contextmanager
def scratch_folders() -> Iterator[Path]:
    """Point the adapter store and the runs folder at a new temporary folder while the block runs.

    Benchmarks save adapters and evaluations like the product does (so stored sizes are real files),
    without touching the user's store. The previous environment is restored and the folder removed.
    """
    names = ("LORA_PLAYGROUND_ADAPTERS", "LORA_PLAYGROUND_RUNS")
    previous = {name: os.environ.get(name) for name in names}
    with tempfile.TemporaryDirectory(prefix="lora-playground-bench-store-") as folder:
        os.environ["LORA_PLAYGROUND_ADAPTERS"] = str(Path(folder) / "adapters")
        os.environ["LORA_PLAYGROUND_RUNS"] = str(Path(folder) / "runs")
        try:
            yield Path(folder)
        finally:
            for name, value in previous.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
