"""Reading single values out of raw rows: texts, and the column checks shared by both task types."""

import json
import math

import datasets

from lora_playground.errors import DataError


def cell_text(value, column: str, row: int, origin: str) -> str:
    """Return a raw value as text: None and NaN become "", numbers and booleans their JSON spelling.

    `row` counts from 1 (a CSV header is not counted). Raises DataError for lists and objects.
    """
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, float) and math.isnan(value):
        return ""
    if isinstance(value, (bool, int, float)):
        return json.dumps(value)
    shown = repr(value)
    shown = shown if len(shown) <= 80 else shown[:80] + "..."
    raise DataError(
        f"Row {row} of {origin}: column {column!r} contains a {type(value).__name__} ({shown}), not text.",
        "Give plain text in that column, or choose another column.",
    )


def require_columns(dataset: datasets.Dataset, columns: list[str], origin: str, option: str) -> None:
    """Raise DataError naming the missing column and the columns that exist in `dataset`."""
    for column in columns:
        if column not in dataset.column_names:
            raise DataError(
                f"Column {column!r} was not found in {origin}. Its columns are: {', '.join(dataset.column_names)}.",
                f"Choose one of those columns with {option}.",
            )


def find_column(columns: list[str], candidates: tuple[str, ...]) -> str | None:
    """Return the first column whose name matches a candidate, exactly first, then ignoring case."""
    for candidate in candidates:
        if candidate in columns:
            return candidate
    lowered = {column.lower(): column for column in columns}
    for candidate in candidates:
        if candidate.lower() in lowered:
            return lowered[candidate.lower()]
    return None


def dropped_note(count: int, what: str, split: str, origin: str) -> str:
    """Return the note that reports `count` dropped rows of one split."""
    noun = "row" if count == 1 else "rows"
    return f"Dropped {count} {noun} with {what} from the {split} data ({origin})."
