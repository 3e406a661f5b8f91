"""The `metadata.json` file of a store entry: what was trained, on which base and data, and how it scored.

Schema version 1 (JSON object):

| field | type | meaning |
| --- | --- | --- |
| schema_version | int | 1 |
| name | str | the store entry name |
| kind | "lora" or "full" | a PEFT LoRA adapter, or a full checkpoint (the full-finetune baseline) |
| task | object | `Task.to_dict()`: name, type, columns, label_names, source, license |
| base_model | object | name (accepted by `models.resolve_base`), hub_id (or null), fingerprint (sha256 hex of the base state dict), architecture ("decoder"/"encoder"), model_type, license, gguf_file (the GGUF file the weights were dequantized from, or null) |
| train_config | object | `TrainConfig.to_dict()` |
| metrics | object | test-split metrics |
| val_metrics | object | validation-split metrics |
| cost | object | `CostReport` fields: parameters, stored bytes, peak memory, time, tokens/s, latency |
| data_fingerprint | str or null | `TaskData.fingerprint` of the data used |
| created_at | str | ISO 8601 time in UTC |
| provenance | object | source ("local" or "hub"), repo_id, revision, commit (Hub pulls only) |
| library_versions | object | versions of torch, transformers, peft and lora_playground at save time |

Unknown top-level keys are kept in `extra` and written back, so a newer writer's fields survive a rewrite.
"""

import json
import logging
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from lora_playground.errors import AdapterError

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
METADATA_FILE = "metadata.json"

EntryKind = Literal["lora", "full"]


def utc_now() -> str:
    """Return the current time as an ISO 8601 string in UTC, to the second."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def library_versions() -> dict[str, str]:
    """Return the versions of the libraries that decide how a saved entry loads."""
    import peft
    import torch
    import transformers

    import lora_playground

    return {
        "lora_playground": lora_playground.__version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
    }


@dataclass
class BaseModelRef:
    """The base model an entry was trained on, as recorded in metadata."""

    name: str
    fingerprint: str
    architecture: Literal["decoder", "encoder"]
    hub_id: str | None = None
    model_type: str | None = None
    license: str | None = None
    gguf_file: str | None = None
    """Name of the GGUF file the weights were dequantized from; None for ordinary weights."""

    @classmethod
    def from_shared_base(cls, base) -> "BaseModelRef":
        """Describe a `models.SharedBase`."""
        from lora_playground.models.gguf_cache import gguf_origin

        return cls(
            name=base.spec.name,
            fingerprint=base.fingerprint,
            architecture=base.spec.architecture,
            hub_id=base.spec.hub_id,
            model_type=base.model_type,
            license=base.spec.license,
            gguf_file=gguf_origin(base.source),
        )


@dataclass
class Provenance:
    """Origin of an entry: trained here ("local") or pulled from the Hub ("hub")."""

    source: Literal["local", "hub"] = "local"
    repo_id: str | None = None
    revision: str | None = None
    commit: str | None = None


@dataclass
class AdapterMetadata:
    """The content of an entry's metadata.json (see the module docstring for each field)."""

    name: str
    kind: EntryKind
    task: dict
    base_model: BaseModelRef
    train_config: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    val_metrics: dict = field(default_factory=dict)
    cost: dict = field(default_factory=dict)
    data_fingerprint: str | None = None
    created_at: str = field(default_factory=utc_now)
    provenance: Provenance = field(default_factory=Provenance)
    library_versions: dict = field(default_factory=library_versions)
    schema_version: int = SCHEMA_VERSION
    extra: dict = field(default_factory=dict)

    @property
    def task_type(self) -> str:
        return self.task.get("type", "classification")

    @property
    def label_names(self) -> list[str]:
        return list(self.task.get("label_names") or [])

    def to_dict(self) -> dict:
        """Return the JSON-ready dictionary, with `extra` keys merged back at the top level."""
        values = asdict(self)
        extra = values.pop("extra")
        return {**extra, **values}

    @classmethod
    def from_dict(cls, values: dict, source: str = "metadata") -> "AdapterMetadata":
        """Validate and build metadata; raise AdapterError naming `source` and the first invalid field."""
        if not isinstance(values, dict):
            raise _invalid(source, "(top level)", f"expected a JSON object, found {type(values).__name__}")
        version = values.get("schema_version")
        if version != SCHEMA_VERSION:
            if isinstance(version, int) and version > SCHEMA_VERSION:
                raise AdapterError(
                    f"{source}: schema_version {version} is newer than this LoRA Playground reads ({SCHEMA_VERSION}).",
                    "Upgrade lora_playground to load this entry.",
                )
            raise _invalid(source, "schema_version", f"expected {SCHEMA_VERSION}, found {version!r}")

        _require_type(values, "name", str, source)
        if values.get("kind") not in ("lora", "full"):
            raise _invalid(source, "kind", f"expected 'lora' or 'full', found {values.get('kind')!r}")
        task = _require_type(values, "task", dict, source)
        _validate_task(task, source)
        base_model = _parse_base_model(_require_type(values, "base_model", dict, source), source)
        for name in ("train_config", "metrics", "val_metrics", "cost", "library_versions"):
            _require_type(values, name, dict, source, optional=True)
        _require_type(values, "data_fingerprint", str, source, optional=True)
        created_at = _require_type(values, "created_at", str, source)
        try:
            datetime.fromisoformat(created_at)
        except ValueError:
            raise _invalid(source, "created_at", f"{created_at!r} is not an ISO 8601 time") from None
        provenance = _parse_provenance(_require_type(values, "provenance", dict, source, optional=True) or {}, source)

        known = {item.name for item in fields(cls)}
        return cls(
            name=values["name"],
            kind=values["kind"],
            task=task,
            base_model=base_model,
            train_config=values.get("train_config") or {},
            metrics=values.get("metrics") or {},
            val_metrics=values.get("val_metrics") or {},
            cost=values.get("cost") or {},
            data_fingerprint=values.get("data_fingerprint"),
            created_at=created_at,
            provenance=provenance,
            library_versions=values.get("library_versions") or {},
            schema_version=version,
            extra={key: value for key, value in values.items() if key not in known},
        )

    @classmethod
    def load(cls, path: Path) -> "AdapterMetadata":
        """Read and validate a metadata.json file; raise AdapterError naming the file when it is missing or invalid."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise AdapterError(
                f"Metadata file {path} is missing.",
                "The entry was not saved by LoRA Playground or is incomplete: delete it, or install it again "
                "with metadata (for example pull it from the Hub again).",
            ) from None
        except (OSError, UnicodeDecodeError) as error:
            raise AdapterError(f"Cannot read metadata file {path}: {error}", "Check the file's permissions.") from error
        try:
            values = json.loads(text)
        except json.JSONDecodeError as error:
            raise AdapterError(
                f"Metadata file {path} is not valid JSON (line {error.lineno}, column {error.colno}: {error.msg}).",
                "Fix the file by hand or delete the entry.",
            ) from None
        return cls.from_dict(values, source=str(path))

    def save(self, path: Path) -> None:
        """Write the metadata as indented JSON (not atomic: the store writes it inside a temporary folder)."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _invalid(source: str, field_name: str, problem: str) -> AdapterError:
    return AdapterError(
        f"{source}: field {field_name!r} is invalid: {problem}.",
        "Fix the file, or delete the entry and save it again.",
    )


