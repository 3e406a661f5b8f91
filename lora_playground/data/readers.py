"""Reading one local data file into a `datasets.Dataset` with the file's own column names.

Every format is read by the `datasets` packaged builders (csv, json, parquet, text). Before a text format
reaches them, it is decoded strictly (see `files.py`) and checked with the standard library, because the
builders either accept broken files silently (pandas drops the extra fields of a long CSV row, and reads a
list of numbers as a `text` column) or fail with messages that do not name the line. Those checks let the
errors here name the file and the line.

CSV and TSV cells are read as strings (no type inference, no "NA" -> missing conversion), so a text such as
"NA" or "007" stays as written and a label column cannot change type between chunks of a long file.
"""

import csv
import io
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import datasets
import pyarrow

from lora_playground.data.files import check_data_file, decode_file, format_of, utf8_copy
from lora_playground.errors import ConfigError, DataError, LimitError
from lora_playground.settings import limits

logger = logging.getLogger(__name__)

# datasets 5.2 resolves data files with tqdm 4.70's thread_map, whose ensure_lock creates the progress-bar
# class's lock when it is missing and deletes it afterwards. Two loads at once (two app sessions) then
# race, and one fails with "AttributeError: type object 'tqdm' has no attribute '_lock'". A lock that
# exists before any load is never deleted. `datasets.utils.tqdm` is the class passed to thread_map.
datasets.utils.tqdm.get_lock()

Quoting = Literal["auto", "minimal", "none"]

# Exceptions the datasets builders raise for unreadable input; each becomes a DataError naming the file.
_READ_ERRORS = (
    datasets.exceptions.DatasetsError,
    pyarrow.ArrowException,
    ValueError,
    TypeError,
    KeyError,
    OSError,
    StopIteration,
)


@dataclass(frozen=True)
class ReadOptions:
    """How to parse local files.

    encoding: text encoding of CSV, TSV, JSON, JSONL and line files (default utf-8); other encodings
        are transcoded into a temporary UTF-8 copy.
    file_format: "csv", "tsv", "json", "jsonl" or "parquet" to override the format the suffix implies.
    has_header: whether the first CSV/TSV row contains the column names (default True).
    column_names: CSV/TSV column names; they replace the header row when there is one. Without a header
        and without names, columns are called column_1, column_2, ...
    quoting: "minimal" reads double-quoted fields as in RFC 4180; "none" keeps every `"` as text;
        "auto" (default) is "minimal" for CSV and "none" for TSV, because tab-separated files rarely
        quote and a stray quote would otherwise merge lines into one row.
    """

    encoding: str = "utf-8"
    file_format: str | None = None
    has_header: bool = True
    column_names: tuple[str, ...] | None = None
    quoting: Quoting = "auto"

    def __post_init__(self):
        if self.quoting not in ("auto", "minimal", "none"):
            raise ConfigError(f"Unknown quoting {self.quoting!r}.", "Use 'auto', 'minimal' or 'none'.")


def read_data_file(path: Path, options: ReadOptions, workdir: Path) -> datasets.Dataset:
    """Read one CSV, TSV, JSON, JSONL or Parquet file; `workdir` is a temporary folder for caches and copies.

    Raises DataError for missing, empty, undecodable or malformed files, LimitError when the file exceeds
    the upload size or row limit.
    """
    check_data_file(path)
    file_format = format_of(path, options.file_format)
    if file_format in ("csv", "tsv"):
        dataset = _read_delimited(path, file_format, options, workdir)
    elif file_format in ("json", "jsonl"):
        dataset = _read_json(path, file_format, options, workdir)
    else:
        dataset = _load_with_builder("parquet", path, path, workdir)
    check_row_limit(dataset.num_rows, path.name)
    logger.info("Read %d rows with columns %s from %s", dataset.num_rows, dataset.column_names, path)
    return dataset


def read_lines_file(path: Path, encoding: str, workdir: Path) -> datasets.Dataset:
    """Read a plain text file with one example per line into a dataset with a single `text` column."""
    check_data_file(path)
    text, plain_utf8 = decode_file(path, encoding)
    source = path if plain_utf8 else utf8_copy(path, text, workdir)
    dataset = _load_with_builder("text", path, source, workdir, keep_linebreaks=False)
    check_row_limit(dataset.num_rows, path.name)
    return dataset


def check_row_limit(num_rows: int, origin: str) -> None:
    """Raise LimitError when `num_rows` exceeds the per-file row limit (LORA_PLAYGROUND_MAX_ROWS)."""
    max_rows = limits().max_rows
    if num_rows > max_rows:
        raise LimitError(
            f"{origin} has {num_rows} rows, more than the limit of {max_rows} rows per file.",
            "Use fewer rows or raise the limit with the environment variable LORA_PLAYGROUND_MAX_ROWS.",
        )


