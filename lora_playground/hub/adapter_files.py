"""The files of a PEFT adapter repo: which to download, and checks that they form a LoRA adapter.

Only safetensors weights are read. Pickle weights (`adapter_model.bin`) can run code when loaded, so
they are rejected unless the caller allows them. Allowed ones are read with
`torch.load(weights_only=True)` and converted to safetensors before the store or PEFT opens them.
"""

import json
import logging
from pathlib import Path

from lora_playground.adapters.compat import ADAPTER_CONFIG, ADAPTER_PICKLE_WEIGHTS, ADAPTER_WEIGHTS
from lora_playground.adapters.metadata import METADATA_FILE
from lora_playground.adapters.store import CARD_FILE
from lora_playground.errors import AdapterError

logger = logging.getLogger(__name__)

# PEFT task types this playground can load, and the task type each one serves.
SUPPORTED_TASK_TYPES = {"SEQ_CLS": "classification", "CAUSAL_LM": "generation"}


def files_to_download(repo_id: str, repo_files: list[str], *, allow_pickle: bool) -> list[str]:
    """Return the repo files a pull needs, or raise AdapterError when the repo is not a usable PEFT adapter.

    `repo_files` lists the paths in the repo at the pulled revision. The adapter must sit at the repo
    root. README.md and metadata.json are downloaded when present.
    """
    present = set(repo_files)
    if ADAPTER_CONFIG not in present:
        nested = sorted(path for path in present if path.endswith("/" + ADAPTER_CONFIG))
        if nested:
            raise AdapterError(
                f"The Hub repo {repo_id!r} has adapters only in subfolders ({', '.join(nested[:3])}).",
                "Only adapters at the repo root can be pulled; ask the author to publish the adapter in its own repo.",
            )
        if "config.json" in present:
            raise AdapterError(
                f"The Hub repo {repo_id!r} is a full model (config.json), not a PEFT adapter (no {ADAPTER_CONFIG}).",
                "Pick a repo made with PEFT, for example from `list_hub_adapters`.",
            )
        raise AdapterError(
            f"The Hub repo {repo_id!r} is not a PEFT adapter: it has no {ADAPTER_CONFIG}.",
            "Pick a repo made with PEFT, for example from `list_hub_adapters`.",
        )

    needed = [ADAPTER_CONFIG]
    if ADAPTER_WEIGHTS in present:
        needed.append(ADAPTER_WEIGHTS)
    elif ADAPTER_PICKLE_WEIGHTS in present:
        if not allow_pickle:
            raise AdapterError(
                f"The Hub repo {repo_id!r} has only pickle weights ({ADAPTER_PICKLE_WEIGHTS}), which can run code when loaded.",
                "Pull it only if you trust the author, with allow_pickle=True (CLI: --allow-pickle); the weights are "
                "then converted to safetensors.",
            )
        needed.append(ADAPTER_PICKLE_WEIGHTS)
    else:
        raise AdapterError(
            f"The Hub repo {repo_id!r} has {ADAPTER_CONFIG} but no adapter weights ({ADAPTER_WEIGHTS}).",
            "The upload is incomplete; ask the author to push the weights.",
        )
    needed += [name for name in (CARD_FILE, METADATA_FILE) if name in present]
    return needed


def read_adapter_config(folder: Path, repo_id: str) -> dict:
    """Read adapter_config.json and check that it describes a LoRA adapter for a supported task type."""
    path = Path(folder) / ADAPTER_CONFIG
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise AdapterError(f"{ADAPTER_CONFIG} of the Hub repo {repo_id!r} cannot be read: {error}", "The repo is broken.") from None
    if not isinstance(config, dict):
        raise AdapterError(f"{ADAPTER_CONFIG} of the Hub repo {repo_id!r} is not a JSON object.", "The repo is broken.")
    peft_type = config.get("peft_type")
    if peft_type != "LORA":
        raise AdapterError(
            f"The Hub repo {repo_id!r} contains a PEFT adapter of type {peft_type or 'unknown'}, but only LoRA adapters are supported.",
            "Pick a LoRA adapter (peft_type LORA).",
        )
    task_type = config.get("task_type")
    if task_type not in SUPPORTED_TASK_TYPES:
        raise AdapterError(
            f"The Hub repo {repo_id!r} contains an adapter for the unsupported task_type {task_type!r}.",
            f"Only {', '.join(SUPPORTED_TASK_TYPES)} adapters (sequence classification, causal LM) are supported.",
        )
    return config


def convert_pickle_weights(folder: Path) -> None:
    """Replace adapter_model.bin in `folder` by adapter_model.safetensors with the same tensors.

    The pickle is read with `torch.load(weights_only=True)`, which refuses arbitrary objects.
    """
    import torch
    from safetensors.torch import save_file

    source = Path(folder) / ADAPTER_PICKLE_WEIGHTS
    try:
        state_dict = torch.load(source, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises UnpicklingError, RuntimeError or others for bad files
        raise AdapterError(f"Cannot read the pickle weights {source.name}: {error}", "The file is broken or not a state dict.") from None
    if not isinstance(state_dict, dict) or not all(isinstance(value, torch.Tensor) for value in state_dict.values()):
        raise AdapterError(f"{source.name} does not contain a dict of tensors.", "The file is not a PEFT adapter state dict.")
    save_file({key: value.contiguous() for key, value in state_dict.items()}, Path(folder) / ADAPTER_WEIGHTS, metadata={"format": "pt"})
    source.unlink()
    logger.info("Converted %s to %s", ADAPTER_PICKLE_WEIGHTS, ADAPTER_WEIGHTS)
