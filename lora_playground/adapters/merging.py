"""Combine stored LoRA adapters into a new stored adapter with PEFT's weighted merging.

`merge_adapters` loads the sources on a private task model that shares the base's weight tensors and
calls PEFT's `add_weighted_adapter`, which builds a new adapter from the sources' LoRA matrices and
never writes into base weights. The result is saved as an ordinary LoRA store entry whose metadata
records the sources, weights, method and density under `merge`.

Methods (PEFT 0.21.2 `combination_type`):

| method | what it does | ranks |
| --- | --- | --- |
| linear | weighted sum of the A and B matrices (a rough approximation of the summed updates) | must be equal |
| cat | stacks the weighted A and B matrices: exactly the weighted sum of the updates | may differ; result rank is their sum |
| svd | weighted sum of the full updates, factored again by SVD | may differ; result rank is the max or `svd_rank` |
| ties | TIES-merging: keep the top `density` share of each update, elect a sign, average agreeing values | must be equal |
| dare_linear | DARE: randomly drop 1 - `density` of each update, rescale, then sum | must be equal |
| dare_ties | DARE pruning followed by the TIES sign election | must be equal |
| magnitude_prune | keep the top `density` share of each update by magnitude, then sum | must be equal |
| ties_svd, dare_linear_svd, dare_ties_svd, magnitude_prune_svd | as above on the full updates, factored by SVD | may differ |

Classification heads: PEFT refuses to merge adapters that each train the same `modules_to_save` module,
so heads are handled here. Sources must predict the same label names in the same order; the merged
head is the average of the source heads weighted by weight / sum(weights), so the weights must have a
positive sum. Generation adapters have no head.

Not supported (rejected with the reason): full-finetune entries, DoRA adapters (PEFT does not combine
their magnitude vectors), adapters that train biases or other modules besides the head, mixing
regular-expression and list `target_modules`, and sources trained on different bases or task types.
"""

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from lora_playground.adapters.compat import ADAPTER_WEIGHTS, check_compatible, problems_have_errors
from lora_playground.adapters.metadata import AdapterMetadata, BaseModelRef
from lora_playground.adapters.store import AdapterEntry, AdapterStore, validate_name
from lora_playground.errors import AdapterError, ConfigError

logger = logging.getLogger(__name__)

EQUAL_RANK_METHODS = ("linear", "ties", "dare_linear", "dare_ties", "magnitude_prune")
SVD_METHODS = ("svd", "ties_svd", "dare_linear_svd", "dare_ties_svd", "magnitude_prune_svd")
MERGE_METHODS = (*EQUAL_RANK_METHODS, "cat", *SVD_METHODS)
DENSITY_METHODS = tuple(method for method in MERGE_METHODS if method.startswith(("ties", "dare", "magnitude")))
SIGN_METHODS = ("ties", "dare_ties", "ties_svd", "dare_ties_svd")

_MERGED = "~merged~"
_PEFT_PREFIX = "base_model.model."


@dataclass(frozen=True)
class MergeOptions:
    """How to combine the sources; see the module docstring for each method."""

    method: str = "linear"
    density: float | None = None
    """Share of each update kept (0 < density <= 1); needed by ties, dare_* and magnitude_prune*, rejected otherwise."""
    majority_sign_method: str = "total"
    """TIES sign election: "total" (sum of values) or "frequency" (count of signs)."""
    svd_rank: int | None = None
    """Rank of the result for *_svd methods; default the largest source rank."""
    seed: int = 0
    """Seed of the random drops of the dare_* methods."""

    def validate(self, weights: Sequence[float]) -> None:
        """Raise ConfigError listing every invalid option at once."""
        problems = []
        if self.method not in MERGE_METHODS:
            problems.append(f"method {self.method!r} is unknown (choose one of {', '.join(MERGE_METHODS)})")
        if self.method in DENSITY_METHODS:
            if self.density is None:
                problems.append(f"method {self.method!r} needs a density (the share of each update to keep, for example 0.5)")
            elif not 0.0 < self.density <= 1.0:
                problems.append(f"density={self.density} is not in (0, 1]")
        elif self.density is not None and self.method in MERGE_METHODS:
            problems.append(
                f"density applies to {', '.join(DENSITY_METHODS)} only, not to {self.method!r}; leave it out"
            )
        if self.majority_sign_method not in ("total", "frequency"):
            problems.append(f"majority_sign_method {self.majority_sign_method!r} is not 'total' or 'frequency'")
        if self.svd_rank is not None and (self.method not in SVD_METHODS or self.svd_rank < 1):
            problems.append(f"svd_rank={self.svd_rank} needs a *svd method and a value of at least 1")
        if not all(math.isfinite(weight) for weight in weights):
            problems.append(f"weights {list(weights)} must be finite numbers")
        if problems:
            raise ConfigError("Invalid merge options: " + "; ".join(problems) + ".")


