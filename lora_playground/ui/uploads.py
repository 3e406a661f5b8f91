"""Checks on uploaded files before any library code reads them."""

from __future__ import annotations

from pathlib import Path

from gradio.utils import get_upload_folder

from lora_playground import settings
from lora_playground.errors import DataError, LimitError
from lora_playground.ui.formatting import format_bytes


def checked_upload(path: str | Path) -> Path:
    """Return the resolved path of an uploaded file after checking where it is and how big it is.

    Only files inside Gradio's upload folder (GRADIO_TEMP_DIR, or <temp>/gradio) are accepted, so a
    crafted request cannot make the app read an arbitrary server path. Raises DataError for a path
    outside that folder or a missing file, and LimitError for a file above
    `settings.limits().max_upload_bytes`. Gradio's `max_file_size` rejects such uploads earlier, so
    this check covers files that reached the folder another way.
    """
    upload_root = Path(get_upload_folder()).resolve()
    resolved = Path(path).resolve()
    if not resolved.is_relative_to(upload_root):
        raise DataError(
            f"The file {Path(path).name!r} is not an upload of this app.", "Upload the file with the file picker."
        )
    if not resolved.is_file():
        raise DataError(f"The uploaded file {resolved.name!r} is missing.", "Upload it again.")

    limit = settings.limits().max_upload_bytes
    size = resolved.stat().st_size
    if size > limit:
        raise LimitError(
            f"The uploaded file {resolved.name!r} is {format_bytes(size)}, above the limit of {format_bytes(limit)}.",
            "Upload a smaller file, or raise LORA_PLAYGROUND_MAX_UPLOAD_MB on the server.",
        )
    return resolved
