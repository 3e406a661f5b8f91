"""Publishing a stored LoRA adapter to a Hub model repo: adapter files and a model card in one commit."""

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import PurePosixPath, PureWindowsPath

from huggingface_hub import CommitOperationAdd

from lora_playground.adapters.card import render_model_card, without_secrets
from lora_playground.adapters.compat import ADAPTER_CONFIG, ADAPTER_WEIGHTS
from lora_playground.adapters.metadata import METADATA_FILE
from lora_playground.adapters.store import CARD_FILE, AdapterStore
from lora_playground.errors import AdapterError, HubError
from lora_playground.hub.client import check_repo_id, make_api, require_token, resolve_endpoint
from lora_playground.hub.failures import hub_errors

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PushResult:
    """The outcome of a push: the repo's URL, the commit id (40 hex digits), and the paths committed."""

    repo_url: str
    commit_id: str
    files: list[str] = field(default_factory=list)


def push_adapter(
    store_name: str,
    repo_id: str,
    *,
    private: bool = False,
    token: str | None = None,
    endpoint: str | None = None,
    store: AdapterStore | None = None,
    baseline: str | None = None,
    base_hub_id: str | None = None,
    commit_message: str | None = None,
) -> PushResult:
    """Upload the LoRA entry `store_name` to the Hub model repo `repo_id`, creating the repo if needed.

    One commit adds adapter_config.json (with `base_model_name_or_path` set to the base's Hub id),
    adapter_model.safetensors, metadata.json (without secrets or local paths) and a freshly rendered
    README.md model card. huggingface_hub skips files already on the Hub with the same content.
    When nothing changed, no commit is made and the current head commit is returned.

    Args:
        store_name: the adapter's name in the store.
        repo_id: "owner/name"; a bare "name" is created under the token's user.
        private: visibility of a repo created by this call; an existing repo keeps its visibility.
        token: access token with write access; None uses HF_TOKEN, then the `hf auth login` token.
        endpoint: Hub URL; None uses HF_ENDPOINT, then https://huggingface.co (see `hub.client`).
        store: the adapter store; None opens the default one (settings.adapters_dir()).
        baseline: store name of the full-finetune run to compare against in the card; None shows none.
        base_hub_id: the Hub id to record as the base model when the entry was trained on a local
            folder that has none; ignored when the entry records a Hub id.
        commit_message: the commit summary; None writes "Upload LoRA adapter <store_name>".

    Raises HubError for an invalid repo id, a missing or rejected token, a token without write access,
    or an unreachable server, and AdapterError for a missing, broken or full-finetune entry or a base
    without a Hub id. The token is never logged or written anywhere.
    """
    repo_id = check_repo_id(repo_id)
    store = store or AdapterStore()
    entry = store.get(store_name)
    metadata = entry.metadata.to_dict()
    if entry.metadata.kind != "lora":
        raise AdapterError(
            f"Entry {store_name!r} is a full-finetune checkpoint; only LoRA adapters can be pushed.",
            "Pick a LoRA entry (see the adapter list).",
        )
    hub_id = _base_hub_id(metadata, base_hub_id, store_name)
    baseline_metadata = store.get(baseline).metadata.to_dict() if baseline else None

    endpoint = resolve_endpoint(endpoint)
    token = require_token(token, f"pushing to {repo_id!r}")
    api = make_api(endpoint, token)
    action = f"Pushing adapter {store_name!r} to {repo_id!r} on {endpoint}"

    with hub_errors(action, endpoint, token, repo_id=repo_id):
        account = api.whoami()
    if account.get("auth", {}).get("accessToken", {}).get("role") == "read":
        raise HubError(
            f"{action} failed: the token is read-only.",
            "Create a token with write access at https://huggingface.co/settings/tokens and pass it via HF_TOKEN.",
        )
    if "/" not in repo_id:
        repo_id = f"{account['name']}/{repo_id}"

    files = _files_to_upload(entry.path, metadata, baseline_metadata, hub_id, repo_id)
    with hub_errors(action, endpoint, token, repo_id=repo_id):
        repo_url = api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        operations = [CommitOperationAdd(path_in_repo=path, path_or_fileobj=content) for path, content in files.items()]
        commit = api.create_commit(
            repo_id,
            operations,
            commit_message=commit_message or f"Upload LoRA adapter {store_name}",
            commit_description="Pushed with LoRA Playground.",
        )
    logger.info("Pushed adapter %s to %s at commit %s", store_name, repo_id, commit.oid)
    return PushResult(repo_url=str(repo_url), commit_id=commit.oid, files=sorted(files))


def _base_hub_id(metadata: dict, override: str | None, store_name: str) -> str:
    recorded = (metadata.get("base_model") or {}).get("hub_id")
    if recorded:
        return recorded
    if override:
        return check_repo_id(override, namespace_required=True)
    base_name = (metadata.get("base_model") or {}).get("name")
    raise AdapterError(
        f"Entry {store_name!r} was trained on the local base {base_name!r}, which has no Hub id to record in the pushed card.",
        "Pass base_hub_id='owner/name' (CLI: --base-hub-id) naming the Hub model those weights came from.",
    )


def _files_to_upload(folder, metadata: dict, baseline: dict | None, hub_id: str, repo_id: str) -> dict[str, bytes]:
    """Return {path in repo: content}; only these files leave the machine, nothing else in the entry folder."""
    adapter_config = json.loads((folder / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    # The pushed config must name the base by its Hub id, never a local folder or cache path.
    adapter_config["base_model_name_or_path"] = hub_id
    adapter_config["revision"] = None

    public = publishable_metadata(metadata, hub_id)
    card = render_model_card(public, publishable_metadata(baseline, hub_id) if baseline else None, adapter_config=adapter_config, repo_id=repo_id)
    return {
        ADAPTER_CONFIG: (json.dumps(adapter_config, indent=2) + "\n").encode("utf-8"),
        ADAPTER_WEIGHTS: (folder / ADAPTER_WEIGHTS).read_bytes(),
        METADATA_FILE: (json.dumps(public, indent=2, ensure_ascii=False) + "\n").encode("utf-8"),
        CARD_FILE: card.encode("utf-8"),
    }


def publishable_metadata(metadata: dict, hub_id: str) -> dict:
    """Return a copy of entry metadata safe to publish: no secret-named keys, no local file paths.

    The base model's local name becomes `hub_id`, and a task source that is a local file path is cut
    to its file name, because paths reveal user names and folder layouts.
    """
    public = without_secrets(metadata)
    base = dict(public.get("base_model") or {})
    base["hub_id"] = base.get("hub_id") or hub_id
    if _looks_like_local_path(base.get("name")):
        base["name"] = hub_id
    public["base_model"] = base

    task = dict(public.get("task") or {})
    if _looks_like_local_path(task.get("source")):
        task["source"] = f"local file {_file_name(task['source'])}"
    public["task"] = task
    return public


def _looks_like_local_path(value) -> bool:
    if not isinstance(value, str) or not value:
        return False
    return (
        os.path.isabs(value)
        or PureWindowsPath(value).drive != ""
        or value.startswith(("~", "./", "../"))
        or (os.sep in value and os.path.exists(value))
    )


def _file_name(value: str) -> str:
    return PureWindowsPath(value).name if "\\" in value else PurePosixPath(value).name
