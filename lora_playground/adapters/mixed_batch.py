"""Mixed-adapter batches: one forward pass (or one `generate` call) where each row uses its own adapter.

PEFT (checked against 0.21.2) takes `adapter_names=[...]`, one name per row, with "__base__" for rows that
use no adapter. Inside each LoRA layer the rows are split by adapter, so the base matmul runs once for the
whole batch and only the small LoRA products run per adapter. Task heads saved through
`modules_to_save` follow `adapter_names` per row too, when the head is an `nn.Linear`, `nn.Embedding`
or `nn.Conv1d/2d/3d`. The classification heads of BERT and Llama are `nn.Linear`. A "__base__" row
gets the group model's own untrained head.

PEFT rejects `adapter_names` for DoRA adapters and for merged adapters, and raises a TypeError for heads
of other module types. This module checks for those cases before the forward pass. When one applies,
the rows are run as one sub-batch per adapter with that adapter active (same tokenization, so the
answers are the same); the result's `strategy` then says "per-adapter" and `reason` says why.
The pool never merges adapters, so merged adapters cannot occur here.

With sampling (temperature > 0) a row's reply depends on the whole batch, because all rows draw from
one random generator. Greedy replies do not.
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from lora_playground.adapters.serving import BASE_ADAPTER, AdapterPool, GroupKey
from lora_playground.errors import ConfigError, DataError
from lora_playground.evaluation.inference import model_device

logger = logging.getLogger(__name__)

MIXED = "mixed"
PER_ADAPTER = "per-adapter"
# Module types whose ModulesToSaveWrapper supports per-row adapters in PEFT 0.21.2 (utils/other.py).
_MIXED_HEAD_TYPES = (torch.nn.Linear, torch.nn.Embedding, torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)


@dataclass
class RowClassification:
    """The prediction for one row of a mixed classification batch."""

    adapter: str
    label: str
    probabilities: dict[str, float]
    logits: torch.Tensor  # (num_labels,) float32


@dataclass
class MixedClassification:
    """Per-row predictions, and how each group of rows was run."""

    rows: list[RowClassification]
    strategies: dict[str, str] = field(default_factory=dict)
    """Group label (for example "classification/3") -> "mixed" or "per-adapter"."""
    reasons: dict[str, str] = field(default_factory=dict)
    """Group label -> why the per-adapter path was taken (only for those groups)."""
    forward_passes: int = 0


@dataclass
class MixedGeneration:
    """Per-row replies and new token ids, and how the batch was run."""

    replies: list[str]
    token_ids: list[list[int]]
    """New tokens of each row, padding after an early stop removed."""
    strategy: str = MIXED
    reason: str | None = None


def mixed_batch_blocker(peft_model, adapter_names: Sequence[str]) -> str | None:
    """Return why PEFT cannot run these adapters in one mixed batch on `peft_model`, or None if it can."""
    from peft.tuners.lora import LoraLayer
    from peft.utils.other import ModulesToSaveWrapper

    requested = {name for name in adapter_names if name != BASE_ADAPTER}
    dora = sorted(name for name in requested if getattr(peft_model.peft_config[name], "use_dora", False))
    if dora:
        return f"PEFT does not support per-row adapters with DoRA (adapters {', '.join(dora)})"
    for module_name, module in peft_model.named_modules():
        if isinstance(module, ModulesToSaveWrapper) and not isinstance(module.original_module, _MIXED_HEAD_TYPES):
            kind = type(module.original_module).__name__
            return f"PEFT cannot pick a head per row for module {module_name} of type {kind}"
        if isinstance(module, LoraLayer) and module.merged:
            return "an adapter is merged into the weights"
    return None


def classify_mixed(
    pool: AdapterPool,
    texts: Sequence[str],
    adapter_names: Sequence[str],
    text_pairs: Sequence[str] | None = None,
    *,
    max_length: int = 128,
) -> MixedClassification:
    """Classify each text with the LoRA adapter named at the same index (store names, or "__base__").

    Rows are grouped by the PeftModel that contains their adapter (one per label count) and each group
    runs as one mixed forward pass. A "__base__" row needs exactly one classification group in the
    request, because the untrained head's size is the group's label count. Adapters that are not
    loaded are loaded (LimitError if the pool is full). Probabilities are a softmax over the logits.
    """
    _check_lengths(texts, adapter_names, text_pairs)
    with pool.lock:
        return _classify_locked(pool, texts, adapter_names, text_pairs, max_length)


def _classify_locked(pool, texts, adapter_names, text_pairs, max_length) -> MixedClassification:
    infos = _lora_infos(pool, adapter_names, "classification")
    groups = sorted({info.group for info in infos.values()})
    if BASE_ADAPTER in adapter_names and len(groups) != 1:
        raise ConfigError(
            f"Rows with {BASE_ADAPTER!r} need the adapters of exactly one label count, but the request has "
            f"{len(groups)} ({', '.join(_group_label(group) for group in groups) or 'none'}).",
            "Send base rows together with adapters of one label count.",
        )

    rows: list[RowClassification | None] = [None] * len(texts)
    result = MixedClassification(rows=rows)
    for group in groups:
        indices = [index for index, name in enumerate(adapter_names) if name == BASE_ADAPTER or infos[name].group == group]
        names = [_peft_name(infos, adapter_names[index]) for index in indices]
        encoded = pool.base.tokenizer(
            [texts[index] for index in indices],
            [text_pairs[index] for index in indices] if text_pairs is not None else None,
            padding=True,
            truncation=True,
            max_length=max_length,
            return_tensors="pt",
        )
        model = pool.group_model(next(name for name, info in infos.items() if info.group == group))
        encoded = encoded.to(model_device(model))
        label = _group_label(group)
        blocker = mixed_batch_blocker(model, names)
        with torch.inference_mode():
            if blocker is None:
                logits = model(**encoded, adapter_names=names).logits  # (rows, num_labels)
                result.forward_passes += 1
                result.strategies[label] = MIXED
            else:
                logger.info("Running %s rows one adapter at a time: %s", label, blocker)
                logits, passes = _per_adapter_logits(model, encoded, names)
                result.forward_passes += passes
                result.strategies[label] = PER_ADAPTER
                result.reasons[label] = blocker

        probabilities = torch.softmax(logits.float(), dim=-1).cpu()  # (rows, num_labels)
        for position, index in enumerate(indices):
            name = adapter_names[index]
            label_names = infos[name].label_names if name != BASE_ADAPTER else _any_labels(infos, group)
            rows[index] = RowClassification(
                adapter=name,
                label=label_names[int(torch.argmax(probabilities[position]))],
                probabilities=dict(zip(label_names, probabilities[position].tolist())),
                logits=logits[position].float().cpu().clone(),
            )
    return result


def generate_mixed(
    pool: AdapterPool,
    prompts_messages: Sequence[Sequence[dict]],
    adapter_names: Sequence[str],
    *,
    max_new_tokens: int = 64,
    temperature: float = 0.0,
    top_p: float = 1.0,
    seed: int = 0,
    max_prompt_length: int | None = None,
) -> MixedGeneration:
    """Generate one reply per chat prompt, each with the generation adapter named at the same index.

    All rows run in one `generate` call (left-padded, like `generate_responses`) with PEFT's
    `adapter_names`; "__base__" rows use no adapter. Greedy by default; see the module notes on sampling.
    """
    from lora_playground.evaluation.generation import _generation_config, _rng_devices
    from lora_playground.evaluation.prompting import render_prompt

    _check_lengths(prompts_messages, adapter_names, None)
    check_generation_options(max_new_tokens, temperature, top_p)
    tokenizer = pool.base.tokenizer
    prompt_ids = [
        tokenizer(render_prompt(tokenizer, messages), add_special_tokens=False)["input_ids"] for messages in prompts_messages
    ]
    if max_prompt_length is not None:
        prompt_ids = [ids[-max_prompt_length:] for ids in prompt_ids]
    batch = tokenizer.pad({"input_ids": prompt_ids}, padding_side="left", return_tensors="pt")

    with pool.lock:
        infos = _lora_infos(pool, adapter_names, "generation")
        names = [_peft_name(infos, name) for name in adapter_names]
        if infos:
            model = pool.group_model(next(iter(infos)))
        else:
            # Only base rows: no adapter is involved, so the plain base generates.
            model = pool.base_causal_lm()
            names = None
        config = _generation_config(model, tokenizer, max_new_tokens, temperature, top_p)
        batch = batch.to(model_device(model))
        blocker = mixed_batch_blocker(model, names) if names is not None else None
        with torch.random.fork_rng(devices=_rng_devices(batch["input_ids"].device)), torch.inference_mode():
            torch.manual_seed(seed)
            if blocker is None:
                extra = {"adapter_names": names} if names is not None else {}
                output = model.generate(**batch, generation_config=config, **extra)
                new_tokens = [row for row in output[:, batch["input_ids"].shape[1]:]]
            else:
                logger.info("Generating one adapter at a time: %s", blocker)
                new_tokens = _per_adapter_generate(model, batch, names, config)

    token_ids = [_strip_padding(row.tolist(), tokenizer.pad_token_id, config) for row in new_tokens]
    replies = [tokenizer.decode(ids, skip_special_tokens=True).strip() for ids in token_ids]
    return MixedGeneration(
        replies=replies, token_ids=token_ids, strategy=MIXED if blocker is None else PER_ADAPTER, reason=blocker
    )


def check_generation_options(max_new_tokens: int, temperature: float, top_p: float) -> None:
    """Raise ConfigError for a max_new_tokens below 1, a negative temperature or a top_p outside (0, 1]."""
    if max_new_tokens < 1:
        raise ConfigError(f"max_new_tokens={max_new_tokens} must be at least 1.")
    if temperature < 0.0:
        raise ConfigError(f"temperature={temperature} is negative.", "Use 0 for greedy decoding or a positive value to sample.")
    if not 0.0 < top_p <= 1.0:
        raise ConfigError(f"top_p={top_p} is not in (0, 1].", "Use 1.0 to keep the whole distribution.")


def _check_lengths(inputs: Sequence, adapter_names: Sequence[str], text_pairs: Sequence[str] | None) -> None:
    if len(inputs) != len(adapter_names):
        raise DataError(
            f"Got {len(adapter_names)} adapter names for {len(inputs)} inputs.", "Give one adapter name per row."
        )
    if text_pairs is not None and len(text_pairs) != len(inputs):
        raise DataError(f"Got {len(text_pairs)} second texts for {len(inputs)} texts.", "Give one text_pair per text.")
    if not inputs:
        raise DataError("The batch is empty.", "Give at least one row.")


def _lora_infos(pool: AdapterPool, adapter_names: Sequence[str], task_type: str) -> dict:
    names = [name for name in dict.fromkeys(adapter_names) if name != BASE_ADAPTER]
    infos = {info.name: info for info in pool.ensure_loaded(names, evict=False)} if names else {}
    for info in infos.values():
        if info.kind != "lora":
            raise ConfigError(
                f"{info.name!r} is a full-finetune model, not a LoRA adapter on the shared base, so it cannot "
                "share a mixed batch.",
                "Run full models on their own (AdapterPool.classify or generate).",
            )
        if info.task_type != task_type:
            raise ConfigError(
                f"Adapter {info.name!r} is a {info.task_type} adapter, but this batch is {task_type}.",
                "Mix adapters of one task type per batch.",
            )
    return infos


def _peft_name(infos: dict, name: str) -> str:
    return BASE_ADAPTER if name == BASE_ADAPTER else infos[name].adapter_name


def _group_label(group: GroupKey) -> str:
    task_type, num_labels = group
    return f"{task_type}/{num_labels}" if num_labels is not None else task_type


def _any_labels(infos: dict, group: GroupKey) -> list[str]:
    # The untrained head has no label names of its own. Its outputs are shown with the names of the
    # group's first adapter, which has the same label count.
    return next(info.label_names for info in infos.values() if info.group == group)


def _per_adapter_logits(model, encoded, names: list[str]) -> tuple[torch.Tensor, int]:
    logits = None
    passes = 0
    for name in dict.fromkeys(names):
        indices = torch.tensor([index for index, row_name in enumerate(names) if row_name == name])
        inputs = {key: value[indices] for key, value in encoded.items()}
        if name == BASE_ADAPTER:
            with model.disable_adapter():
                part = model(**inputs).logits
        else:
            model.set_adapter(name)
            part = model(**inputs).logits
        if logits is None:
            logits = part.new_empty((len(names), part.shape[-1]))
        logits[indices] = part
        passes += 1
    return logits, passes


def _per_adapter_generate(model, batch, names: list[str], config) -> list[torch.Tensor]:
    prompt_length = batch["input_ids"].shape[1]
    new_tokens: list[torch.Tensor | None] = [None] * len(names)
    for name in dict.fromkeys(names):
        indices = [index for index, row_name in enumerate(names) if row_name == name]
        inputs = {key: value[indices] for key, value in batch.items()}
        if name == BASE_ADAPTER:
            with model.disable_adapter():
                output = model.generate(**inputs, generation_config=config)
        else:
            model.set_adapter(name)
            output = model.generate(**inputs, generation_config=config)
        for position, index in enumerate(indices):
            new_tokens[index] = output[position, prompt_length:]
    return new_tokens


def _strip_padding(ids: list[int], pad_token_id: int, config) -> list[int]:
    # Rows that stop early are padded up to the longest row; cut them after their first stop token.
    stop_ids = config.eos_token_id if isinstance(config.eos_token_id, list) else [config.eos_token_id]
    for position, token in enumerate(ids):
        if token in stop_ids:
            return ids[: position + 1]
    while ids and ids[-1] == pad_token_id and pad_token_id not in stop_ids:
        ids = ids[:-1]
    return ids