def merge_adapters(
    sources: Sequence[str],
    weights: Sequence[float],
    name: str,
    *,
    options: MergeOptions | None = None,
    base_name: str | None = None,
    store: AdapterStore | None = None,
    force: bool = False,
) -> AdapterEntry:
    """Merge the stored LoRA adapters `sources` with `weights` into a new store entry `name`.

    The base is `base_name` or the base recorded by the sources. Raises ConfigError for invalid options
    and AdapterError listing every reason the sources cannot be merged; nothing is written then. The
    shared base weights are never modified. Returns the new entry; its metadata `merge` field records
    sources, weights, method, density, majority_sign_method, svd_rank, seed, the result rank and how
    the head was made.
    """
    from lora_playground.models import get_shared_base

    options = options or MergeOptions()
    store = store or AdapterStore()
    sources = list(sources)
    weights = [float(weight) for weight in weights]
    _check_request(sources, weights, name, store, force)
    options.validate(weights)

    entries = [store.get(source) for source in sources]
    if base_name is None:
        recorded = sorted({entry.metadata.base_model.name for entry in entries})
        if len(recorded) != 1:
            raise AdapterError(
                f"Cannot merge {', '.join(sources)}: they were trained on different bases ({', '.join(recorded)}).",
                "Merge adapters of one base model.",
            )
        base_name = recorded[0]
    base = get_shared_base(base_name)
    configs = [_lora_config(entry) for entry in entries]
    problems = _source_problems(entries, configs, weights, options, base)
    if problems:
        raise AdapterError(
            f"Cannot merge {', '.join(sources)} with method {options.method!r}: " + "; ".join(problems) + ".",
            "Pick sources and a method that fit (see `python -m lora_playground merge --help`).",
        )

    tensors = [_read_tensors(entry) for entry in entries]
    merged_config, merged_lora = _weighted_lora(base, entries, configs, tensors, weights, options)
    head = _weighted_head(tensors, weights) if entries[0].metadata.task_type == "classification" else {}
    final_model = _final_model(base, entries[0].metadata, configs[0], merged_config, {**merged_lora, **head})

    metadata = _merged_metadata(base, entries, weights, options, merged_config.r, bool(head))
    entry = store.save_lora(name, final_model, metadata, force=force)
    logger.info("Merged %s into %s (method %s, rank %d)", ", ".join(sources), name, options.method, merged_config.r)
    return entry


def _check_request(sources: list[str], weights: list[float], name: str, store: AdapterStore, force: bool) -> None:
    problems = []
    if len(sources) < 2:
        problems.append(f"{len(sources)} source adapter(s) given, at least 2 are needed")
    if len(set(sources)) != len(sources):
        problems.append(f"sources {sources} name an adapter twice")
    if len(weights) != len(sources):
        problems.append(f"{len(weights)} weights were given for {len(sources)} sources (give one weight per source)")
    validate_name(name)
    if name in sources:
        problems.append(f"the merged adapter cannot replace its source {name!r} (pick a new name)")
    elif store.path(name).exists() and not force:
        problems.append(f"an adapter named {name!r} already exists (pass force to replace it, or pick another name)")
    if problems:
        raise ConfigError("Invalid merge request: " + "; ".join(problems) + ".")


def _lora_config(entry: AdapterEntry):
    from peft import LoraConfig, PeftConfig

    if entry.metadata.kind != "lora":
        return None
    config = PeftConfig.from_pretrained(str(entry.path))
    return config if isinstance(config, LoraConfig) else None


