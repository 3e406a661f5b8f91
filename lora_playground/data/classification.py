"""Normalizing raw classification splits into `text` (+ `text_pair`) and integer `label` rows."""

import logging
from dataclasses import dataclass, field

import datasets

from lora_playground.data.cells import cell_text, dropped_note, find_column, require_columns
from lora_playground.data.labels import encode_labels, label_key, missing_training_classes
from lora_playground.data.sources import RawData
from lora_playground.errors import ConfigError, DataError
from lora_playground.tasks.task import LABEL, TEXT, TEXT_PAIR

logger = logging.getLogger(__name__)

# Column names tried, in order, when none is given. Pairs are tried before single text columns so that
# a (question, sentence) dataset is not read as "sentence" alone.
TEXT_PAIR_CANDIDATES = (
    ("sentence1", "sentence2"),
    ("premise", "hypothesis"),
    ("question", "sentence"),
    ("text_a", "text_b"),
    ("text1", "text2"),
)
TEXT_CANDIDATES = ("text", "sentence", "content", "review", "message")
LABEL_CANDIDATES = ("label", "labels", "class", "category", "target")
_SHOWN_ROWS = 10


@dataclass
class ClassificationRows:
    """Normalized rows per split, with the columns and label names they came from."""

    rows: dict[str, list[dict]]
    label_names: list[str]
    text_columns: list[str]
    label_column: str
    notes: list[str] = field(default_factory=list)


def normalize_classification(
    raw: RawData,
    text_columns: list[str] | str | None = None,
    label_column: str | None = None,
    label_names: list[str] | None = None,
) -> ClassificationRows:
    """Map the raw columns to normalized rows, drop rows with empty text and encode the labels.

    Raises DataError for unknown columns, missing labels, non-text values, splits left empty, and the label
    problems listed in `labels.encode_labels`.
    """
    train = raw.splits["train"]
    texts = _resolve_text_columns(train.dataset, text_columns, train.origin)
    label = _resolve_label_column(train.dataset, label_column, texts, train.origin)
    for split in raw.splits.values():
        require_columns(split.dataset, texts, split.origin, "text_columns=[...] (CLI: --text-column)")
        require_columns(split.dataset, [label], split.origin, "label_column=... (CLI: --label-column)")

    feature = train.dataset.features.get(label)
    if label_names is None and isinstance(feature, datasets.ClassLabel):
        label_names = list(feature.names)

    notes = []
    texts_by_split: dict[str, list[tuple[str, ...]]] = {}
    keys_by_split: dict[str, list[str]] = {}
    for split, raw_split in raw.splits.items():
        kept_texts, keys, dropped = _read_rows(raw_split.dataset, texts, label, raw_split.origin)
        if dropped:
            notes.append(dropped_note(dropped, "empty text", split, raw_split.origin))
        if not kept_texts:
            raise DataError(
                f"No rows with text remain in the {split} data ({raw_split.origin}): all "
                f"{raw_split.dataset.num_rows} rows have empty text in column(s) {texts}.",
                "Check the text column and the file's delimiter.",
            )
        texts_by_split[split] = kept_texts
        keys_by_split[split] = keys

    origins = {split: raw_split.origin for split, raw_split in raw.splits.items()}
    names, indices = encode_labels(keys_by_split, origins, label, label_names)
    unused = missing_training_classes(names, indices["train"])
    if unused:
        notes.append(f"Label(s) {unused} have no training rows.")

    rows = {}
    for split, split_texts in texts_by_split.items():
        rows[split] = [
            _row(values, index) for values, index in zip(split_texts, indices[split], strict=True)
        ]
    return ClassificationRows(rows, names, texts, label, notes)


def _row(values: tuple[str, ...], label_index: int) -> dict:
    row = {TEXT: values[0], LABEL: label_index}
    if len(values) == 2:
        row[TEXT_PAIR] = values[1]
    return row


def _read_rows(dataset: datasets.Dataset, text_columns: list[str], label_column: str, origin: str):
    """Return the kept text tuples, their label keys, and the count of rows dropped for empty text."""
    columns = [dataset[column] for column in text_columns]
    labels = dataset[label_column]
    kept_texts, keys, missing = [], [], []
    dropped = 0
    for position in range(dataset.num_rows):
        row = position + 1
        values = tuple(cell_text(column[position], name, row, origin) for column, name in zip(columns, text_columns))
        if any(not value.strip() for value in values):
            dropped += 1
            continue
        try:
            key = label_key(labels[position])
        except TypeError as error:
            raise DataError(
                f"Row {row} of {origin}: column {label_column!r} contains an invalid label: {error}.",
                "Give each row one label: a name or a whole number.",
            ) from None
        if key is None:
            missing.append(row)
            continue
        kept_texts.append(values)
        keys.append(key)
    if missing:
        shown = ", ".join(str(row) for row in missing[:_SHOWN_ROWS])
        more = f" and {len(missing) - _SHOWN_ROWS} more" if len(missing) > _SHOWN_ROWS else ""
        raise DataError(
            f"{len(missing)} row(s) of {origin} have text but no label in column {label_column!r}: "
            f"row(s) {shown}{more} (data rows counted from 1).",
            "Fill in those labels or remove the rows.",
        )
    return kept_texts, keys, dropped


def _resolve_text_columns(dataset: datasets.Dataset, given, origin: str) -> list[str]:
    columns = dataset.column_names
    if given is not None:
        names = [given] if isinstance(given, str) else list(given)
        if not 1 <= len(names) <= 2:
            raise ConfigError(
                f"text_columns={names} names {len(names)} columns.",
                "Give one text column, or two for a sentence-pair task.",
            )
        if len(set(names)) != len(names):
            raise ConfigError(f"text_columns={names} names the same column twice.", "Give two different columns.")
        require_columns(dataset, names, origin, "text_columns=[...] (CLI: --text-column)")
        return names
    for first, second in TEXT_PAIR_CANDIDATES:
        pair = (find_column(columns, (first,)), find_column(columns, (second,)))
        if all(pair):
            return list(pair)
    single = find_column(columns, TEXT_CANDIDATES)
    if single is None:
        raise DataError(
            f"No text column found in {origin}. Its columns are: {', '.join(columns)}.",
            "Name the text column with text_columns=[...] (CLI: --text-column). If the first row of a CSV "
            "or TSV file is data, not column names, also pass has_header=False (CLI: --no-header).",
        )
    return [single]


def _resolve_label_column(dataset: datasets.Dataset, given: str | None, texts: list[str], origin: str) -> str:
    columns = dataset.column_names
    if given is not None:
        require_columns(dataset, [given], origin, "label_column=... (CLI: --label-column)")
        label = given
    else:
        label = find_column([column for column in columns if column not in texts], LABEL_CANDIDATES)
        if label is None:
            raise DataError(
                f"No label column found in {origin}. Its columns are: {', '.join(columns)}.",
                "Name the label column with label_column=... (CLI: --label-column).",
            )
    if label in texts:
        raise ConfigError(
            f"Column {label!r} is both a text column and the label column.",
            "Choose different columns for the text and the label.",
        )
    return label
