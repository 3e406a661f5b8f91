"""Checks on a local data file before it is parsed: existence, size limit, text encoding.

Text formats are always handed to the parsers as UTF-8 without a byte order mark. A file in another
encoding (or with a BOM) is transcoded into a temporary UTF-8 copy, so the parsers never guess.
"""

import codecs
import logging
from pathlib import Path

from lora_playground.errors import DataError, LimitError
from lora_playground.settings import limits

logger = logging.getLogger(__name__)

MIB = 1024 * 1024

# File name suffix -> format name. Anything else needs file_format=... to be read.
FILE_FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
}


def format_of(path: Path, file_format: str | None = None) -> str:
    """Return the format name of `path`: `file_format` when given, else the one its suffix implies."""
    if file_format is not None:
        known = sorted(set(FILE_FORMATS.values()))
        if file_format not in known:
            raise DataError(
                f"Unknown file format {file_format!r}.",
                f"Use one of: {', '.join(known)}.",
            )
        return file_format
    suffix = path.suffix.lower()
    if suffix not in FILE_FORMATS:
        raise DataError(
            f"Cannot tell the format of {path.name}: the suffix {suffix or '(none)'!r} is not supported.",
            f"Use a file ending in {', '.join(FILE_FORMATS)}, or name the format with file_format=... "
            "(CLI: --file-format).",
        )
    return FILE_FORMATS[suffix]


def check_data_file(path: Path) -> int:
    """Check that `path` is a non-empty regular file within the upload size limit; return its size in bytes.

    Raises DataError for a missing, non-regular or empty file and LimitError when the file is larger than
    `settings.limits().max_upload_bytes` (environment variable LORA_PLAYGROUND_MAX_UPLOAD_MB).
    """
    if not path.exists():
        raise DataError(f"Data file {str(path)!r} was not found.", "Check the path and the file name.")
    if not path.is_file():
        raise DataError(f"{str(path)!r} is not a regular file.", "Give a data file or a folder of split files.")
    size = path.stat().st_size
    if size == 0:
        raise DataError(f"Data file {str(path)!r} is empty (0 bytes).", "Give a file that contains data rows.")
    max_bytes = limits().max_upload_bytes
    if size > max_bytes:
        raise LimitError(
            f"Data file {path.name} is {size / MIB:.1f} MiB, more than the upload limit of "
            f"{max_bytes / MIB:.0f} MiB.",
            "Use a smaller file or raise the limit with the environment variable LORA_PLAYGROUND_MAX_UPLOAD_MB.",
        )
    return size


def decode_file(path: Path, encoding: str) -> tuple[str, bool]:
    """Read `path` and decode it strictly with `encoding`, dropping a leading byte order mark.

    Returns the text and whether the file's bytes already are UTF-8 without a BOM, in which case the
    parsers read the file itself instead of a transcoded copy. Raises DataError naming the file, the byte
    offset and the line of the first byte that does not decode, and DataError for an unknown encoding.
    """
    try:
        codec = codecs.lookup(encoding)
    except LookupError:
        raise DataError(
            f"Unknown text encoding {encoding!r}.",
            "Use a Python codec name such as utf-8, cp1252 or latin-1.",
        ) from None

    data = path.read_bytes()
    plain_utf8 = codec.name == "utf-8" and not data.startswith(codecs.BOM_UTF8)
    skipped = 0
    if codec.name == "utf-8" and data.startswith(codecs.BOM_UTF8):
        skipped = len(codecs.BOM_UTF8)
    try:
        text = data[skipped:].decode(codec.name)
    except UnicodeDecodeError as error:
        offset = skipped + error.start
        line = data[:offset].count(b"\n") + 1
        bad_byte = data[offset]
        if codec.name == "utf-8":
            hint = (
                "The file is probably in a Windows or Latin encoding: read it with --encoding cp1252 "
                "(encoding='cp1252' in Python), or save it as UTF-8."
            )
        else:
            hint = "Pass the encoding the file was saved in, for example --encoding utf-8 or --encoding cp1252."
        raise DataError(
            f"{path.name} is not valid {encoding} text: byte 0x{bad_byte:02x} at byte offset {offset} "
            f"(line {line}) cannot be decoded.",
            hint,
        ) from None

    if text.startswith("\ufeff"):
        # A byte order mark that the codec kept as a character (utf-16-le and utf-16-be do).
        text = text[1:]
        plain_utf8 = False
    return text, plain_utf8


def utf8_copy(path: Path, text: str, workdir: Path) -> Path:
    """Write `text` as UTF-8 into a new file in `workdir` (a temporary folder the caller deletes)."""
    copy = workdir / f"utf8-{len(list(workdir.iterdir()))}-{path.name}"
    copy.write_text(text, encoding="utf-8", newline="")
    logger.info("Transcoded %s into a temporary UTF-8 copy", path)
    return copy
