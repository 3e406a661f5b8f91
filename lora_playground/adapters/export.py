"""Export a stored LoRA adapter merged into its base as a standard Hugging Face model folder.

The adapter is loaded on `SharedBase.full_copy` (an independent copy of the base weights), merged with
PEFT's `merge_and_unload`, and saved with `save_pretrained` (config.json, model.safetensors) plus the
base tokenizer. The folder loads with `AutoModelForSequenceClassification` or `AutoModelForCausalLM`
and no PEFT. The shared base is never written to: merging on a model that shares its tensors would
change the base for every adapter in the process.

After saving, the folder is loaded back with transformers, and its logits on a few probe inputs are
compared with the unmerged adapter's. A difference above `tolerance` raises AdapterError and the
folder is removed.
"""

import json
import logging
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import torch

from lora_playground.adapters.compat import check_compatible, raise_for_problems
from lora_playground.adapters.store import AdapterStore
from lora_playground.errors import AdapterError, ConfigError

logger = logging.getLogger(__name__)

EXPORT_RECORD = "lora_playground_export.json"
PROBE_TEXTS = (
    "The meeting moved to Thursday afternoon.",
    "win a free prize now, click here",
    "Could you explain how photosynthesis works?",
)
# Merged and unmerged float32 models differ only by rounding in W + BA; 1e-4 on logits is far above it.
DEFAULT_TOLERANCE = 1e-4


@dataclass
class ExportResult:
    """The exported folder, and how closely it reproduces the unmerged adapter."""

    path: Path
    auto_class: str
    """The transformers class that loads it: AutoModelForSequenceClassification or AutoModelForCausalLM."""
    max_abs_difference: float | None
    """Largest absolute logit difference, merged vs unmerged, on the probe texts (None when not verified)."""


def export_merged(
    name: str,
    output_dir: Path | str,
    *,
    store: AdapterStore | None = None,
    base_name: str | None = None,
    force: bool = False,
    verify: bool = True,
    tolerance: float = DEFAULT_TOLERANCE,
) -> ExportResult:
    """Merge LoRA entry `name` into a copy of its base and save a plain transformers model in `output_dir`.

    `base_name` defaults to the base recorded in the entry's metadata. An existing non-empty
    `output_dir` is replaced only with `force`. The folder is written beside `output_dir` and renamed
    into place, so a failed export leaves no half-written folder. Peak memory is about two copies of
    the base weights. Raises AdapterError for full entries (already plain models) and for adapters
    that do not fit the base.
    """
    from peft import PeftModel

    from lora_playground.models import get_shared_base

    store = store or AdapterStore()
    entry = store.get(name)
    metadata = entry.metadata
    if metadata.kind != "lora":
        raise AdapterError(
            f"{name!r} is a full-finetune checkpoint, which is already a standard transformers folder: {entry.path}.",
            "Copy that folder instead; export merges LoRA adapters.",
        )
    output_dir = Path(output_dir).expanduser().resolve()
    if output_dir.exists() and (not output_dir.is_dir() or any(output_dir.iterdir())) and not force:
        raise ConfigError(f"The export folder {output_dir} exists and is not empty.", "Pick a new folder, or pass force.")

    base = get_shared_base(base_name or metadata.base_model.name)
    raise_for_problems(check_compatible(entry.path, base), f"adapter {name!r} ({entry.path})", base.spec.name)
    # The copy's new head is replaced by the adapter's; a private RNG leaves the caller's random state alone.
    with torch.random.fork_rng(devices=[]):
        if metadata.task_type == "classification":
            copy = base.full_copy("classification", len(metadata.label_names), metadata.label_names)
            auto_class = "AutoModelForSequenceClassification"
        else:
            copy = base.full_copy("causal_lm")
            auto_class = "AutoModelForCausalLM"
    unmerged = PeftModel.from_pretrained(copy, str(entry.path), is_trainable=False).eval()
    reference = _probe_logits(unmerged, base.tokenizer) if verify else None
    merged = unmerged.merge_and_unload()
    merged.requires_grad_(False)

    temporary = output_dir.parent / f".{output_dir.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    try:
        merged.save_pretrained(temporary, safe_serialization=True)
        base.tokenizer.save_pretrained(temporary)
        record = {
            "adapter": name,
            "adapter_created_at": metadata.created_at,
            "base_model": metadata.base_model.hub_id or metadata.base_model.name,
            "base_fingerprint": base.fingerprint,
            "task": metadata.task,
            "load_with": auto_class,
        }
        (temporary / EXPORT_RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        difference = _verify(temporary, auto_class, base.tokenizer, reference, tolerance) if verify else None
        if output_dir.exists():
            shutil.rmtree(output_dir)
        os.replace(temporary, output_dir)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    logger.info("Exported %s merged into %s to %s", name, base.spec.name, output_dir)
    return ExportResult(path=output_dir, auto_class=auto_class, max_abs_difference=difference)


def _probe_logits(model, tokenizer) -> torch.Tensor:
    inputs = tokenizer(list(PROBE_TEXTS), padding=True, return_tensors="pt")
    with torch.inference_mode():
        output = model(**inputs).logits  # (texts, labels) or (texts, seq, vocab)
    if output.dim() == 3:
        output = output * inputs["attention_mask"].unsqueeze(-1)
    return output.float()


def _verify(folder: Path, auto_class: str, tokenizer, reference: torch.Tensor, tolerance: float) -> float:
    import transformers

    loaded = getattr(transformers, auto_class).from_pretrained(folder, dtype=torch.float32).eval()
    difference = float((_probe_logits(loaded, tokenizer) - reference).abs().max())
    if difference > tolerance:
        raise AdapterError(
            f"The exported model's logits differ from the unmerged adapter's by {difference:.2e} "
            f"(tolerance {tolerance:.0e}), so the export was discarded.",
            "This points to a merge bug; please report it with the adapter's adapter_config.json.",
        )
    return difference
