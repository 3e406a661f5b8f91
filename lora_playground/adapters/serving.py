"""Many stored adapters served from one shared base: load, switch per request, unload, mixed batches.

An `AdapterPool` belongs to one `SharedBase` and one adapter store. LoRA entries become named PEFT
adapters inside a few `PeftModel`s, one per group:

- a group is (task type, number of labels). PEFT gives every adapter its own copy of the task head
  (`modules_to_save`), copied from the group model's head, so heads of different label counts cannot
  live in one PeftModel;
- every group model comes from `SharedBase.classification_model` or `causal_lm_model`, so all groups use
  the base's weight tensors and each adapter adds only its LoRA matrices and its head.

Full-finetune entries (kind "full") are independent models, cached beside the groups. LoRA adapters and
full models both count against `settings.limits().max_loaded_adapters` (LORA_PLAYGROUND_MAX_LOADED_ADAPTERS).

Thread safety: one re-entrant lock per pool guards loading, unloading, switching and every forward pass,
because the active adapter is state of the module tree that all requests share. Requests on one base
therefore run one at a time. On CPU one forward pass already uses every core, so serializing costs
little throughput.
"""

import gc
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from lora_playground import settings
from lora_playground.adapters.compat import ADAPTER_WEIGHTS, check_compatible, raise_for_problems, read_tensor_shapes
from lora_playground.adapters.store import AdapterEntry, AdapterStore
from lora_playground.errors import AdapterError, ConfigError, LimitError

logger = logging.getLogger(__name__)

# PEFT's reserved name for "no adapter" in `adapter_names`; store names cannot collide with it
# because they must start with a letter or a digit.
BASE_ADAPTER = "__base__"
LIMIT_VARIABLE = "LORA_PLAYGROUND_MAX_LOADED_ADAPTERS"

GroupKey = tuple[str, int | None]


def peft_adapter_name(store_name: str) -> str:
    """Return the PEFT adapter name under which store entry `store_name` is loaded: "~name~", with "." as ":".

    PEFT 0.21.2 rejects an adapter named like a module it wraps ("classifier", "score", "query"), and
    some of its code paths find an adapter's keys by substring, where "spam" would also match "spam-2".
    Store names never contain "~" or ":", so the delimited name is never part of another adapter name
    or of a module path, and the mapping is reversible. "." becomes ":" because `nn.ModuleDict` keys
    cannot contain ".".
    """
    return "~" + store_name.replace(".", ":") + "~"


@dataclass
class LoadedModel:
    """One entry loaded in a pool: what it is, which group model contains it, and when it was last used."""

    name: str
    kind: Literal["lora", "full"]
    task_type: str
    label_names: list[str]
    created_at: str
    """The entry's metadata `created_at` at load time; a different value in the store means it was replaced."""
    group: GroupKey | None
    """(task type, number of labels) of the PeftModel holding a LoRA adapter; None for a full model."""
    max_length: int
    """Max input tokens for classification: the entry's training max_length (default 128)."""
    last_used: float = 0.0

    @property
    def adapter_name(self) -> str:
        return peft_adapter_name(self.name)


