"""Removal of secrets (Hub tokens, passwords) from job parameters and messages before they are stored."""

import re
from typing import Any

REDACTED = "***"

# Parameter names whose values are secrets, matched case-insensitively at the end of the key, so
# "token", "hf_token", "HF_TOKEN", "accessToken" and "api_key" are caught, but counts and settings such
# as "tokens_per_s", "max_new_tokens" and "tokenizer" are kept. Tokenizer settings named like
# "pad_token" end in "token" too and are removed as well.
_SECRET_KEY = re.compile(
    r"(?:token|passwords?|passwd|secrets?|api[_-]?keys?|authorization|credentials?|(?:^|[^a-z])auth)$", re.IGNORECASE
)

# Hugging Face user access tokens are "hf_" followed by about 34 letters and digits; 30 or more catches them
# without hiding short names such as "hf_sentiment1".
_HF_TOKEN = re.compile(r"\bhf_[A-Za-z0-9]{30,}\b")


def is_secret_key(key: str) -> bool:
    return bool(_SECRET_KEY.search(key))


def strip_secrets(value: Any, secrets: list[str] | tuple[str, ...] = ()) -> Any:
    """Return a copy of `value` with every dict entry whose key looks like a secret removed.

    Walks nested dicts, lists and tuples. In strings under any key, each of `secrets` and anything shaped
    like a Hugging Face token becomes "***", so a token pasted into the wrong field is not stored either.
    """
    if isinstance(value, dict):
        return {key: strip_secrets(item, secrets) for key, item in value.items() if not is_secret_key(str(key))}
    if isinstance(value, (list, tuple)):
        return [strip_secrets(item, secrets) for item in value]
    if isinstance(value, str):
        return redact_text(value, secrets)
    return value


def redact_text(text: str, secrets: list[str] | tuple[str, ...] = ()) -> str:
    """Replace each of `secrets` (and anything shaped like a Hugging Face token) in `text` with "***"."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return _HF_TOKEN.sub(REDACTED, text)
