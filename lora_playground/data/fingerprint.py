"""A content fingerprint of prepared task data, recorded in every run."""

import hashlib
import json

SPLIT_ORDER = ("train", "validation", "test")


def data_fingerprint(task_type: str, label_names: list[str], rows_by_split: dict[str, list[dict]]) -> str:
    """Return the sha256 hex digest of the task type, the label names and every normalized row.

    Rows are serialized as canonical JSON (sorted keys, UTF-8, no whitespace), one per line, split by split
    in train/validation/test order, so the digest depends only on the data and is the same on every machine.
    """
    digest = hashlib.sha256()
    header = {"task_type": task_type, "label_names": list(label_names)}
    digest.update(_canonical(header))
    for split in SPLIT_ORDER:
        if split not in rows_by_split:
            continue
        digest.update(f"\n#{split}\n".encode())
        for row in rows_by_split[split]:
            digest.update(_canonical(row))
            digest.update(b"\n")
    return digest.hexdigest()


def _canonical(value) -> bytes:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
