"""`preview`: what a data source contains and what loading it would do, for the app's Data screen."""

import logging
import tempfile
from collections import Counter
from pathlib import Path

from lora_playground.data.loader import builtin_task_name, prepare_task_data
from lora_playground.data.readers import ReadOptions
from lora_playground.data.sources import read_source
from lora_playground.data.splits import check_fractions
from lora_playground.errors import PlaygroundError
from lora_playground.tasks.task import LABEL, TaskData

logger = logging.getLogger(__name__)

MAX_PREVIEW_CHARS = 300  # longer text values are cut in the preview rows (the data itself is untouched)


def preview(source: str | Path, *, rows: int = 5, **options) -> dict:
    """Return a JSON-ready summary of `source`; a PlaygroundError is reported in the result instead of raised.

    Takes the options of `load_task_data`. The result has:
    - "source": the source as given; "columns": {split: raw column names}; "num_rows": {split: raw rows};
    - "rows": the first `rows` raw rows of the train split, strings over 300 characters cut with "...";
    - "task": the prepared Task as a dict, or None; "splits": {split: prepared rows};
    - "label_counts": {split: {label name: rows}} for classification;
    - "fingerprint", "notes" (what preparation changed) and "problems" (plain sentences saying why the
      data cannot be used as it is; empty when it loads).
    """
    result = {
        "source": str(source),
        "columns": {},
        "num_rows": {},
        "rows": [],
        "task": None,
        "splits": {},
        "label_counts": {},
        "fingerprint": None,
        "notes": [],
        "problems": [],
    }
    try:
        check_fractions(options.get("validation_fraction", 0.1), options.get("test_fraction", 0.1))
        if builtin_task_name(source) is not None:
            from lora_playground.data.loader import load_task_data

            task_data = load_task_data(source, **options)
            first = task_data.splits["train"]
            result["columns"] = {split: data.column_names for split, data in task_data.splits.items()}
            result["num_rows"] = {split: data.num_rows for split, data in task_data.splits.items()}
            result["rows"] = [_shorten(row) for row in first.select(range(min(rows, first.num_rows)))]
        else:
            task_data = _preview_source(source, rows, options, result)
    except PlaygroundError as error:
        result["problems"].append(str(error))
        return result

    _describe(task_data, result)
    return result


def _preview_source(source, rows: int, options: dict, result: dict) -> TaskData:
    read_keys = ("encoding", "file_format", "has_header", "column_names", "quoting")
    read_options = {key: options.pop(key) for key in read_keys if key in options}
    if read_options.get("column_names"):
        read_options["column_names"] = tuple(read_options["column_names"])
    source_keys = {key: options.pop(key, None) for key in ("split_names", "hub_revision", "hub_config")}
    with tempfile.TemporaryDirectory(prefix="lora-playground-preview-") as workdir:
        raw = read_source(
            source,
            options=ReadOptions(**read_options),
            split_names=source_keys["split_names"],
            hub_revision=source_keys["hub_revision"],
            hub_config=source_keys["hub_config"],
            workdir=Path(workdir),
        )
    for split, raw_split in raw.splits.items():
        result["columns"][split] = raw_split.dataset.column_names
        result["num_rows"][split] = raw_split.dataset.num_rows
    train = raw.splits["train"].dataset
    result["rows"] = [_shorten(row) for row in train.select(range(min(rows, train.num_rows)))]
    options.setdefault("task_type", "classification")
    return prepare_task_data(raw, **options)


def _describe(task_data: TaskData, result: dict) -> None:
    task = task_data.task
    result["task"] = task.to_dict()
    result["splits"] = {split: data.num_rows for split, data in task_data.splits.items()}
    result["fingerprint"] = task_data.fingerprint
    result["notes"] = list(task_data.notes)
    if task.type == "classification":
        for split, data in task_data.splits.items():
            counts = Counter(data[LABEL])
            result["label_counts"][split] = {name: counts.get(index, 0) for index, name in enumerate(task.label_names)}


def _shorten(value):
    if isinstance(value, str):
        return value if len(value) <= MAX_PREVIEW_CHARS else value[:MAX_PREVIEW_CHARS] + "..."
    if isinstance(value, dict):
        return {str(key): _shorten(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_shorten(item) for item in value]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return str(value)
