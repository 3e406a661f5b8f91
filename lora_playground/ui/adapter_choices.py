"""The stored runs (LoRA adapters and full checkpoints) as choices for the screens' dropdowns."""

from __future__ import annotations

import logging

from lora_playground.adapters import AdapterStore
from lora_playground.errors import PlaygroundError

logger = logging.getLogger(__name__)


def store_entries() -> list:
    """Return the entries of the adapter store sorted by name; an unreadable store logs and returns []."""
    try:
        return list(AdapterStore().list())
    except PlaygroundError as error:
        logger.warning("Cannot list the adapter store: %s", error)
        return []


def adapter_choices(kinds: tuple[str, ...] = ("lora", "full"), include_broken: bool = False) -> list[tuple[str, str]]:
    """Return (label, name) pairs such as ("sms-lora (lora, sms)", "sms-lora") for a Dropdown.

    Broken entries (unreadable metadata or missing files) are left out unless `include_broken` is set,
    which the Adapters screen uses so they can still be inspected and deleted.
    """
    choices = []
    for entry in store_entries():
        if not entry.ok:
            if include_broken:
                choices.append((f"{entry.name} (broken)", entry.name))
            continue
        metadata = entry.metadata
        if metadata.kind not in kinds:
            continue
        task_name = metadata.task.get("name", "?")
        choices.append((f"{entry.name} ({metadata.kind}, {task_name})", entry.name))
    return choices
