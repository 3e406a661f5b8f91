"""Translation of huggingface_hub and network exceptions into HubError messages a user can act on.

Every message passes through `redact_text`, which removes the token in use and anything shaped like a
Hugging Face token, because server messages and URLs can echo request data.
"""

import logging
from contextlib import contextmanager

import httpx2
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    HFValidationError,
    LocalEntryNotFoundError,
    LocalTokenNotFoundError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from lora_playground.errors import HubError, PlaygroundError
from lora_playground.hub.client import TOKEN_SETTINGS_URL
from lora_playground.jobs.redact import redact_text

logger = logging.getLogger(__name__)

INVALID_TOKEN_MESSAGE = (
    "the Hub rejected the token (invalid credentials); create a token with write access at "
    f"{TOKEN_SETTINGS_URL} and pass it via HF_TOKEN"
)

# huggingface_hub 2.4 raises these httpx2 exceptions when the server cannot be reached or stops
# responding mid-transfer.
_NETWORK_ERRORS = (httpx2.TransportError,)


@contextmanager
def hub_errors(action: str, endpoint: str, token: str | None, *, repo_id: str | None = None, revision: str | None = None):
    """Run the enclosed Hub calls, re-raising their failures as HubError("<action> failed: <reason>").

    `action` names the operation, for example "Pushing 'sst2' to alice/sst2-lora". The message is
    redacted. PlaygroundErrors raised inside, and exceptions that are not Hub or network failures, pass
    through unchanged.
    """
    try:
        yield
    except PlaygroundError:
        raise
    except Exception as error:
        reason = translate_error(error, endpoint=endpoint, token=token, repo_id=repo_id, revision=revision)
        if reason is None:
            raise
        translated = HubError(f"{action} failed: {reason.message}", reason.hint)
        logger.info("%s", translated)
        raise translated from None


def translate_error(
    error: BaseException, *, endpoint: str, token: str | None, repo_id: str | None, revision: str | None
) -> HubError | None:
    """Return a HubError whose message (lowercase, to follow "<action> failed: ") explains `error`.

    Returns None when `error` is not a Hub or network failure.
    """
    secrets = [token] if token else []
    detail = redact_text(_first_line(error), secrets)
    repo = f"{repo_id!r}" if repo_id else "the repo"

    if isinstance(error, HFValidationError):
        return HubError(f"invalid Hub repo id {repo}: {detail}", "Write it as owner/name, for example alice/sst2-lora.")
    if isinstance(error, LocalTokenNotFoundError):
        return HubError(
            "no Hugging Face token was found.",
            f"Create a token at {TOKEN_SETTINGS_URL} and pass it via HF_TOKEN (or run `hf auth login`).",
        )
    if isinstance(error, RevisionNotFoundError):
        return HubError(
            f"revision {revision or 'main'!r} was not found in the Hub repo {repo} at {endpoint}.",
            "Use a branch name, a tag or a full 40-character commit id that exists in the repo.",
        )
    if isinstance(error, GatedRepoError):
        return HubError(
            f"the Hub repo {repo} at {endpoint} is gated, and this token has not been granted access.",
            "Request access on the repo's page, then retry with a token of the account that was granted it.",
        )
    if isinstance(error, RemoteEntryNotFoundError):
        return HubError(f"a file was not found in the Hub repo {repo} at {endpoint}: {detail}", "Check the repo's files.")
    if isinstance(error, HfHubHTTPError) and _is_invalid_token(error):
        return HubError(INVALID_TOKEN_MESSAGE + ".")
    if isinstance(error, RepositoryNotFoundError):
        return HubError(
            f"the Hub repo {repo} was not found at {endpoint}.",
            "Check the owner and name; if the repo is private, pass a token of an account that can read it.",
        )
    if isinstance(error, HfHubHTTPError):
        return _http_error(error, endpoint, repo, secrets)
    if isinstance(error, LocalEntryNotFoundError):
        # snapshot_download turns a failed listing into this error and keeps the network error as its cause.
        cause = error.__cause__ or error.__context__
        if isinstance(cause, _NETWORK_ERRORS):
            return _unreachable(cause, endpoint, secrets)
        return HubError(f"could not download from {endpoint}: {detail}", "Check the network connection and retry.")
    if isinstance(error, _NETWORK_ERRORS):
        return _unreachable(error, endpoint, secrets)
    if isinstance(error, OSError) and "Consistency check failed" in str(error):
        return HubError(
            f"a download from {endpoint} was cut short: {detail}",
            "The connection dropped mid-file; retry when the server is reachable again.",
        )
    return None


def _is_invalid_token(error: HfHubHTTPError) -> bool:
    response = getattr(error, "response", None)
    if response is None or response.status_code != 401:
        return False
    message = response.headers.get("X-Error-Message", "")
    return message == "Invalid credentials in Authorization header" or "Invalid user token" in str(error)


def _http_error(error: HfHubHTTPError, endpoint: str, repo: str, secrets: list[str]) -> HubError:
    response = error.response
    status = response.status_code if response is not None else None
    server_message = redact_text(response.headers.get("X-Error-Message", "") if response is not None else "", secrets)
    if status == 401:
        return HubError(
            f"the Hub at {endpoint} requires a valid token for this request ({server_message or 'unauthorized'}).",
            f"Create a token with write access at {TOKEN_SETTINGS_URL} and pass it via HF_TOKEN.",
        )
    if status == 403:
        return HubError(
            f"the token has no permission for this request on {repo} at {endpoint} ({server_message or 'forbidden'}).",
            "Use a token with write access to that user or organisation, or push under your own user name.",
        )
    detail = redact_text(_first_line(error), secrets)
    return HubError(f"the Hub at {endpoint} returned HTTP {status} for {repo}: {detail}", "Retry later or check the request.")


def _unreachable(error: BaseException, endpoint: str, secrets: list[str]) -> HubError:
    detail = redact_text(f"{type(error).__name__}: {error}", secrets).rstrip(".")
    return HubError(f"could not reach {endpoint}: {detail}.", "Check the network connection or HF_ENDPOINT and retry.")


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


