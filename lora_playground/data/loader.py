"""`load_task_data`: from a file, folder, Hub dataset id or built-in task name to prepared TaskData."""

import difflib
import logging
import tempfile
from pathlib import Path

from lora_playground.data.assemble import build_task_data, complete_splits
from lora_playground.data.classification import normalize_classification
from lora_playground.data.generation import normalize_generation
from lora_playground.data.readers import Quoting, ReadOptions
from lora_playground.data.sources import RawData, read_source
from lora_playground.data.splits import check_fractions
from lora_playground.errors import ConfigError, DataError
from lora_playground.tasks.task import Task, TaskData, TaskType

logger = logging.getLogger(__name__)


def load_task_data(
    source: str | Path,
    *,
    task_type: TaskType = "classification",
    text_columns: list[str] | str | None = None,
    label_column: str | None = None,
    label_names: list[str] | None = None,
    data_format: str | None = None,
    split_names: dict[str, str] | None = None,
    encoding: str = "utf-8",
    seed: int = 42,
    validation_fraction: float = 0.1,
    test_fraction: float = 0.1,
    name: str | None = None,
    hub_revision: str | None = None,
    hub_config: str | None = None,
    file_format: str | None = None,
    has_header: bool = True,
    column_names: list[str] | None = None,
    quoting: Quoting = "auto",
    ordered_split: bool = False,
) -> TaskData:
    """Read, validate, normalize and split task data; return it with a fingerprint and notes.

    source: a CSV, TSV, JSON (list of records), JSONL or Parquet file; a folder of train/validation/test
        files (see `data.sources`); a Hub dataset id such as "owner/name" (needs network access or the
        local Hugging Face cache); or the name of a built-in task (see `tasks.builtin.BUILTIN_TASKS`).
    task_type: "classification" (normalized columns `text`, optional `text_pair`, `label`) or "generation"
        (normalized column `messages`).
    text_columns: classification text column, or two for a sentence pair; default: the first of
        text/sentence/content/review/message (any case), or a known pair such as sentence1/sentence2.
    label_column: classification label column; default: the first of label/labels/class/category/target.
    label_names: class names in index order. Labels that are names map to their position; integer labels
        are indices into this list. Default: names derived from the training labels, sorted.
    data_format: generation only, "alpaca", "chat" or "prompt_completion"; default: detected from columns.
    split_names: maps "train"/"validation"/"test" to file names in a folder or to Hub split names.
    encoding: text encoding of the files (default utf-8); e.g. "cp1252" for Windows text.
    seed: seed of the splits made here (default 42).
    validation_fraction, test_fraction: shares carved out when a split is missing (default 0.1 each).
    name: task name; default: the file stem, folder name or Hub dataset name.
    hub_revision, hub_config: Hub dataset revision (branch, tag or commit) and configuration name.
    file_format: "csv", "tsv", "json", "jsonl" or "parquet" for a file whose suffix says otherwise.
    has_header, column_names, quoting: CSV/TSV parsing (see `data.readers.ReadOptions`).
    ordered_split: split a single file in file order (train, then test, then validation) instead of at
        random, as chapter 7 of "Build a Large Language Model From Scratch" does.

    Raises DataError for unreadable or invalid data, LimitError for data over the configured limits,
    ConfigError for conflicting options. Reads files only; the one temporary folder it creates (for
    transcoded copies and the `datasets` cache of local files) is deleted before it returns.
    """
    check_fractions(validation_fraction, test_fraction)
    if task_type not in ("classification", "generation"):
        raise ConfigError(f"Unknown task_type {task_type!r}.", "Use 'classification' or 'generation'.")

    builtin = builtin_task_name(source)
    if builtin is not None:
        _reject_options_for_builtin(
            builtin,
            text_columns=text_columns,
            label_column=label_column,
            label_names=label_names,
            data_format=data_format,
            split_names=split_names,
            column_names=column_names,
        )
        from lora_playground.tasks.builtin import load_builtin

        return load_builtin(
            builtin, seed=seed, validation_fraction=validation_fraction, test_fraction=test_fraction
        )

    options = ReadOptions(
        encoding=encoding,
        file_format=file_format,
        has_header=has_header,
        column_names=tuple(column_names) if column_names else None,
        quoting=quoting,
    )
    with tempfile.TemporaryDirectory(prefix="lora-playground-data-") as workdir:
        raw = read_source(
            source,
            options=options,
            split_names=split_names,
            hub_revision=hub_revision,
            hub_config=hub_config,
            workdir=Path(workdir),
        )
    return prepare_task_data(
        raw,
        task_type=task_type,
        text_columns=text_columns,
        label_column=label_column,
        label_names=label_names,
        data_format=data_format,
        seed=seed,
        validation_fraction=validation_fraction,
        test_fraction=test_fraction,
        name=name,
        ordered_split=ordered_split,
    )


