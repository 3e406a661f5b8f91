"""Locations and limits, read from environment variables so the CLI, the app and tests agree.

| variable | meaning | default |
| --- | --- | --- |
| LORA_PLAYGROUND_ADAPTERS | the adapter store folder | ./adapters |
| LORA_PLAYGROUND_RUNS | run reports, job database and logs | ./runs |
| LORA_PLAYGROUND_CACHE | converted base models (safetensors copy of the GGUF file) | ~/.cache/lora_playground |
"""

import os
from pathlib import Path


def adapters_dir() -> Path:
    return Path(os.environ.get("LORA_PLAYGROUND_ADAPTERS", "adapters")).expanduser().resolve()


def runs_dir() -> Path:
    return Path(os.environ.get("LORA_PLAYGROUND_RUNS", "runs")).expanduser().resolve()


def cache_dir() -> Path:
    default = Path.home() / ".cache" / "lora_playground"
    return Path(os.environ.get("LORA_PLAYGROUND_CACHE", default)).expanduser().resolve()
