"""One-time conversion of a GGUF causal LM into a float32 safetensors folder under the cache folder.

Reading the GGUF file dequantizes every tensor (about 20 s for SmolLM2-135M on 2 CPU cores); the
converted folder then loads in about 0.1 s. The folder name includes the GGUF file's size and
modification time, so a reinstalled package gets a fresh conversion.
"""

import copy
import logging
import os
import shutil
import threading
import uuid
from pathlib import Path

from lora_playground import settings

logger = logging.getLogger(__name__)

_CONVERSION_LOCK = threading.Lock()
MARKER_FILE = "converted_from.txt"


def converted_folder(gguf_path: Path) -> Path:
    """Return the safetensors folder converted from `gguf_path`, converting it first if needed.

    Side effect: writes `<cache>/models/<stem>-<size>-<mtime>/` (model, tokenizer and a marker file).
    The folder is written under a temporary name and renamed when complete, so an interrupted
    conversion leaves no half-written cache. Another process converting at the same time is harmless,
    because the first rename wins and the other process deletes its copy.
    """
    stat = gguf_path.stat()
    target = settings.cache_dir() / "models" / f"{gguf_path.stem}-{stat.st_size}-{stat.st_mtime_ns}"
    if (target / MARKER_FILE).is_file():
        return target
    with _CONVERSION_LOCK:
        if (target / MARKER_FILE).is_file():
            return target
        _convert(gguf_path, target)
    return target


def _convert(gguf_path: Path, target: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    logger.info("Converting %s to a safetensors folder at %s (one time, about 20 s).", gguf_path.name, target)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.parent / f".tmp-{target.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        quantized = AutoModelForCausalLM.from_pretrained(
            gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32
        )
        tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)

        # A GGUF-loaded model refuses save_pretrained, so copy its weights into a plain model built
        # from the same config without the quantization settings.
        config = copy.deepcopy(quantized.config)
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        plain.load_state_dict(quantized.state_dict())
        plain.tie_weights()
        del quantized

        plain.save_pretrained(temporary)
        tokenizer.save_pretrained(temporary)
        (temporary / MARKER_FILE).write_text(
            f"{gguf_path.name}\n{gguf_path}\nsize={gguf_path.stat().st_size}\ndequantized to float32\n", encoding="utf-8"
        )
        try:
            os.rename(temporary, target)
        except OSError:
            if not (target / MARKER_FILE).is_file():
                raise
            logger.info("Another process finished converting %s first; using its copy.", gguf_path.name)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def gguf_origin(folder: str | Path) -> str | None:
    """Return the GGUF file name a converted folder came from, or None for any other folder or Hub id."""
    marker = Path(folder) / MARKER_FILE
    try:
        return marker.read_text(encoding="utf-8").splitlines()[0].rsplit("/", 1)[-1] or None
    except (OSError, IndexError):
        return None