def prepare_task_data(
    raw: RawData,
    *,
    task_type: TaskType,
    text_columns=None,
    label_column=None,
    label_names=None,
    data_format=None,
    seed: int = 42,
    validation_fraction: float = 0.1,
    test_fraction: float = 0.1,
    name: str | None = None,
    ordered_split: bool = False,
) -> TaskData:
    """Normalize and split raw data already read by `sources.read_source` (options as in `load_task_data`)."""
    notes = list(raw.notes)
    task_name = name or raw.default_name
    if task_type == "classification":
        if data_format is not None:
            raise ConfigError(
                f"data_format={data_format!r} applies to generation tasks only.",
                "Drop data_format, or set task_type='generation'.",
            )
        normalized = normalize_classification(raw, text_columns, label_column, label_names)
        task = Task(
            name=task_name,
            type="classification",
            text_columns=normalized.text_columns,
            label_column=normalized.label_column,
            label_names=normalized.label_names,
            source=raw.description,
            hub_dataset=raw.hub_dataset,
        )
    else:
        if text_columns is not None or label_column is not None or label_names is not None:
            raise ConfigError(
                "text_columns, label_column and label_names apply to classification tasks only.",
                "For generation, name the format with data_format=... instead.",
            )
        normalized = normalize_generation(raw, data_format)
        task = Task(
            name=task_name,
            type="generation",
            text_columns=normalized.prompt_columns,
            label_column=normalized.response_column,
            label_names=[],
            data_format=normalized.data_format,
            source=raw.description,
            hub_dataset=raw.hub_dataset,
        )
    notes.extend(normalized.notes)

    rows, split_notes = complete_splits(
        normalized.rows,
        stratify=task_type == "classification",
        seed=seed,
        validation_fraction=validation_fraction,
        test_fraction=test_fraction,
        ordered=ordered_split,
    )
    notes.extend(split_notes)
    return build_task_data(task, rows, notes)


def builtin_task_name(source) -> str | None:
    """Return `source` when it names a built-in task and is not also an existing path, else None.

    Raises DataError for a name without "/" that is close to a built-in name (a likely typo), instead of
    looking it up on the Hub.
    """
    if not isinstance(source, str) or Path(source).expanduser().exists():
        return None
    from lora_playground.tasks.builtin import BUILTIN_TASKS

    if source in BUILTIN_TASKS:
        return source
    close = difflib.get_close_matches(source, list(BUILTIN_TASKS), n=1, cutoff=0.75)
    if "/" not in source and close:
        raise DataError(
            f"Unknown built-in task {source!r}; did you mean {close[0]!r}?",
            f"Built-in tasks: {', '.join(BUILTIN_TASKS)}.",
        )
    return None


def _reject_options_for_builtin(name: str, **options) -> None:
    given = sorted(option for option, value in options.items() if value is not None)
    if given:
        raise ConfigError(
            f"Built-in task {name!r} has fixed columns and labels, so the option(s) {', '.join(given)} do not apply.",
            "Drop those options, or give a data file instead of a built-in task name.",
        )
