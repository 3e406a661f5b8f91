"""Pulling a LoRA adapter from a Hub repo into the adapter store, after checking that it fits the base.

The files are downloaded into a hidden scratch folder of the store, checked, and only then installed by
`AdapterStore.install_from_folder`, which writes the entry atomically. A failure at any step, including
the server going away mid-download, leaves the store as it was.
"""

import json
import logging
import shutil
from dataclasses import asdict
from pathlib import Path

from huggingface_hub import snapshot_download

from lora_playground.adapters.compat import (
    ADAPTER_CONFIG,
    ADAPTER_PICKLE_WEIGHTS,
    ADAPTER_WEIGHTS,
    check_compatible,
    read_tensor_shapes,
)
from lora_playground.adapters.metadata import METADATA_FILE, AdapterMetadata, BaseModelRef, utc_now
from lora_playground.adapters.store import CARD_FILE, AdapterEntry, AdapterStore, validate_name
from lora_playground.errors import AdapterError
from lora_playground.hub.adapter_files import (
    SUPPORTED_TASK_TYPES,
    convert_pickle_weights,
    files_to_download,
    read_adapter_config,
)
from lora_playground.hub.client import check_repo_id, make_api, resolve_endpoint, resolve_token
from lora_playground.hub.failures import hub_errors

logger = logging.getLogger(__name__)

_MAX_LISTED_PROBLEMS = 4


