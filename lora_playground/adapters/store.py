"""The adapter store: one folder per entry under a root folder, written atomically.

A LoRA entry is a plain PEFT folder (`adapter_config.json`, `adapter_model.safetensors`, the task head
saved through `modules_to_save`) plus `metadata.json` and a `README.md` model card, so
`PeftModel.from_pretrained(AutoModelForSequenceClassification.from_pretrained(<base>, num_labels=k), folder)`
loads it without this package. A full entry is a transformers model folder with its tokenizer.

Every write goes to a hidden temporary folder inside the root and is renamed into place, so readers
never see a half-written entry. Overwriting needs `force=True`: the old entry is renamed aside before
the new one takes its name, then deleted. When a store is opened, it removes the temporary and deleted
folders a killed process left behind, and it renames a replaced entry back when the process died
before its replacement took the name, so a crash never loses a finished entry.
"""

import json
import logging
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn

from lora_playground import settings
from lora_playground.adapters.card import render_model_card
from lora_playground.adapters.compat import (
    ADAPTER_CONFIG,
    ADAPTER_WEIGHTS,
    PICKLE_SUFFIXES,
    check_compatible,
    check_entry_files,
    read_tensor_shapes,
    raise_for_problems,
)
from lora_playground.adapters.metadata import METADATA_FILE, AdapterMetadata
from lora_playground.errors import AdapterError

logger = logging.getLogger(__name__)

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
CARD_FILE = "README.md"
_TEMPORARY_PREFIX = ".tmp-"
_TRASH_PREFIX = ".trash-"
# An entry moved aside by a forced overwrite; it is restored if the overwrite never finished.
_REPLACED_PREFIX = ".old-"
# A leftover temporary folder whose process still runs is kept unless it is older than this.
_STALE_SECONDS = 24 * 3600

# Commits and deletes in one process take this lock, so two threads never rename the same entry at once.
_RENAME_LOCK = threading.RLock()


def validate_name(name: str) -> str:
    """Return `name` if it is a valid entry name, else raise AdapterError naming it.

    Valid: 1 to 64 characters from letters, digits, ".", "_" and "-", starting with a letter or digit,
    without "..". Path separators and anything else that could leave the store folder are rejected.
    """
    # fullmatch, because `$` in NAME_PATTERN.match would also accept a name that ends in a newline.
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name) or ".." in name:
        raise AdapterError(
            f"Invalid adapter name {name!r}.",
            "Use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit, with no '..' "
            "and no path separators (for example sms-spam-lora).",
        )
    return name


@dataclass
class AdapterEntry:
    """One store entry as listed. For a broken entry `problem` contains the reason and `metadata` may be None."""

    name: str
    path: Path
    metadata: AdapterMetadata | None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None

    @property
    def kind(self) -> str | None:
        return self.metadata.kind if self.metadata else None

    @property
    def size_bytes(self) -> int:
        """Bytes on disk of all files in the entry."""
        return sum(path.stat().st_size for path in self.path.rglob("*") if path.is_file())