def _require_type(values: dict, name: str, expected: type, source: str, optional: bool = False):
    value = values.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, expected):
        found = "missing" if name not in values else f"found {type(value).__name__}"
        raise _invalid(source, name, f"expected {expected.__name__}, {found}")
    return value


def _validate_task(task: dict, source: str) -> None:
    if not isinstance(task.get("name"), str):
        raise _invalid(source, "task.name", "expected a string")
    task_type = task.get("type", "classification")
    if task_type not in ("classification", "generation"):
        raise _invalid(source, "task.type", f"expected 'classification' or 'generation', found {task_type!r}")
    labels = task.get("label_names")
    if task_type == "classification":
        if not isinstance(labels, list) or len(labels) < 2 or not all(isinstance(label, str) for label in labels):
            raise _invalid(source, "task.label_names", f"a classification task needs 2 or more label names, found {labels!r}")


def _parse_base_model(values: dict, source: str) -> BaseModelRef:
    for name in ("name", "fingerprint"):
        if not isinstance(values.get(name), str) or not values[name]:
            raise _invalid(source, f"base_model.{name}", f"expected a non-empty string, found {values.get(name)!r}")
    if values.get("architecture") not in ("decoder", "encoder"):
        raise _invalid(
            source, "base_model.architecture", f"expected 'decoder' or 'encoder', found {values.get('architecture')!r}"
        )
    return BaseModelRef(
        name=values["name"],
        fingerprint=values["fingerprint"],
        architecture=values["architecture"],
        hub_id=values.get("hub_id"),
        model_type=values.get("model_type"),
        license=values.get("license"),
        gguf_file=values.get("gguf_file"),
    )


def _parse_provenance(values: dict, source: str) -> Provenance:
    origin = values.get("source", "local")
    if origin not in ("local", "hub"):
        raise _invalid(source, "provenance.source", f"expected 'local' or 'hub', found {origin!r}")
    return Provenance(
        source=origin,
        repo_id=values.get("repo_id"),
        revision=values.get("revision"),
        commit=values.get("commit"),
    )