def pull_adapter(
    repo_id: str,
    *,
    revision: str | None = None,
    name: str | None = None,
    token: str | None = None,
    endpoint: str | None = None,
    base=None,
    force: bool = False,
    allow_pickle: bool = False,
    store: AdapterStore | None = None,
) -> AdapterEntry:
    """Download the LoRA adapter in Hub repo `repo_id` and install it in the store.

    Args:
        repo_id: "owner/name" of a model repo with adapter_config.json and adapter weights at its root.
        revision: branch, tag or commit id; None pulls "main". The entry records the resolved commit.
        name: store entry name; None uses the repo id with "/" replaced by "--" (alice--sst2-lora).
        token: access token for private or gated repos; None uses HF_TOKEN, then the saved login, and
            pulls anonymously when neither exists.
        endpoint: Hub URL; None uses HF_ENDPOINT, then https://huggingface.co (see `hub.client`).
        base: the `models.SharedBase` the adapter must fit. None loads the built-in base whose Hub id the
            adapter names, and raises AdapterError when the adapter names no built-in base.
        force: replace an existing entry of the same name.
        allow_pickle: accept an adapter that only has pickle weights (adapter_model.bin); they are read
            with torch.load(weights_only=True) and stored as safetensors.
        store: the adapter store; None opens the default one.

    Returns the installed entry; its metadata's provenance records source "hub", the repo id, the
    requested revision and the commit id. An adapter trained on another base whose tensor shapes fit
    is installed with a logged warning. When the shapes do not fit, AdapterError names the adapter's
    base, this base and the mismatched modules. HubError covers Hub and network failures (invalid
    repo id, rejected token, missing repo or revision, server unreachable).
    """
    repo_id = check_repo_id(repo_id)
    store = store or AdapterStore()
    if name is None:
        name = default_entry_name(repo_id)
        if len(name) > 64:
            raise AdapterError(
                f"The store name {name!r} made from the repo id is longer than 64 characters.",
                "Pass a shorter name (CLI: --name).",
            )
    name = validate_name(name)
    if store.path(name).exists() and not force:
        raise AdapterError(
            f"An adapter named {name!r} already exists in {store.root}.",
            "Pass force=True (CLI: --force) to replace it, or pass another name.",
        )

    endpoint = resolve_endpoint(endpoint)
    token = resolve_token(token)
    api = make_api(endpoint, token)
    action = f"Pulling {repo_id!r}" + (f" at revision {revision!r}" if revision else "") + f" from {endpoint}"

    with hub_errors(action, endpoint, token, repo_id=repo_id, revision=revision):
        info = api.model_info(repo_id, revision=revision)
        commit = info.sha
        if info.siblings is not None:
            repo_files = [sibling.rfilename for sibling in info.siblings]
        else:
            repo_files = api.list_repo_files(repo_id, revision=commit)
    needed_files = files_to_download(repo_id, repo_files, allow_pickle=allow_pickle)

    # Staged inside the store root, so a process killed mid-download leaves nothing behind for long:
    # the next store opened on that root deletes the folder.
    with store.scratch_folder("pull") as scratch:
        download = scratch / "download"
        with hub_errors(action, endpoint, token, repo_id=repo_id, revision=revision):
            # The pinned commit goes into a folder of our own, so nothing reaches the shared Hugging Face
            # cache and a half-finished download is deleted with `scratch`. One file at a time, because
            # during an outage each parallel worker would sit through huggingface_hub's retry backoff.
            snapshot_download(
                repo_id,
                revision=commit,
                allow_patterns=needed_files,
                local_dir=download,
                cache_dir=scratch / "cache",
                endpoint=endpoint,
                token=token,
                max_workers=1,
            )
        entry_folder = scratch / "entry"
        _prepare_entry(download, entry_folder, repo_id=repo_id)
        adapter_config = read_adapter_config(entry_folder, repo_id)
        base = base if base is not None else _builtin_base_for(adapter_config, repo_id)

        metadata = _pulled_metadata(entry_folder, adapter_config, base, repo_id, name)
        metadata["provenance"] = {"source": "hub", "repo_id": repo_id, "revision": revision or "main", "commit": commit}
        metadata["hub_endpoint"] = endpoint
        (entry_folder / METADATA_FILE).write_text(json.dumps(metadata, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

        _check_fits_base(entry_folder, adapter_config, base, repo_id)
        installed = store.install_from_folder(entry_folder, name, force=force)
    logger.info("Pulled %s at commit %s into adapter entry %s", repo_id, commit, name)
    return installed


def default_entry_name(repo_id: str) -> str:
    """Return the store name for a pulled repo: "owner/name" becomes "owner--name".

    Hub repo ids cannot contain "--", so two different repos never map to the same name.
    """
    return repo_id.replace("/", "--")


def _prepare_entry(download: Path, entry_folder: Path, *, repo_id: str) -> None:
    """Copy the downloaded adapter files into `entry_folder`, converting allowed pickle weights."""
    entry_folder.mkdir()
    for file_name in (ADAPTER_CONFIG, ADAPTER_WEIGHTS, ADAPTER_PICKLE_WEIGHTS, CARD_FILE, METADATA_FILE):
        source = download / file_name
        if source.is_file():
            shutil.copyfile(source, entry_folder / file_name)
    if not (entry_folder / ADAPTER_WEIGHTS).is_file() and (entry_folder / ADAPTER_PICKLE_WEIGHTS).is_file():
        convert_pickle_weights(entry_folder)
    if not (entry_folder / ADAPTER_CONFIG).is_file() or not (entry_folder / ADAPTER_WEIGHTS).is_file():
        raise AdapterError(f"The download of {repo_id!r} is incomplete.", "Retry the pull.")


def _builtin_base_for(adapter_config: dict, repo_id: str):
    """Return the shared base of the built-in model the adapter names, loading it if needed."""
    from lora_playground.models import REGISTRY, get_shared_base

    named = adapter_config.get("base_model_name_or_path")
    for spec in REGISTRY.values():
        if named and named in (spec.hub_id, spec.name):
            return get_shared_base(spec.name)
    raise AdapterError(
        f"The adapter in {repo_id!r} was trained on {named!r}, which is not a built-in base "
        f"({', '.join(f'{spec.name} = {spec.hub_id}' for spec in REGISTRY.values())}).",
        "Load the base it needs and pass it as base=... (CLI: --base), so the adapter can be checked against it.",
    )


def _pulled_metadata(folder: Path, adapter_config: dict, base, repo_id: str, name: str) -> dict:
    """Return the entry's metadata: the repo's own metadata.json when it is valid, else one built from the files."""
    published = folder / METADATA_FILE
    if published.is_file():
        try:
            values = json.loads(published.read_text(encoding="utf-8"))
            metadata = AdapterMetadata.from_dict(values, source=f"{METADATA_FILE} of {repo_id}")
        except (AdapterError, UnicodeDecodeError, json.JSONDecodeError) as error:
            logger.warning("Ignoring the metadata.json of %s: %s", repo_id, error)
        else:
            if metadata.kind == "lora" and _task_type_matches(metadata.task_type, adapter_config):
                values = metadata.to_dict()
                values["name"] = name
                return values
            logger.warning("Ignoring the metadata.json of %s: it does not describe this LoRA adapter.", repo_id)

    # No usable LoRA Playground metadata: describe the adapter from its config and tensors. The base record
    # is the base it was checked against here; the adapter's own claim is kept in `hub_base_model`.
    task_type = SUPPORTED_TASK_TYPES[adapter_config["task_type"]]
    task = {"name": repo_id.split("/")[-1], "type": task_type, "source": f"Hub repo {repo_id}", "label_names": []}
    if task_type == "classification":
        num_labels = _head_size(folder, adapter_config, repo_id)
        task["label_names"] = [f"LABEL_{index}" for index in range(num_labels)]
    return {
        "schema_version": 1,
        "name": name,
        "kind": "lora",
        "task": task,
        "base_model": asdict(BaseModelRef.from_shared_base(base)),
        "created_at": utc_now(),
        "hub_base_model": adapter_config.get("base_model_name_or_path"),
    }


def _task_type_matches(task_type: str, adapter_config: dict) -> bool:
    return SUPPORTED_TASK_TYPES.get(adapter_config.get("task_type")) == task_type


def _head_size(folder: Path, adapter_config: dict, repo_id: str) -> int:
    """Return the number of classes from the saved classification head's weight (num_labels, hidden)."""
    shapes = read_tensor_shapes(folder / ADAPTER_WEIGHTS)
    for module in adapter_config.get("modules_to_save") or []:
        shape = shapes.get(f"base_model.model.{module}.weight")
        if shape is not None and len(shape) == 2:
            if shape[0] < 2:
                break
            return shape[0]
    raise AdapterError(
        f"The classification adapter in {repo_id!r} has no saved head with two or more classes "
        f"(modules_to_save: {adapter_config.get('modules_to_save')}).",
        "Only adapters whose classification head was saved (PEFT modules_to_save) can be used.",
    )


def _check_fits_base(folder: Path, adapter_config: dict, base, repo_id: str) -> None:
    """Raise AdapterError when the adapter cannot load on `base`; log when it fits a base other than its own."""
    named = adapter_config.get("base_model_name_or_path")
    problems = check_compatible(folder, base)
    errors = [problem.message for problem in problems if problem.severity == "error"]
    same_base = named in (base.spec.hub_id, base.spec.name)
    if errors:
        listed = "; ".join(errors[:_MAX_LISTED_PROBLEMS])
        if len(errors) > _MAX_LISTED_PROBLEMS:
            listed += f"; and {len(errors) - _MAX_LISTED_PROBLEMS} more"
        origin = "" if same_base else f" It was trained on {named!r}, not on {base.spec.hub_id or base.spec.name!r}."
        raise AdapterError(
            f"The adapter in {repo_id!r} does not fit the base model {base.spec.name!r}.{origin} Problems: {listed}.",
            f"Pull it with the base it was made for ({named}), or pick an adapter trained on {base.spec.hub_id or base.spec.name}.",
        )
    for problem in problems:
        logger.warning("Adapter %s on base %s: %s", repo_id, base.spec.name, problem.message)
    if not same_base:
        logger.warning(
            "Adapter %s names base %r, not %r; its tensor shapes fit, so it is installed, but its outputs "
            "may differ from the ones its author measured.",
            repo_id,
            named,
            base.spec.hub_id or base.spec.name,
        )