def _decode_nonblank(path: Path, encoding: str) -> tuple[str, bool]:
    text, plain_utf8 = decode_file(path, encoding)
    if not text.strip():
        raise DataError(f"Data file {path.name} contains only whitespace.", "Give a file that contains data rows.")
    return text, plain_utf8


def _read_delimited(path: Path, file_format: str, options: ReadOptions, workdir: Path) -> datasets.Dataset:
    text, plain_utf8 = _decode_nonblank(path, options.encoding)
    delimiter = "," if file_format == "csv" else "\t"
    quote_none = options.quoting == "none" or (options.quoting == "auto" and file_format == "tsv")
    quoting = csv.QUOTE_NONE if quote_none else csv.QUOTE_MINIMAL

    names, num_records = _scan_delimited(text, path, delimiter, quoting, options)
    if num_records == 0:
        raise DataError(f"{path.name} has a header but no data rows.", "Add data rows below the header.")
    check_row_limit(num_records, path.name)

    source = path if plain_utf8 else utf8_copy(path, text, workdir)
    features = datasets.Features({name: datasets.Value("string") for name in names})
    dataset = _load_with_builder(
        "csv",
        path,
        source,
        workdir,
        sep=delimiter,
        quoting=quoting,
        header=0 if options.has_header else None,
        names=list(names),
        index_col=False,
        features=features,
        keep_default_na=False,
        na_filter=False,
    )
    if dataset.num_rows != num_records:
        # NOTE: pandas (used by the datasets csv builder) and Python's csv module may parse malformed quoting
        # differently. A row count mismatch means that one of them split or merged rows.
        raise DataError(
            f"{path.name} could not be parsed consistently: {num_records} rows by the csv module, "
            f"{dataset.num_rows} rows by pandas.",
            "Check the quoting of the file: quote whole fields that contain the delimiter, quotes or line breaks.",
        )
    return dataset


def _scan_delimited(
    text: str, path: Path, delimiter: str, quoting: int, options: ReadOptions
) -> tuple[list[str], int]:
    """Return the column names and the number of data rows; raise DataError for a row of the wrong width."""
    # The csv module rejects fields over 128 KiB by default; a file within the upload limit may hold larger
    # ones. This raises a process-wide setting, which only widens what the module accepts.
    csv.field_size_limit(max(csv.field_size_limit(), len(text) + 1))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quoting=quoting)

    names: list[str] | None = list(options.column_names) if options.column_names else None
    header_seen = not options.has_header
    num_records = 0
    try:
        for record in reader:
            if not record:
                continue  # blank line, skipped by pandas too
            if not header_seen:
                header_seen = True
                names = _header_names(record, names, path)
                continue
            if names is None:
                names = [f"column_{index}" for index in range(1, len(record) + 1)]
            if len(record) != len(names):
                raise DataError(
                    f"Line {reader.line_num} of {path.name} has {len(record)} fields, but the file has "
                    f"{len(names)} columns ({', '.join(names)}).",
                    _width_hint(delimiter, quoting),
                )
            num_records += 1
    except csv.Error as error:
        raise DataError(
            f"Line {reader.line_num} of {path.name} is not valid {'CSV' if delimiter == ',' else 'TSV'}: {error}.",
            _width_hint(delimiter, quoting),
        ) from None
    if names is None:
        raise DataError(f"{path.name} contains no rows.", "Give a file with a header row and data rows.")
    return names, num_records


def _header_names(record: list[str], given: list[str] | None, path: Path) -> list[str]:
    if given is not None:
        if len(given) != len(record):
            raise DataError(
                f"{len(given)} column names were given for {path.name}, but its header row has "
                f"{len(record)} fields: {record}.",
                "Give one name per column.",
            )
        return given
    # An empty header cell (pandas writes one for the index column) gets a positional name.
    names = [cell if cell.strip() else f"column_{index}" for index, cell in enumerate(record, start=1)]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise DataError(
            f"The header row of {path.name} repeats the column name(s) {duplicates}.",
            "Give every column a different name, or pass column_names=[...] (CLI: --column-names).",
        )
    return names


def _width_hint(delimiter: str, quoting: int) -> str:
    if quoting == csv.QUOTE_NONE:
        return (
            "Fields cannot contain the delimiter when quoting is off; if the file quotes fields with double "
            "quotes, read it with quoting='minimal' (CLI: --quoting minimal)."
        )
    name = "commas" if delimiter == "," else "tabs"
    return f'Quote fields that contain {name}, double quotes or line breaks with double quotes ("...").'