def _source_problems(entries, configs, weights, options: MergeOptions, base) -> list[str]:
    """Return every reason, in plain words, why these sources cannot be merged with these options."""
    from lora_playground.models.layers import classification_head_names

    problems = []
    for entry, config in zip(entries, configs):
        if entry.metadata.kind != "lora":
            problems.append(f"{entry.name} is a full-finetune checkpoint, which has no low-rank update to combine")
        elif config is None:
            problems.append(f"{entry.name} is not a LoRA adapter")
        else:
            compatibility = check_compatible(entry.path, base)
            if problems_have_errors(compatibility):
                errors = [str(problem) for problem in compatibility if problem.severity == "error"]
                problems.append(f"{entry.name} does not fit base {base.spec.name!r} ({'; '.join(errors[:2])})")
    if problems:
        return problems

    task_types = {entry.metadata.task_type for entry in entries}
    if len(task_types) > 1:
        problems.append("the sources mix classification and generation adapters")
    elif task_types == {"classification"}:
        label_sets = {tuple(entry.metadata.label_names) for entry in entries}
        if len(label_sets) > 1:
            listed = ", ".join(f"{entry.name} {entry.metadata.label_names}" for entry in entries)
            problems.append(
                f"their classification heads predict different labels ({listed}); heads can only be merged "
                "for the same label names in the same order"
            )
        if sum(weights) <= 0:
            problems.append(
                f"the heads are averaged with weight / sum(weights), so the weights {weights} need a positive sum"
            )

    meta_model = base.meta_model("classification" if task_types == {"classification"} else "causal_lm")
    head_names = set(classification_head_names(meta_model)) if task_types == {"classification"} else set()
    module_names = {name.rsplit(".", 1)[-1] for name, _ in meta_model.named_modules()}
    for entry, config in zip(entries, configs):
        if config.use_dora:
            problems.append(f"{entry.name} is a DoRA adapter; PEFT does not combine DoRA magnitude vectors")
        if config.bias != "none":
            problems.append(f"{entry.name} trains biases (bias={config.bias!r}), which weighted merging ignores")
        # PEFT lists both "classifier" and "score" for every classification adapter; only the ones that
        # exist in this model are trained.
        extra_modules = (set(config.modules_to_save or []) & module_names) - head_names
        if extra_modules:
            problems.append(f"{entry.name} also trains {sorted(extra_modules)}, which weighted merging cannot combine")
        if getattr(config, "target_parameters", None):
            problems.append(f"{entry.name} targets parameters directly, which weighted merging does not support")

    target_kinds = {isinstance(config.target_modules, str) for config in configs}
    if len(target_kinds) > 1:
        problems.append(
            "some sources select target modules by a regular expression and others by a list of names; "
            "PEFT cannot combine the two forms"
        )

    ranks = {entry.name: _max_rank(config) for entry, config in zip(entries, configs)}
    if options.method in EQUAL_RANK_METHODS and len(set(ranks.values())) > 1:
        listed = ", ".join(f"{name} r={rank}" for name, rank in ranks.items())
        problems.append(
            f"{options.method!r} needs equal ranks, but {listed}; use 'cat' (ranks add up) or an *_svd method"
        )
    if options.method in EQUAL_RANK_METHODS and any(config.rank_pattern for config in configs):
        problems.append(f"{options.method!r} needs one rank per adapter, but a source sets per-layer ranks (rank_pattern)")
    return problems


def _max_rank(config) -> int:
    return max([config.r, *(config.rank_pattern or {}).values()])


def _read_tensors(entry: AdapterEntry) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(Path(entry.path) / ADAPTER_WEIGHTS))


def _is_lora_key(key: str) -> bool:
    return ".lora_" in key


def _task_model(base, metadata: AdapterMetadata):
    # A private RNG keeps the caller's random state; the initial head is replaced by loaded weights.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        if metadata.task_type == "classification":
            return base.classification_model(len(metadata.label_names), metadata.label_names)
        return base.causal_lm_model()