class AdapterPool:
    """Stored adapters and full models loaded on one shared base, switched per request.

    `max_loaded` overrides `settings.limits().max_loaded_adapters` (read at each load when None).
    The pool never writes into base weights: adapters are never merged here (see `adapters.export`).
    """

    def __init__(self, base, store: AdapterStore | None = None, *, max_loaded: int | None = None):
        self.base = base
        self.store = store or AdapterStore()
        self._max_loaded = max_loaded
        self.lock = threading.RLock()
        self._loaded: dict[str, LoadedModel] = {}
        self._groups: dict[GroupKey, nn.Module] = {}
        self._full_models: dict[str, nn.Module] = {}
        self._plain_causal_lm: nn.Module | None = None

    # Bookkeeping ----------------------------------------------------------------------------------

    @property
    def limit(self) -> int:
        """Max number of loaded entries (LoRA adapters plus full models) in this pool."""
        return self._max_loaded if self._max_loaded is not None else settings.limits().max_loaded_adapters

    def loaded(self) -> list[LoadedModel]:
        """Return the loaded entries, least recently used first."""
        with self.lock:
            return sorted(self._loaded.values(), key=lambda item: item.last_used)

    def loaded_names(self) -> list[str]:
        """Return the names of the loaded entries, sorted."""
        with self.lock:
            return sorted(self._loaded)

    def info(self, name: str) -> LoadedModel:
        """Return the record of loaded entry `name`; raise AdapterError if it is not loaded."""
        with self.lock:
            if name not in self._loaded:
                loaded = ", ".join(sorted(self._loaded)) or "none"
                raise AdapterError(
                    f"Adapter {name!r} is not loaded on base {self.base.spec.name!r}.",
                    f"Load it first (AdapterPool.load). Loaded: {loaded}.",
                )
            return self._loaded[name]

    def group_model(self, name: str) -> nn.Module:
        """Return the PeftModel that contains LoRA adapter `name` (or the full model of a full entry)."""
        with self.lock:
            info = self.info(name)
            if info.kind == "full":
                return self._full_models[name]
            return self._groups[info.group]

    # Loading and unloading ------------------------------------------------------------------------

    def load(self, name: str, *, evict: bool = False) -> LoadedModel:
        """Load store entry `name` unless it is loaded already, and return its record.

        An entry replaced in the store since it was loaded (different `created_at`) is loaded again.
        Compatibility with the base (architecture, fingerprint, every tensor shape) is checked before
        anything is loaded, and a mismatch raises AdapterError naming the modules and shapes. When the
        pool is full, `evict=True` unloads the least recently used entries; otherwise LimitError.
        """
        return self.ensure_loaded([name], evict=evict)[0]

    def ensure_loaded(self, names: Sequence[str], *, evict: bool = True) -> list[LoadedModel]:
        """Load every entry of `names` that is not loaded yet and return their records in order.

        With `evict` (default) the least recently used entries outside `names` are unloaded to make
        room; without it a full pool raises LimitError. A request for more distinct entries than the
        limit always raises LimitError.
        """
        wanted = list(dict.fromkeys(names))
        if len(wanted) > self.limit:
            raise LimitError(
                f"The request needs {len(wanted)} models loaded at once on base {self.base.spec.name!r}, but "
                f"{LIMIT_VARIABLE}={self.limit}.",
                f"Select at most {self.limit} adapters, or raise {LIMIT_VARIABLE}.",
            )
        with self.lock:
            entries = [self._current_entry(name) for name in wanted]
            for entry in entries:
                current = self._loaded.get(entry.name)
                if current is not None and current.created_at != entry.metadata.created_at:
                    logger.info("Adapter %s changed in the store; loading it again", entry.name)
                    self.unload(entry.name)
            missing = [entry for entry in entries if entry.name not in self._loaded]
            self._make_room(len(missing), keep=set(wanted), evict=evict)
            for entry in missing:
                self._load_entry(entry)
            now = time.monotonic()
            for name in wanted:
                self._loaded[name].last_used = now
            return [self._loaded[name] for name in wanted]

    def _current_entry(self, name: str) -> AdapterEntry:
        """Return the store's entry `name`; a loaded copy of an entry deleted from the store is unloaded."""
        try:
            return self.store.get(name)
        except AdapterError:
            if name in self._loaded:
                logger.info("Adapter %s is no longer in the store; unloading it", name)
                self.unload(name)
            raise

    def unload(self, name: str) -> None:
        """Unload entry `name` and free its weights (PEFT `delete_adapter`; a group left empty is dropped).

        Raises AdapterError if it is not loaded.
        """
        with self.lock:
            info = self.info(name)
            del self._loaded[name]
            if info.kind == "full":
                del self._full_models[name]
            else:
                group_model = self._groups[info.group]
                if any(other.group == info.group for other in self._loaded.values()):
                    group_model.delete_adapter(info.adapter_name)
                else:
                    # The last adapter of a group goes with its PeftModel, so no PeftModel is left
                    # without adapters.
                    del self._groups[info.group]
            gc.collect()
            logger.info("Unloaded %s adapter %s from base %s", info.kind, name, self.base.spec.name)

    def unload_all(self) -> None:
        """Unload every entry."""
        with self.lock:
            for name in list(self._loaded):
                self.unload(name)

    def _make_room(self, count: int, *, keep: set[str], evict: bool) -> None:
        free = self.limit - len(self._loaded)
        if count <= free:
            return
        if not evict:
            raise LimitError(
                f"{len(self._loaded)} models are loaded on base {self.base.spec.name!r} and {LIMIT_VARIABLE}="
                f"{self.limit}, so {count} more cannot be loaded.",
                f"Unload some first, or raise {LIMIT_VARIABLE}.",
            )
        candidates = [item for item in self.loaded() if item.name not in keep]
        for item in candidates[: count - free]:
            logger.info("Unloading least recently used adapter %s to stay within %s", item.name, LIMIT_VARIABLE)
            self.unload(item.name)

    def _load_entry(self, entry: AdapterEntry) -> None:
        metadata = entry.metadata
        problems = check_compatible(entry.path, self.base)
        raise_for_problems(problems, f"adapter {entry.name!r} ({entry.path})", self.base.spec.name)
        started = time.perf_counter()
        if metadata.kind == "full":
            self._full_models[entry.name] = self.store.load(entry.name, self.base)
            group = None
        else:
            group = _group_key(metadata)
            self._load_lora(entry, group)
        self._loaded[entry.name] = LoadedModel(
            name=entry.name,
            kind=metadata.kind,
            task_type=metadata.task_type,
            label_names=metadata.label_names,
            created_at=metadata.created_at,
            group=group,
            max_length=int(metadata.train_config.get("max_length") or 128),
        )
        logger.info(
            "Loaded %s adapter %s on base %s in %.2f s (%d loaded)",
            metadata.kind,
            entry.name,
            self.base.spec.name,
            time.perf_counter() - started,
            len(self._loaded),
        )

    def _load_lora(self, entry: AdapterEntry, group: GroupKey) -> None:
        from peft import PeftModel

        adapter_name = peft_adapter_name(entry.name)
        group_model = self._groups.get(group)
        try:
            if group_model is None:
                group_model = PeftModel.from_pretrained(
                    self._new_task_model(entry), str(entry.path), adapter_name=adapter_name, is_trainable=False
                )
                group_model.eval()
            else:
                group_model.load_adapter(str(entry.path), adapter_name=adapter_name, is_trainable=False)
            _check_all_weights_loaded(group_model, adapter_name, entry)
        except (RuntimeError, ValueError, KeyError, OSError) as error:
            if group in self._groups and adapter_name in group_model.peft_config:
                group_model.delete_adapter(adapter_name)
            raise AdapterError(
                f"PEFT could not load adapter {entry.name!r} from {entry.path}: {error}",
                "Check that the adapter was trained on this base model, or save it again.",
            ) from error
        self._groups[group] = group_model

    def _new_task_model(self, entry: AdapterEntry) -> nn.Module:
        metadata = entry.metadata
        # "__base__" rows use the group's own head. A fixed seed makes it the head AdapterStore.load
        # builds, and the private RNG leaves the caller's random state alone.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            if metadata.task_type == "classification":
                return self.base.classification_model(len(metadata.label_names), metadata.label_names)
            return self.base.causal_lm_model()

    # Running --------------------------------------------------------------------------------------

    @contextmanager
    def use(self, name: str) -> Iterator[nn.Module]:
        """Hold the pool lock and yield the model that serves `name`, with its adapter active.

        `name` is a store entry or BASE_ADAPTER for the untrained base language model. An entry that is
        not loaded is loaded (without eviction); a loaded one is used without reading the store, so call
        `ensure_loaded` first to pick up entries replaced in the store. Other requests wait until the
        block ends, so keep it to one forward pass or one `generate` call.
        """
        with self.lock:
            if name == BASE_ADAPTER:
                yield self.base_causal_lm()
                return
            info = self._loaded.get(name) or self.load(name)
            info.last_used = time.monotonic()
            model = self.group_model(name)
            if info.kind == "lora":
                model.set_adapter(info.adapter_name)
            yield model

    def activate(self, name: str) -> float:
        """Make LoRA adapter `name` (already loaded) the active adapter of its group; return the seconds it took."""
        with self.lock:
            info = self.info(name)
            if info.kind != "lora":
                raise ConfigError(f"{name!r} is a {info.kind} model, not a LoRA adapter, so there is nothing to switch.")
            started = time.perf_counter()
            self._groups[info.group].set_adapter(info.adapter_name)
            return time.perf_counter() - started

    def base_causal_lm(self) -> nn.Module:
        """Return the untrained base as a causal LM (built once; shares every weight tensor with the base)."""
        with self.lock:
            if self._plain_causal_lm is None:
                self._plain_causal_lm = self.base.causal_lm_model()
            return self._plain_causal_lm

    def classify(self, name: str, texts: Sequence[str], text_pairs: Sequence[str] | None = None, *,
                 batch_size: int = 32, max_length: int | None = None):
        """Classify `texts` with entry `name`; return `evaluation.ClassificationPredictions`.

        `max_length` defaults to the entry's training max_length. Probability column i is the entry's
        label i (see `info(name).label_names`).
        """
        from lora_playground.evaluation.classification import predict_classification

        with self.use(name) as model:
            info = self.info(name)
            _require_task(info, "classification")
            return predict_classification(
                model, self.base.tokenizer, texts, text_pairs, batch_size=batch_size, max_length=max_length or info.max_length
            )

    def generate(self, name: str, prompts_messages: Sequence[Sequence[dict]], **options) -> list[str]:
        """Generate one reply per chat prompt with entry `name` (or BASE_ADAPTER); options as `generate_responses`."""
        from lora_playground.evaluation.generation import generate_responses

        with self.use(name) as model:
            if name != BASE_ADAPTER:
                _require_task(self.info(name), "generation")
            return generate_responses(model, self.base.tokenizer, prompts_messages, **options)

    def classify_mixed(self, texts: Sequence[str], adapter_names: Sequence[str], text_pairs=None, *,
                       max_length: int = 128):
        """Classify each text with its own adapter in as few forward passes as possible; see `mixed_batch`."""
        from lora_playground.adapters.mixed_batch import classify_mixed

        return classify_mixed(self, texts, adapter_names, text_pairs, max_length=max_length)

    def generate_mixed(self, prompts_messages: Sequence[Sequence[dict]], adapter_names: Sequence[str], **options):
        """Generate each reply with its own adapter in one `generate` call; see `mixed_batch`."""
        from lora_playground.adapters.mixed_batch import generate_mixed

        return generate_mixed(self, prompts_messages, adapter_names, **options)