class AdapterStore:
    """Save, list, load and delete adapters and full checkpoints under `root` (default: settings.adapters_dir())."""

    def __init__(self, root: Path | str | None = None):
        self.root = Path(root).expanduser().resolve() if root is not None else settings.adapters_dir()
        self.root.mkdir(parents=True, exist_ok=True)
        self._remove_leftovers()

    # Reading ------------------------------------------------------------------------------------------

    def path(self, name: str) -> Path:
        """Return the folder of entry `name` (which need not exist); raise AdapterError for an invalid name."""
        return self.root / validate_name(name)

    def names(self) -> list[str]:
        """Return the sorted names of all entry folders, broken ones included."""
        return sorted(
            path.name for path in self.root.iterdir() if path.is_dir() and not path.name.startswith(".")
        )

    def list(self) -> list[AdapterEntry]:
        """Return every entry sorted by name; a broken entry is listed with its problem instead of raising."""
        entries = []
        for name in self.names():
            try:
                entries.append(self.get(name))
            except AdapterError as error:
                if not (self.root / name).exists():
                    continue  # deleted while listing
                metadata = None
                try:
                    metadata = AdapterMetadata.load(self.root / name / METADATA_FILE)
                except AdapterError:
                    pass
                entries.append(AdapterEntry(name, self.root / name, metadata, str(error)))
        return entries

    def get(self, name: str, *, allow_pickle: bool = False) -> AdapterEntry:
        """Return entry `name` with its validated metadata; raise AdapterError if it is missing or broken."""
        folder = self.path(name)
        if folder.is_symlink():
            raise AdapterError(
                f"Adapter entry {folder} is a symbolic link; entries must be real folders inside the store.",
                "Copy the folder into the store instead of linking it.",
            )
        if not folder.is_dir():
            # A forced overwrite in this process moves the old entry aside just before the new one takes its
            # name. Waiting for the rename lock keeps the entry from seeming missing in between.
            with _RENAME_LOCK:
                missing = not folder.is_dir()
            if missing:
                existing = ", ".join(self.names()) or "none"
                raise AdapterError(f"No adapter named {name!r} in {self.root}.", f"Existing entries: {existing}.")
        # Read under the rename lock too: a forced overwrite in another thread of this process could
        # otherwise move the folder away between reading its metadata and checking its files.
        with _RENAME_LOCK:
            metadata = AdapterMetadata.load(folder / METADATA_FILE)
            problems = check_entry_files(folder, metadata.kind, allow_pickle=allow_pickle)
        raise_for_problems(problems, str(folder))
        return AdapterEntry(name, folder, metadata)

    # Loading ------------------------------------------------------------------------------------------

    def load(self, name: str, base, *, allow_pickle: bool = False) -> nn.Module:
        """Load entry `name` for inference on `base` (a `models.SharedBase`), in eval mode.

        A LoRA entry returns a `PeftModel` on a task model that shares the base's weights; a full entry
        returns an independent transformers model. Only safetensors are read unless `allow_pickle` is
        True. Raises AdapterError when files are missing or corrupted, or when the entry does not fit
        the base (each mismatched module is named with both shapes).
        """
        try:
            entry = self.get(name, allow_pickle=allow_pickle)
            problems = check_compatible(entry.path, base, allow_pickle=allow_pickle)
            raise_for_problems(problems, f"adapter {name!r} ({entry.path})", base.spec.name)
            if entry.metadata.kind == "lora":
                model = self._load_lora(entry, base, allow_pickle)
            else:
                model = self._load_full(entry, base, allow_pickle)
        except FileNotFoundError as error:
            raise AdapterError(
                f"Adapter {name!r} lost the file {error.filename} while it was loading.",
                "It was probably deleted or replaced at the same time; list the store and try again.",
            ) from error
        logger.info("Loaded %s entry %s on base %s", entry.metadata.kind, name, base.spec.name)
        return model

    def _load_lora(self, entry: AdapterEntry, base, allow_pickle: bool) -> nn.Module:
        from peft import PeftModel, get_peft_model_state_dict

        metadata = entry.metadata
        # The head built here is replaced by the saved one; a private RNG keeps the caller's seed intact.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            if metadata.task_type == "classification":
                model = base.classification_model(len(metadata.label_names), metadata.label_names)
            else:
                model = base.causal_lm_model()
        try:
            peft_model = PeftModel.from_pretrained(model, str(entry.path), is_trainable=False)
        except (RuntimeError, ValueError, KeyError, OSError) as error:
            raise AdapterError(
                f"PEFT could not load adapter {entry.name!r} from {entry.path}: {error}",
                "Check that the adapter was trained on this base model, or save it again.",
            ) from error

        # PEFT only warns about adapter weights missing from the file, which would leave them at their
        # initial values and silently change predictions, so treat that as an error here.
        weights = entry.path / ADAPTER_WEIGHTS
        if not weights.is_file():
            weights = entry.path / "adapter_model.bin"
        saved = set(read_tensor_shapes(weights, allow_pickle=allow_pickle))
        missing = sorted(set(get_peft_model_state_dict(peft_model, save_embedding_layers=False)) - saved)
        if missing:
            raise AdapterError(
                f"Adapter {entry.name!r} ({weights}) is missing weights for {len(missing)} tensors, for example {missing[:3]}.",
                "The file is incomplete: delete the entry and save or pull it again.",
            )
        return peft_model.eval()

    def _load_full(self, entry: AdapterEntry, base, allow_pickle: bool) -> nn.Module:
        from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

        auto_class = (
            AutoModelForSequenceClassification if entry.metadata.task_type == "classification" else AutoModelForCausalLM
        )
        try:
            model = auto_class.from_pretrained(
                entry.path,
                dtype=torch.float32,
                use_safetensors=None if allow_pickle else True,
                trust_remote_code=base.trust_remote_code,
            )
        except (OSError, ValueError, RuntimeError) as error:
            raise AdapterError(
                f"Could not load the full checkpoint {entry.name!r} from {entry.path}: {error}",
                "Delete the entry and save or pull it again.",
            ) from error
        model.requires_grad_(False)
        return model.eval()

    # Writing ------------------------------------------------------------------------------------------

    def save_lora(
        self,
        name: str,
        peft_model,
        metadata: AdapterMetadata,
        *,
        adapter_name: str = "default",
        force: bool = False,
    ) -> AdapterEntry:
        """Save adapter `adapter_name` of a PeftModel as entry `name` (a flat PEFT folder plus metadata and card).

        For classification the task head must be in the adapter's `modules_to_save`, else reloading
        would give a random head. `adapter_config.json` records the base's Hub id (or its name for a
        local base) as `base_model_name_or_path`. Raises AdapterError if `name` exists and `force` is False.
        """
        from lora_playground.models.layers import classification_head_names

        self._check_writable(name, force)
        if metadata.kind != "lora":
            raise AdapterError(f"save_lora needs metadata with kind 'lora', not {metadata.kind!r}.", "Use save_full.")
        if adapter_name not in peft_model.peft_config:
            raise AdapterError(
                f"The model has no adapter named {adapter_name!r}.",
                f"Available adapters: {', '.join(peft_model.peft_config)}.",
            )
        if metadata.task_type == "classification":
            saved_modules = set(peft_model.peft_config[adapter_name].modules_to_save or [])
            heads = classification_head_names(peft_model)
            unsaved = [head for head in heads if head not in saved_modules]
            if unsaved:
                raise AdapterError(
                    f"The classification head {unsaved} is not in the adapter's modules_to_save, so it would not be saved.",
                    f"Create the LoraConfig with modules_to_save={heads}.",
                )

        temporary = self._temporary_folder(name)
        try:
            scratch = temporary / ".peft"
            # save_embedding_layers="auto" would ask the Hub for the base's config.json to detect a resized
            # vocabulary. The base is frozen and never resized, so its embeddings need not be saved.
            peft_model.save_pretrained(
                str(scratch), selected_adapters=[adapter_name], safe_serialization=True, save_embedding_layers=False
            )
            # PEFT writes every adapter except "default" into a subfolder named after it.
            written = scratch / adapter_name if adapter_name != "default" else scratch
            for file_name in (ADAPTER_CONFIG, ADAPTER_WEIGHTS):
                os.replace(written / file_name, temporary / file_name)
            shutil.rmtree(scratch)

            adapter_config = json.loads((temporary / ADAPTER_CONFIG).read_text(encoding="utf-8"))
            adapter_config["base_model_name_or_path"] = metadata.base_model.hub_id or metadata.base_model.name
            (temporary / ADAPTER_CONFIG).write_text(json.dumps(adapter_config, indent=2) + "\n", encoding="utf-8")
            self._write_metadata_and_card(temporary, replace(metadata, name=name), adapter_config)
            self._commit(temporary, name, force)
        finally:
            shutil.rmtree(temporary, ignore_errors=True)
        return self.get(name)

    def save_full(self, name: str, model: nn.Module, tokenizer, metadata: AdapterMetadata, *, force: bool = False) -> AdapterEntry:
        """Save a full (non-PEFT) transformers model and its tokenizer as entry `name`, in safetensors."""
        self._check_writable(name, force)
        if metadata.kind != "full":
            raise AdapterError(f"save_full needs metadata with kind 'full', not {metadata.kind!r}.", "Use save_lora.")
        if hasattr(model, "peft_config"):
            raise AdapterError("save_full got a PEFT model.", "Use save_lora, or merge the adapter into a full copy first.")

        temporary = self._temporary_folder(name)
        try:
            model.save_pretrained(temporary, safe_serialization=True)
            if tokenizer is not None:
                tokenizer.save_pretrained(temporary)
            self._write_metadata_and_card(temporary, replace(metadata, name=name), None)
            self._commit(temporary, name, force)
        finally:
            shutil.rmtree(temporary, ignore_errors=True)
        return self.get(name)

    def install_from_folder(
        self,
        folder: Path | str,
        name: str,
        metadata_updates: dict | None = None,
        *,
        force: bool = False,
        allow_pickle: bool = False,
    ) -> AdapterEntry:
        """Copy a downloaded entry folder (for example a Hub snapshot) into the store as `name`.

        Top-level files are copied (symbolic links are followed, hidden files and subfolders skipped).
        Pickle files are skipped when safetensors weights exist; an entry with only pickle weights needs
        `allow_pickle`. `metadata_updates` is merged into the folder's metadata.json (one level deep for
        object fields such as provenance), and the result must be valid metadata. A README.md is
        written when the folder has none.
        """
        source = Path(folder)
        self._check_writable(name, force)
        if not source.is_dir():
            raise AdapterError(f"Cannot install {source}: folder not found.", "Pass the folder that contains adapter_config.json.")

        temporary = self._temporary_folder(name)
        try:
            has_safetensors = any(path.suffix == ".safetensors" for path in source.iterdir())
            for path in sorted(source.iterdir()):
                if path.name.startswith(".") or not path.is_file():
                    continue
                if path.suffix in PICKLE_SUFFIXES and (has_safetensors or not allow_pickle):
                    logger.info("Not copying pickle file %s into entry %s.", path.name, name)
                    continue
                shutil.copyfile(path, temporary / path.name)

            values = {}
            if (temporary / METADATA_FILE).is_file():
                values = json.loads((temporary / METADATA_FILE).read_text(encoding="utf-8"))
            elif not metadata_updates:
                raise AdapterError(
                    f"{source} has no {METADATA_FILE}, so its task and base model are unknown.",
                    "Pass metadata_updates with the task, base_model and kind of the entry.",
                )
            values = _merge_metadata(values, metadata_updates or {})
            values["name"] = name
            metadata = AdapterMetadata.from_dict(values, source=f"metadata of {source}")
            raise_for_problems(check_entry_files(temporary, metadata.kind, allow_pickle=allow_pickle), str(source))

            adapter_config = None
            if metadata.kind == "lora":
                adapter_config = json.loads((temporary / ADAPTER_CONFIG).read_text(encoding="utf-8"))
            metadata.save(temporary / METADATA_FILE)
            if not (temporary / CARD_FILE).is_file():
                (temporary / CARD_FILE).write_text(render_model_card(metadata.to_dict(), adapter_config=adapter_config), encoding="utf-8")
            self._commit(temporary, name, force)
        except json.JSONDecodeError as error:
            raise AdapterError(f"A JSON file in {source} is invalid: {error}.", "Download the folder again.") from error
        finally:
            shutil.rmtree(temporary, ignore_errors=True)
        return self.get(name, allow_pickle=allow_pickle)

    def update_metadata(self, name: str, updates: dict) -> AdapterEntry:
        """Merge `updates` into entry `name`'s metadata.json (one level deep) and render its README again.

        Each file is replaced atomically (written beside it, then renamed). The merged metadata must be
        valid; the entry's name cannot be changed this way. Raises AdapterError if the entry is missing.
        """
        folder = self.path(name)
        with _RENAME_LOCK:
            metadata = self.get(name).metadata
            values = _merge_metadata(metadata.to_dict(), updates)
            values["name"] = name
            updated = AdapterMetadata.from_dict(values, source=f"metadata update of {folder}")
            adapter_config = None
            if updated.kind == "lora":
                adapter_config = json.loads((folder / ADAPTER_CONFIG).read_text(encoding="utf-8"))
            suffix = f".{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp"
            new_metadata = folder / f".{METADATA_FILE}{suffix}"
            new_card = folder / f".{CARD_FILE}{suffix}"
            try:
                updated.save(new_metadata)
                new_card.write_text(render_model_card(updated.to_dict(), adapter_config=adapter_config), encoding="utf-8")
                os.replace(new_metadata, folder / METADATA_FILE)
                os.replace(new_card, folder / CARD_FILE)
            finally:
                new_metadata.unlink(missing_ok=True)
                new_card.unlink(missing_ok=True)
        return AdapterEntry(name, folder, updated)

    def delete(self, name: str) -> None:
        """Delete entry `name`; raise AdapterError if it does not exist. Safe against concurrent deletes."""
        folder = self.path(name)
        aside = self.root / f"{_TRASH_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}-{name}"
        with _RENAME_LOCK:
            if not folder.is_dir() or folder.is_symlink():
                existing = ", ".join(self.names()) or "none"
                raise AdapterError(f"No adapter named {name!r} in {self.root}.", f"Existing entries: {existing}.")
            try:
                os.rename(folder, aside)
            except FileNotFoundError:
                raise AdapterError(f"No adapter named {name!r} in {self.root}.", "It was deleted meanwhile.") from None
        shutil.rmtree(aside, ignore_errors=True)
        logger.info("Deleted adapter entry %s from %s", name, self.root)

    @contextmanager
    def scratch_folder(self, label: str) -> Iterator[Path]:
        """Yield a new hidden folder inside the root for staging files, and delete it afterwards.

        Listings skip it, and if the process is killed, the next store opened on this root deletes it,
        so downloads staged here never outlive a crash. `label` must be a valid entry name.
        """
        folder = self._temporary_folder(validate_name(label))
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    # Helpers ------------------------------------------------------------------------------------------

    def _check_writable(self, name: str, force: bool) -> None:
        folder = self.path(name)
        if folder.exists() and not force:
            raise AdapterError(
                f"An adapter named {name!r} already exists in {self.root}.",
                "Pass force=True (CLI: --force) to replace it, or pick another name.",
            )

    def _temporary_folder(self, name: str) -> Path:
        folder = self.root / f"{_TEMPORARY_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}-{name}"
        folder.mkdir()
        return folder

    def _write_metadata_and_card(self, folder: Path, metadata: AdapterMetadata, adapter_config: dict | None) -> None:
        metadata.save(folder / METADATA_FILE)
        (folder / CARD_FILE).write_text(
            render_model_card(metadata.to_dict(), adapter_config=adapter_config), encoding="utf-8"
        )

    def _commit(self, temporary: Path, name: str, force: bool) -> None:
        """Rename a finished temporary folder to `name`, moving an existing entry aside first when `force`."""
        target = self.root / name
        with _RENAME_LOCK:
            aside = None
            if target.exists():
                if not force:
                    raise AdapterError(
                        f"An adapter named {name!r} already exists in {self.root}.",
                        "Pass force=True (CLI: --force) to replace it, or pick another name.",
                    )
                aside = self.root / f"{_REPLACED_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}-{name}"
                os.rename(target, aside)
            try:
                os.rename(temporary, target)
            except OSError:
                if aside is not None:
                    os.rename(aside, target)
                raise
        if aside is not None:
            shutil.rmtree(aside, ignore_errors=True)
        logger.info("Saved adapter entry %s in %s", name, self.root)

    def _remove_leftovers(self) -> None:
        """Clean up after writers that are gone (or whose folders are over a day old).

        Temporary and deleted folders are removed. A replaced entry whose name is free again is renamed
        back, since its writer died after moving it aside and before the replacement took the name.
        A replaced entry whose name is taken is removed.
        """
        leftover_prefixes = (_TEMPORARY_PREFIX, _TRASH_PREFIX, _REPLACED_PREFIX)
        for path in self.root.iterdir():
            if not path.name.startswith(leftover_prefixes) or not path.is_dir():
                continue
            # Leftover names are "<prefix><pid>-<8 hex digits>-<entry name>"; each prefix has one "-".
            parts = path.name.split("-", 3)
            pid_text = parts[1] if len(parts) > 1 else ""
            running = pid_text.isdigit() and _process_exists(int(pid_text))
            try:
                age = time.time() - path.stat().st_mtime
            except FileNotFoundError:
                continue
            if running and age < _STALE_SECONDS:
                continue
            if path.name.startswith(_REPLACED_PREFIX) and len(parts) == 4 and self._restore_replaced(path, parts[3]):
                continue
            logger.info("Removing leftover folder %s from an interrupted write.", path)
            shutil.rmtree(path, ignore_errors=True)

    def _restore_replaced(self, aside: Path, name: str) -> bool:
        """Rename an entry moved aside by an unfinished overwrite back to `name`; False if `name` is taken."""
        if not NAME_PATTERN.fullmatch(name) or ".." in name:
            return False
        target = self.root / name
        with _RENAME_LOCK:
            if target.exists() or target.is_symlink():
                return False
            os.rename(aside, target)
        logger.warning("Restored adapter entry %s: the process replacing it stopped before the new entry was saved.", name)
        return True


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _merge_metadata(values: dict, updates: dict) -> dict:
    merged = dict(values)
    for key, value in updates.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged
