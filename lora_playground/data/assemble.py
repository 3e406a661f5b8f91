"""Completing the train/validation/test splits of normalized rows and packing them into TaskData."""

import logging
from collections.abc import Callable

import datasets

from lora_playground.data.fingerprint import SPLIT_ORDER, data_fingerprint
from lora_playground.data.splits import ordered_indices, random_indices, stratified_indices
from lora_playground.errors import DataError
from lora_playground.tasks.task import LABEL, MESSAGES, TEXT, TEXT_PAIR, Task, TaskData

logger = logging.getLogger(__name__)


def complete_splits(
    rows_by_split: dict[str, list[dict]],
    *,
    stratify: bool,
    seed: int,
    validation_fraction: float,
    test_fraction: float,
    ordered: bool = False,
    group_key: Callable[[dict], str] | None = None,
) -> tuple[dict[str, list[dict]], list[str]]:
    """Return train/validation/test rows and notes on what was split, carving missing splits out of train.

    Only train: test (`test_fraction`) and validation (`validation_fraction` of all rows) are carved out.
    Train and test: validation is carved out of train; train and validation: test is carved out of train.
    `stratify` keeps the label proportions (classification). `ordered` takes the parts in file order
    (train first, then test, then validation) instead of at random. `group_key` keeps rows with the same
    key in one split, and is ignored when `stratify` is set. Raises DataError when a split would be empty.
    """
    rows = dict(rows_by_split)
    train = rows["train"]
    how = _description(stratify, ordered, seed)
    notes = []

    if "validation" not in rows and "test" not in rows:
        if ordered:
            train_part, validation_part, test_part = ordered_indices(len(train), validation_fraction, test_fraction)
        else:
            rest, test_part = _carve(train, test_fraction, seed, stratify, group_key)
            rest_rows = [train[index] for index in rest]
            # The validation share is of all rows, so it is a larger share of what remains.
            kept, carved = _carve(rest_rows, validation_fraction / (1 - test_fraction), seed + 1, stratify, group_key)
            train_part, validation_part = [rest[index] for index in kept], [rest[index] for index in carved]
        rows = {
            "train": [train[index] for index in train_part],
            "validation": [train[index] for index in validation_part],
            "test": [train[index] for index in test_part],
        }
        notes.append(
            f"Split the {len(train)} rows into train/validation/test = "
            f"{len(train_part)}/{len(validation_part)}/{len(test_part)} rows ({how})."
        )
    else:
        for missing, fraction in (("validation", validation_fraction), ("test", test_fraction)):
            if missing in rows:
                continue
            if ordered:
                count = max(1, int(len(train) * fraction + 1e-9))
                kept, carved = list(range(len(train) - count)), list(range(len(train) - count, len(train)))
            else:
                kept, carved = _carve(train, fraction, seed, stratify, group_key)
            rows[missing] = [train[index] for index in carved]
            rows["train"] = [train[index] for index in kept]
            notes.append(
                f"Carved the {missing} split ({len(carved)} rows) out of the {len(train)} training rows ({how})."
            )

    for split in ("train", "validation", "test"):
        if not rows[split]:
            raise DataError(
                f"The {split} split is empty after splitting {len(train)} rows.",
                "Give more rows, larger fractions, or separate train/validation/test files.",
            )
    return rows, notes


def _carve(rows, fraction, seed, stratify, group_key):
    if stratify:
        return stratified_indices([row[LABEL] for row in rows], fraction, seed)
    groups = [group_key(row) for row in rows] if group_key else None
    return random_indices(len(rows), fraction, seed, groups)


def _description(stratify: bool, ordered: bool, seed: int) -> str:
    if ordered:
        return "in file order"
    return f"stratified by label, seed {seed}" if stratify else f"at random, seed {seed}"


def build_task_data(task: Task, rows_by_split: dict[str, list[dict]], notes: list[str]) -> TaskData:
    """Pack normalized rows into a DatasetDict with typed features and compute the data fingerprint."""
    if task.type == "classification":
        features = {TEXT: datasets.Value("string"), LABEL: datasets.ClassLabel(names=task.label_names)}
        if any(TEXT_PAIR in row for row in rows_by_split["train"]):
            features[TEXT_PAIR] = datasets.Value("string")
    else:
        message = {"role": datasets.Value("string"), "content": datasets.Value("string")}
        features = {MESSAGES: datasets.List(message)}
    features = datasets.Features(features)

    splits = datasets.DatasetDict(
        {
            split: datasets.Dataset.from_dict(
                {column: [row[column] for row in rows] for column in features}, features=features
            )
            for split, rows in sorted(rows_by_split.items(), key=lambda item: SPLIT_ORDER.index(item[0]))
        }
    )
    fingerprint = data_fingerprint(task.type, task.label_names, rows_by_split)
    sizes = ", ".join(f"{split} {len(rows)}" for split, rows in rows_by_split.items())
    logger.info("Prepared task %s (%s rows), data fingerprint %s", task.name, sizes, fingerprint[:12])
    return TaskData(task=task, splits=splits, fingerprint=fingerprint, notes=list(notes))