def _group_key(metadata) -> GroupKey:
    if metadata.task_type == "classification":
        return ("classification", len(metadata.label_names))
    return ("generation", None)


def _require_task(info: LoadedModel, task_type: str) -> None:
    if info.task_type != task_type:
        raise ConfigError(
            f"{info.name!r} is a {info.task_type} model, so it cannot be used for {task_type}.",
            "Pick an adapter trained for this kind of task.",
        )


def _check_all_weights_loaded(group_model, adapter_name: str, entry: AdapterEntry) -> None:
    # PEFT only warns about weights missing from the file, which would leave them at their initial
    # values and silently change predictions.
    from peft import get_peft_model_state_dict

    saved = set(read_tensor_shapes(Path(entry.path) / ADAPTER_WEIGHTS))
    expected = get_peft_model_state_dict(group_model, adapter_name=adapter_name, save_embedding_layers=False)
    missing = sorted(set(expected) - saved)
    if missing:
        raise ValueError(f"the file has no weights for {len(missing)} tensors, for example {missing[:3]}")


_POOLS: dict[tuple[int, Path], AdapterPool] = {}
_POOLS_LOCK = threading.Lock()


def get_pool(base, store: AdapterStore | None = None) -> AdapterPool:
    """Return the process-wide pool for `base` (a SharedBase) and the store's folder, creating it once."""
    store = store or AdapterStore()
    key = (id(base), store.root)
    with _POOLS_LOCK:
        pool = _POOLS.get(key)
        if pool is None or pool.base is not base:
            pool = _POOLS[key] = AdapterPool(base, store)
        return pool