def _read_json(path: Path, file_format: str, options: ReadOptions, workdir: Path) -> datasets.Dataset:
    text, plain_utf8 = _decode_nonblank(path, options.encoding)
    if file_format == "jsonl":
        num_records = _check_json_lines(text, path)
        field = None
    else:
        num_records, field = _check_json_document(text, path)
    check_row_limit(num_records, path.name)

    source = path if plain_utf8 else utf8_copy(path, text, workdir)
    extra = {"field": field} if field is not None else {}
    dataset = _load_with_builder("json", path, source, workdir, **extra)
    if dataset.num_rows != num_records:
        raise DataError(
            f"{path.name} contains {num_records} JSON records, but only {dataset.num_rows} could be read.",
            "Check that every record is a flat JSON object with the same fields.",
        )
    return dataset


def _check_json_lines(text: str, path: Path) -> int:
    """Return the number of records; raise DataError naming the first line that is not a JSON object."""
    num_records = 0
    has_field = False
    # Split on "\n" only: str.splitlines would also split on U+2028 and other characters that JSON strings
    # may contain unescaped.
    for line_number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(
                f"Line {line_number} of {path.name} is not valid JSON: {error.msg} at column {error.colno}.",
                "Each line of a JSONL file must be one complete JSON object.",
            ) from None
        if not isinstance(record, dict):
            raise DataError(
                f"Line {line_number} of {path.name} is a JSON {_json_type(record)}, not an object.",
                'Each line must be an object such as {"text": "...", "label": "..."}.',
            )
        num_records += 1
        has_field = has_field or bool(record)
    if num_records == 0:
        raise DataError(f"{path.name} contains no JSON records.", "Give a file with one JSON object per line.")
    if not has_field:
        raise DataError(f"{path.name} contains only empty JSON objects ({{}}).", "Give each record its fields.")
    return num_records


def _check_json_document(text: str, path: Path) -> tuple[int, str | None]:
    """Return the number of records and the field holding them (None for a top-level list)."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        hint = "The file must be one JSON list of objects."
        if error.msg == "Extra data":
            hint += " It looks like JSON Lines: rename it to .jsonl or pass file_format='jsonl'."
        raise DataError(
            f"{path.name} is not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}.", hint
        ) from None

    field = None
    if isinstance(document, dict):
        # {"data": [...]}: a single list of records under one key is read from that key.
        lists = [key for key, value in document.items() if isinstance(value, list)]
        if len(lists) != 1:
            raise DataError(
                f"{path.name} contains a JSON object with keys {list(document)[:10]}, not a list of records.",
                "Give a JSON list of objects, or an object with exactly one key whose value is that list.",
            )
        field = lists[0]
        document = document[field]
        logger.info("Reading the records of %s from its key %r", path, field)
    if not isinstance(document, list):
        raise DataError(
            f"{path.name} contains a JSON {_json_type(document)}, not a list of records.",
            'Give a list of objects such as [{"text": "...", "label": "..."}].',
        )
    if not document:
        raise DataError(f"{path.name} contains an empty list of records.", "Add records to the list.")
    for index, record in enumerate(document, start=1):
        if not isinstance(record, dict):
            raise DataError(
                f"Record {index} of {path.name} is a JSON {_json_type(record)}, not an object.",
                'Every record must be an object such as {"text": "...", "label": "..."}.',
            )
    if not any(document):
        raise DataError(f"{path.name} contains only empty JSON objects ({{}}).", "Give each record its fields.")
    return len(document), field


def _json_type(value) -> str:
    if isinstance(value, list):
        return "list"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return "null" if value is None else type(value).__name__


def _load_with_builder(builder: str, path: Path, source: Path, workdir: Path, **config) -> datasets.Dataset:
    """Run the `datasets` packaged `builder` on `source`; errors name `path`, the file the user gave."""
    try:
        loaded = datasets.load_dataset(
            builder,
            data_files={"train": str(source)},
            cache_dir=str(workdir / "datasets-cache"),
            keep_in_memory=True,
            **config,
        )
    except _READ_ERRORS as error:
        raise DataError(
            f"Could not read {path.name} as {builder}: {_root_message(error)}",
            "Check that the file is complete and in the format its name says.",
        ) from error
    return loaded["train"]


def _root_message(error: BaseException) -> str:
    """Return the message of the innermost cause, which names the actual parse problem."""
    while error.__cause__ is not None:
        error = error.__cause__
    message = str(error).strip() or type(error).__name__
    return message if len(message) <= 300 else message[:300] + "..."