def _weighted_lora(base, entries, configs, tensors, weights, options: MergeOptions):
    """Run PEFT's add_weighted_adapter on the sources' LoRA matrices; return (merged LoraConfig, its tensors)."""
    from peft import get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict

    # Heads are left out here (PEFT refuses to merge modules_to_save) and averaged separately.
    names = [f"~source{index}~" for index in range(len(entries))]
    stripped = [replace(config, modules_to_save=None, task_type=None, inference_mode=True) for config in configs]
    model = get_peft_model(_task_model(base, entries[0].metadata), stripped[0], adapter_name=names[0])
    for adapter_name, config in zip(names[1:], stripped[1:]):
        model.add_adapter(adapter_name, config)
    for entry, adapter_name, state in zip(entries, names, tensors):
        lora_state = {key: value for key, value in state.items() if _is_lora_key(key)}
        set_peft_model_state_dict(model, lora_state, adapter_name=adapter_name)
        loaded = get_peft_model_state_dict(model, adapter_name=adapter_name, save_embedding_layers=False)
        missing = sorted(set(loaded) - set(lora_state))
        if missing:
            raise AdapterError(
                f"Adapter {entry.name!r} has no weights for {len(missing)} LoRA tensors, for example {missing[:2]}.",
                "The file is incomplete: delete the entry and save or pull it again.",
            )

    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(options.seed)
        try:
            model.add_weighted_adapter(
                adapters=names,
                weights=weights,
                adapter_name=_MERGED,
                combination_type=options.method,
                svd_rank=options.svd_rank,
                density=options.density,
                majority_sign_method=options.majority_sign_method,
            )
        except (ValueError, TypeError, RuntimeError) as error:
            raise AdapterError(f"PEFT could not merge the adapters: {error}", "Try the 'cat' or 'svd' method.") from error

    merged_config = model.peft_config[_MERGED]
    merged_state = get_peft_model_state_dict(model, adapter_name=_MERGED, save_embedding_layers=False)
    # add_weighted_adapter folds every source's scaling into the matrices and sets lora_alpha = r, so
    # the result must be applied with scaling 1. With use_rslora inherited from the first source the
    # scaling would be alpha / sqrt(r) instead, so rsLoRA is switched off.
    merged_config = replace(merged_config, use_rslora=False, lora_alpha=merged_config.r, alpha_pattern={}, rank_pattern={})
    return merged_config, {key: value.detach().clone() for key, value in merged_state.items()}


def _weighted_head(tensors: list[dict[str, torch.Tensor]], weights: list[float]) -> dict[str, torch.Tensor]:
    """Average the saved head tensors (every non-LoRA tensor) with weight / sum(weights)."""
    total = sum(weights)
    keys = [key for key in tensors[0] if not _is_lora_key(key)]
    missing = [key for key in keys for state in tensors[1:] if key not in state]
    if missing or not keys:
        raise AdapterError(
            f"The classification heads of the sources do not match (for example {missing[:1] or 'no head saved'}).",
            "Merge adapters saved by LoRA Playground for the same base and labels.",
        )
    return {key: sum(weight / total * state[key].float() for weight, state in zip(weights, tensors)) for key in keys}


def _final_model(base, metadata: AdapterMetadata, first_config, merged_config, state: dict[str, torch.Tensor]):
    """Build a PeftModel holding only the merged adapter (and head), ready for AdapterStore.save_lora."""
    from peft import get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict
    from lora_playground.models.layers import classification_head_names

    task_model = _task_model(base, metadata)
    heads = classification_head_names(task_model) if metadata.task_type == "classification" else None
    config = replace(merged_config, task_type=first_config.task_type, modules_to_save=heads, inference_mode=True)
    model = get_peft_model(task_model, config)
    set_peft_model_state_dict(model, state)
    expected = set(get_peft_model_state_dict(model, save_embedding_layers=False))
    missing = sorted(expected - set(state))
    if missing:
        raise AdapterError(
            f"The merged adapter is missing {len(missing)} tensors, for example {missing[:2]}.",
            "This is a bug in LoRA Playground; please report it with the source adapters' configs.",
        )
    return model.eval()


def _merged_metadata(base, entries, weights, options: MergeOptions, rank: int, has_head: bool) -> AdapterMetadata:
    first = entries[0].metadata
    task_names = list(dict.fromkeys(entry.metadata.task.get("name", "?") for entry in entries))
    task = {
        **first.task,
        "name": " + ".join(task_names),
        "source": "merge of " + ", ".join(entry.name for entry in entries),
    }
    merge = {
        "sources": [entry.name for entry in entries],
        "weights": weights,
        "method": options.method,
        "density": options.density,
        "majority_sign_method": options.majority_sign_method if options.method in SIGN_METHODS else None,
        "svd_rank": options.svd_rank,
        "seed": options.seed,
        "rank": rank,
        "head": "weighted average of the source heads (weight / sum of weights)" if has_head else None,
        "source_tasks": {entry.name: entry.metadata.task for entry in entries},
        "source_data_fingerprints": {entry.name: entry.metadata.data_fingerprint for entry in entries},
        "source_train_configs": {entry.name: entry.metadata.train_config for entry in entries},
    }
    return AdapterMetadata(
        name="unnamed",
        kind="lora",
        task=task,
        base_model=BaseModelRef.from_shared_base(base),
        data_fingerprint=None,
        extra={"merge": merge},
    )
