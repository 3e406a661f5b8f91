"""Which Hub server to talk to, with which token, and the HfApi client built from both.

Endpoint: the `endpoint` argument, else the `HF_ENDPOINT` environment variable as set when the call is
made, else https://huggingface.co. huggingface_hub 2.4 itself reads `HF_ENDPOINT` only once, when it is
first imported, and uses that value wherever no endpoint is passed (for example in `from_pretrained`).
The functions in this package always pass the endpoint to `HfApi` and `snapshot_download`, so a
self-hosted Hub-compatible server works even when `HF_ENDPOINT` was set after the import.

NOTE: unless `HF_HUB_DISABLE_TELEMETRY=1` (or `HF_HUB_OFFLINE=1`) is set before huggingface_hub is
imported, huggingface_hub 2.4 sends a GET to `<import-time endpoint>/api/agent-harnesses` to build its
user agent: at most once per process, and not again for a day after a fetch that succeeded. It carries no token, but it does reach
huggingface.co even when every call here goes to a self-hosted endpoint.

Token: the `token` argument, else `HF_TOKEN`, else the token saved by `hf auth login` (both through
`huggingface_hub.get_token`). The token is held in memory only: this package never logs it, stores it,
or writes it into a file, card or error message.
"""

import logging
import os
import re

from huggingface_hub import HfApi, get_token
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id

from lora_playground.errors import HubError

logger = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "https://huggingface.co"
TOKEN_SETTINGS_URL = "https://huggingface.co/settings/tokens"

# A Hub user or organisation name, as the Hub accepts it in a repo id.
_NAMESPACE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,94}[A-Za-z0-9])?$")


def resolve_endpoint(endpoint: str | None = None) -> str:
    """Return the Hub base URL without a trailing slash: `endpoint`, else HF_ENDPOINT, else huggingface.co."""
    chosen = endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT
    if not chosen.startswith(("http://", "https://")):
        raise HubError(
            f"Invalid Hub endpoint {chosen!r}: it must be an http:// or https:// URL.",
            f"Pass a URL such as {DEFAULT_ENDPOINT}, or unset HF_ENDPOINT.",
        )
    return chosen.rstrip("/")


def resolve_token(token: str | None = None) -> str | None:
    """Return `token`, else HF_TOKEN, else the saved `hf auth login` token; None when there is none."""
    if token:
        return token.strip()
    return get_token()


def require_token(token: str | None, action: str) -> str:
    """Return the resolved token, or raise HubError saying how to provide one for `action`."""
    resolved = resolve_token(token)
    if not resolved:
        raise HubError(
            f"No Hugging Face token was found, and {action} needs one.",
            f"Create a token with write access at {TOKEN_SETTINGS_URL} and pass it via HF_TOKEN "
            "(or the token argument, or run `hf auth login`).",
        )
    return resolved


def make_api(endpoint: str, token: str | None) -> HfApi:
    """Build an HfApi client bound to `endpoint` and `token` (None: anonymous requests)."""
    return HfApi(endpoint=endpoint, token=token)


def check_repo_id(repo_id: str, *, namespace_required: bool = False) -> str:
    """Return `repo_id` stripped of spaces, or raise HubError explaining why the Hub would reject it."""
    cleaned = repo_id.strip() if isinstance(repo_id, str) else repo_id
    try:
        validate_repo_id(cleaned)
    except HFValidationError as error:
        raise HubError(
            f"Invalid Hub repo id {repo_id!r}: {error}",
            "Write it as owner/name (for example alice/sst2-lora) using letters, digits, '-', '_' and '.', "
            "at most 96 characters, without '--' or '..', and not starting or ending with '-' or '.'.",
        ) from None
    if not cleaned:
        raise HubError("The Hub repo id is empty.", "Write it as owner/name, for example alice/sst2-lora.")
    if namespace_required and "/" not in cleaned:
        raise HubError(
            f"Invalid Hub repo id {repo_id!r}: it has no owner.",
            "Write it as owner/name, for example alice/sst2-lora.",
        )
    return cleaned


def check_namespace(author: str) -> str:
    """Return a user or organisation name, or raise HubError when the Hub would reject it."""
    cleaned = author.strip() if isinstance(author, str) else ""
    if not _NAMESPACE.match(cleaned) or "--" in cleaned or ".." in cleaned:
        raise HubError(
            f"Invalid Hub user or organisation name {author!r}.",
            "Use the name shown in the Hub URL, for example 'alice' for https://huggingface.co/alice.",
        )
    return cleaned
