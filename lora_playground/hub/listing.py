"""Listing the PEFT adapters that a Hub user or organisation has published, to pick one to pull."""

import datetime as dt
import logging
from dataclasses import dataclass

from lora_playground.errors import HubError
from lora_playground.hub.client import check_namespace, make_api, resolve_endpoint, resolve_token
from lora_playground.hub.failures import hub_errors

logger = logging.getLogger(__name__)

MAX_LIST_LIMIT = 1000


@dataclass(frozen=True)
class HubAdapterInfo:
    """One adapter repo on the Hub, as the model listing describes it."""

    repo_id: str
    last_modified: dt.datetime | None
    tags: list[str]
    downloads: int | None
    private: bool | None
    base_model: str | None
    """The base model's Hub id, from the repo's `base_model:adapter:<id>` tag; None when untagged."""

    def to_dict(self) -> dict:
        return {
            "repo_id": self.repo_id,
            "last_modified": self.last_modified.isoformat() if self.last_modified else None,
            "tags": list(self.tags),
            "downloads": self.downloads,
            "private": self.private,
            "base_model": self.base_model,
        }


def list_hub_adapters(
    author: str, *, token: str | None = None, endpoint: str | None = None, limit: int = 50
) -> list[HubAdapterInfo]:
    """List the PEFT adapter repos (library tag `peft`) of a Hub user or organisation.

    Args:
        author: the user or organisation name, for example "alice".
        token: access token; private repos are listed only for an account that can read them. None uses
            HF_TOKEN or the saved login, and lists anonymously when neither exists.
        endpoint: Hub URL; None uses HF_ENDPOINT or https://huggingface.co (see `hub.client`).
        limit: maximum number of repos returned, 1 to 1000.

    Returns the repos in the order the Hub lists them. Raises HubError for an invalid name or limit,
    a rejected token, or an unreachable server.
    """
    author = check_namespace(author)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIST_LIMIT:
        raise HubError(f"Invalid listing limit {limit!r}.", f"Pass a whole number from 1 to {MAX_LIST_LIMIT}.")
    endpoint = resolve_endpoint(endpoint)
    token = resolve_token(token)
    api = make_api(endpoint, token)

    with hub_errors(f"Listing the adapters of {author!r}", endpoint, token):
        models = list(api.list_models(author=author, filter="peft", limit=limit))

    adapters = [
        HubAdapterInfo(
            repo_id=model.id,
            last_modified=model.last_modified,
            tags=list(model.tags or []),
            downloads=model.downloads,
            private=model.private,
            base_model=_base_model_from_tags(model.tags or []),
        )
        for model in models
    ]
    logger.info("Listed %d PEFT adapters of %s on %s", len(adapters), author, endpoint)
    return adapters


def _base_model_from_tags(tags: list[str]) -> str | None:
    for tag in tags:
        if tag.startswith("base_model:adapter:"):
            return tag.removeprefix("base_model:adapter:")
    return None
