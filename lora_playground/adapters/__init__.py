"""The adapter store: atomic entry folders, their metadata, model cards and compatibility checks."""

from lora_playground.adapters.compat import (
    CompatibilityProblem,
    check_compatible,
    check_entry_files,
    problems_have_errors,
    raise_for_problems,
)
from lora_playground.adapters.metadata import AdapterMetadata, BaseModelRef, Provenance
from lora_playground.adapters.store import AdapterEntry, AdapterStore, validate_name

__all__ = [
    "AdapterEntry",
    "AdapterMetadata",
    "AdapterStore",
    "BaseModelRef",
    "CompatibilityProblem",
    "Provenance",
    "check_compatible",
    "check_entry_files",
    "problems_have_errors",
    "raise_for_problems",
    "validate_name",
]
