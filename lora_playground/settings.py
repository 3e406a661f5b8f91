"""Locations and limits, read from environment variables so the CLI, the app and tests agree.

| variable | meaning | default |
| --- | --- | --- |
| LORA_PLAYGROUND_ADAPTERS | the adapter store folder | ./adapters |
| LORA_PLAYGROUND_RUNS | run reports, job database and logs | ./runs |
| LORA_PLAYGROUND_CACHE | converted base models (safetensors copy of the GGUF file) | ~/.cache/lora_playground |
"""

import os
from dataclasses import dataclass
from pathlib import Path


def adapters_dir() -> Path:
    return Path(os.environ.get("LORA_PLAYGROUND_ADAPTERS", "adapters")).expanduser().resolve()


def runs_dir() -> Path:
    return Path(os.environ.get("LORA_PLAYGROUND_RUNS", "runs")).expanduser().resolve()


def cache_dir() -> Path:
    default = Path.home() / ".cache" / "lora_playground"
    return Path(os.environ.get("LORA_PLAYGROUND_CACHE", default)).expanduser().resolve()


def _int_from_env(variable: str, default: int) -> int:
    """Read a positive whole number from `variable`; unset or empty gives `default`."""
    from lora_playground.errors import ConfigError

    raw = os.environ.get(variable)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{variable}={raw!r} is not an integer.", f"Set it to a whole number such as {default}.") from None
    # A limit of 0 or less would reject every request with a message about the request, not the setting.
    if value < 1:
        raise ConfigError(f"{variable}={value} must be at least 1.", f"Set it to a whole number such as {default}, or unset it.")
    return value


@dataclass(frozen=True)
class Limits:
    """Limits that protect a shared server; each one is set by the environment variable named beside it."""

    max_upload_bytes: int  # LORA_PLAYGROUND_MAX_UPLOAD_MB (MiB), default 50
    max_rows: int  # LORA_PLAYGROUND_MAX_ROWS, default 200000 rows per loaded file
    max_sequence_length: int  # LORA_PLAYGROUND_MAX_SEQ_LEN, default 1024 tokens
    max_queued_jobs: int  # LORA_PLAYGROUND_MAX_QUEUED_JOBS, default 20 waiting or running jobs
    max_loaded_adapters: int  # LORA_PLAYGROUND_MAX_LOADED_ADAPTERS, default 32 per base model


def limits() -> Limits:
    return Limits(
        max_upload_bytes=_int_from_env("LORA_PLAYGROUND_MAX_UPLOAD_MB", 50) * 1024 * 1024,
        max_rows=_int_from_env("LORA_PLAYGROUND_MAX_ROWS", 200_000),
        max_sequence_length=_int_from_env("LORA_PLAYGROUND_MAX_SEQ_LEN", 1024),
        max_queued_jobs=_int_from_env("LORA_PLAYGROUND_MAX_QUEUED_JOBS", 20),
        max_loaded_adapters=_int_from_env("LORA_PLAYGROUND_MAX_LOADED_ADAPTERS", 32),
    )


def check_sequence_length(max_length: int, option: str = "max_length") -> int:
    """Return `max_length` (tokens) if it is within `limits().max_sequence_length`, else raise LimitError.

    `option` names the setting in the message, for example "max_length" or "--max-length".
    """
    limit = limits().max_sequence_length
    if max_length > limit:
        from lora_playground.errors import LimitError

        raise LimitError(
            f"{option}={max_length} tokens is above the limit of {limit} tokens per sequence on this server.",
            f"Use {option} of at most {limit}, or raise the limit with the environment variable LORA_PLAYGROUND_MAX_SEQ_LEN.",
        )
    return max_length
