"""Checks that run before an entry is loaded: files present and readable, and weights that fit the base.

`check_entry_files` inspects a folder alone. `check_compatible` adds the checks against a `SharedBase`:
architecture, fingerprint, and the shape of every saved tensor against the module it belongs to.
Both return problems instead of raising, so the Hub pull and multi-adapter loading can show them all
before anything is loaded; `raise_for_problems` turns the errors into one AdapterError.
"""

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from torch import nn

from lora_playground.adapters.metadata import METADATA_FILE, AdapterMetadata
from lora_playground.errors import AdapterError

logger = logging.getLogger(__name__)

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_PICKLE_WEIGHTS = "adapter_model.bin"
FULL_CONFIG = "config.json"
FULL_WEIGHTS = "model.safetensors"
FULL_WEIGHTS_INDEX = "model.safetensors.index.json"
FULL_PICKLE_WEIGHTS = "pytorch_model.bin"
# File types that torch.load unpickles; unpickling a crafted file can run arbitrary code.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
PICKLE_HINT = (
    "Pickle files can run arbitrary code when loaded, so only safetensors are loaded by default. "
    "Convert the weights to safetensors, or pass allow_pickle=True (CLI: --allow-pickle) if you trust the source."
)

_PEFT_PREFIX = "base_model.model."
_LORA_KEY = re.compile(
    r"^(?P<module>.+)\.(?P<part>lora_A|lora_B|lora_embedding_A|lora_embedding_B|lora_magnitude_vector)(\.weight)?$"
)
_MAX_LISTED = 4
_KIND_TEXT = {"lora": "PEFT adapter", "full": "transformers model"}


@dataclass(frozen=True)
class CompatibilityProblem:
    """One finding: an "error" blocks loading, a "warning" is shown but loading goes ahead."""

    severity: Literal["error", "warning"]
    message: str

    def __str__(self) -> str:
        return self.message


def _error(message: str) -> CompatibilityProblem:
    return CompatibilityProblem("error", message)


def _warning(message: str) -> CompatibilityProblem:
    return CompatibilityProblem("warning", message)


def check_entry_files(folder: Path, kind: str = "lora", *, allow_pickle: bool = False) -> list[CompatibilityProblem]:
    """Return the problems of an entry folder's files: missing config, missing or corrupted weights, pickle-only weights."""
    folder = Path(folder)
    if kind == "lora":
        config_name, weights, pickle_weights = ADAPTER_CONFIG, [ADAPTER_WEIGHTS], ADAPTER_PICKLE_WEIGHTS
    else:
        config_name, pickle_weights = FULL_CONFIG, FULL_PICKLE_WEIGHTS
        weights = _full_weight_files(folder)

    problems = []
    config_path = folder / config_name
    if not config_path.is_file():
        problems.append(_error(f"{folder} has no {config_name}; it is not a complete {_KIND_TEXT[kind]} folder."))
    else:
        try:
            config = json.loads(config_path.read_text(encoding="utf-8"))
            if kind == "lora" and (not isinstance(config, dict) or "peft_type" not in config):
                problems.append(_error(f"{config_path} is not a PEFT adapter config (no 'peft_type')."))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            problems.append(_error(f"{config_path} is not valid JSON: {error}."))

    present = [folder / name for name in weights if (folder / name).is_file()]
    if present:
        for path in present:
            problem = _safetensors_problem(path)
            if problem:
                problems.append(_error(problem))
    elif (folder / pickle_weights).is_file():
        if not allow_pickle:
            problems.append(_error(f"{folder} has only the pickle weights file {pickle_weights}. {PICKLE_HINT}"))
    else:
        problems.append(_error(f"{folder} has no weights file {weights[0] if weights else FULL_WEIGHTS}."))
    return problems


def _full_weight_files(folder: Path) -> list[str]:
    index = folder / FULL_WEIGHTS_INDEX
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
            return sorted(set(weight_map.values()))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return [FULL_WEIGHTS_INDEX + " (unreadable)"]
    return [FULL_WEIGHTS]


def _safetensors_problem(path: Path) -> str | None:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            handle.keys()
    except (SafetensorError, OSError) as error:
        return f"{path} is corrupted or not a safetensors file ({error}); delete the entry and save or pull it again."
    return None


def read_tensor_shapes(path: Path, *, allow_pickle: bool = False) -> dict[str, tuple[int, ...]]:
    """Return {tensor name: shape} of a weights file: the safetensors header, or (allow_pickle only) the unpickled file."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            return {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}
    if not allow_pickle:
        raise AdapterError(f"Refusing to read the pickle file {path}.", PICKLE_HINT)
    import torch

    try:
        state_dict = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises UnpicklingError, RuntimeError, EOFError and others for bad files
        # weights_only refuses any object that is not a tensor or a plain container, so nothing in the file runs.
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise AdapterError(
            f"Cannot read the pickle file {path}: it is broken or contains objects other than tensors ({reason[:200]}).",
            "Such objects are never loaded; convert the weights to safetensors with a trusted tool.",
        ) from None
    if not isinstance(state_dict, dict) or not all(isinstance(value, torch.Tensor) for value in state_dict.values()):
        raise AdapterError(f"The pickle file {path} does not contain a dict of tensors.", "It is not a weights file.")
    return {key: tuple(tensor.shape) for key, tensor in state_dict.items()}


def check_compatible(
    entry: Path | str | AdapterMetadata | dict, base, *, allow_pickle: bool = False
) -> list[CompatibilityProblem]:
    """Return the problems that stop (errors) or qualify (warnings) loading an entry on `base` (a SharedBase).

    `entry` is an entry folder (files, metadata and tensor shapes are all checked) or its metadata
    alone (only the architecture and fingerprint are checked). A different base fingerprint with
    fitting shapes is a warning: the adapter loads but its recorded metrics may not hold. Any tensor
    whose shape does not fit its module is an error that names the module and both shapes.
    """
    folder = None
    metadata = None
    problems: list[CompatibilityProblem] = []
    if isinstance(entry, AdapterMetadata):
        metadata = entry
    elif isinstance(entry, dict):
        metadata = AdapterMetadata.from_dict(entry)
    else:
        folder = Path(entry)
        if (folder / METADATA_FILE).is_file():
            metadata = AdapterMetadata.load(folder / METADATA_FILE)
        else:
            problems.append(_warning(f"{folder} has no {METADATA_FILE}, so the base it was trained on is unknown."))
        if metadata is not None:
            kind = metadata.kind
        elif (folder / ADAPTER_CONFIG).exists():
            kind = "lora"
        else:
            kind = "full"
        problems += check_entry_files(folder, kind, allow_pickle=allow_pickle)
        if any(problem.severity == "error" for problem in problems):
            return problems

    fingerprint_differs = False
    if metadata is not None:
        recorded = metadata.base_model
        if recorded.architecture != base.spec.architecture:
            problems.append(
                _error(f"the entry was trained on a {recorded.architecture} ({recorded.name}), but {base.spec.name!r} is a {base.spec.architecture}")
            )
        if recorded.model_type and recorded.model_type != base.model_type:
            problems.append(
                _error(f"the entry was trained on a {recorded.model_type} model, but {base.spec.name!r} is {base.model_type}")
            )
        if metadata.task_type == "generation" and base.spec.architecture != "decoder":
            problems.append(_error("generation needs a decoder base such as smollm2-135m"))
        fingerprint_differs = recorded.fingerprint != base.fingerprint

    shape_errors = []
    if folder is not None and not problems_have_errors(problems):
        if (metadata.kind if metadata else "lora") == "lora":
            shape_errors = _lora_shape_errors(folder, base, metadata, allow_pickle)
        else:
            shape_errors = _full_model_errors(folder, base)
        problems += shape_errors

    if fingerprint_differs:
        recorded = metadata.base_model
        made_for = f"{recorded.name} (weights sha256 {recorded.fingerprint[:12]})"
        this_base = f"{base.spec.name} (weights sha256 {base.fingerprint[:12]})"
        if shape_errors or problems_have_errors(problems):
            problems.append(_error(f"the entry was made for base {made_for}, not {this_base}"))
        elif folder is None:
            problems.append(_warning(f"the entry was made for base {made_for}, not {this_base}; shapes not checked yet"))
        else:
            problems.append(
                _warning(
                    f"the entry was made for base {made_for}, not {this_base}; the shapes fit, so it loads, "
                    "but its predictions and recorded metrics may differ"
                )
            )
    return problems


def problems_have_errors(problems: list[CompatibilityProblem]) -> bool:
    return any(problem.severity == "error" for problem in problems)


def raise_for_problems(problems: list[CompatibilityProblem], entry: str, base_name: str | None = None) -> None:
    """Log warnings, and raise one AdapterError listing every error (the first few, then a count)."""
    for problem in problems:
        if problem.severity == "warning":
            logger.warning("%s: %s", entry, problem.message)
    errors = [problem.message for problem in problems if problem.severity == "error"]
    if not errors:
        return
    listed = "; ".join(errors[:_MAX_LISTED])
    if len(errors) > _MAX_LISTED:
        listed += f"; and {len(errors) - _MAX_LISTED} more"
    target = f" on base {base_name!r}" if base_name else ""
    raise AdapterError(
        f"Cannot load {entry}{target}: {listed}.",
        "Load it with the base model it was trained on (see base_model in its metadata.json), "
        "or train it again on this base.",
    )


def _lora_shape_errors(folder: Path, base, metadata, allow_pickle: bool) -> list[CompatibilityProblem]:
    adapter_config = json.loads((folder / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    if adapter_config.get("peft_type") != "LORA":
        return [_warning(f"shape checks cover LoRA adapters only; {adapter_config.get('peft_type')!r} was not checked")]
    weights = folder / ADAPTER_WEIGHTS
    if not weights.is_file():
        weights = folder / ADAPTER_PICKLE_WEIGHTS
    shapes = {key.removeprefix(_PEFT_PREFIX): shape for key, shape in read_tensor_shapes(weights, allow_pickle=allow_pickle).items()}

    kind = _model_kind(metadata, adapter_config, base)
    num_labels = len(metadata.label_names) if metadata and metadata.label_names else 2
    model = base.meta_model(kind, num_labels)
    if kind == "classification" and not (metadata and metadata.label_names):
        inferred = _infer_num_labels(model, shapes)
        if inferred and inferred != num_labels:
            model = base.meta_model(kind, inferred)

    errors = []
    for key, shape in sorted(shapes.items()):
        problem = _tensor_problem(model, key, shape)
        if problem:
            errors.append(_error(problem))
    return errors


def _model_kind(metadata, adapter_config: dict, base) -> str:
    if metadata is not None:
        return "classification" if metadata.task_type == "classification" else "causal_lm"
    if adapter_config.get("task_type") == "SEQ_CLS" or base.spec.architecture == "encoder":
        return "classification"
    return "causal_lm"


def _infer_num_labels(model: nn.Module, shapes: dict) -> int | None:
    from lora_playground.models.layers import classification_head_names

    for head in classification_head_names(model):
        module = model.get_submodule(head)
        for name, _ in module.named_parameters():
            if name.endswith("weight") and f"{head}.{name}" in shapes:
                return shapes[f"{head}.{name}"][0]
    return None


def _tensor_problem(model: nn.Module, key: str, shape: tuple) -> str | None:
    match = _LORA_KEY.match(key)
    if match is None:
        # A full tensor saved with the adapter: a head in modules_to_save, or a trained bias or embedding.
        try:
            expected = tuple(model.get_parameter(key).shape)
        except AttributeError:
            return f"tensor {key} belongs to no parameter of the base model"
        if expected != shape:
            return f"tensor {key} has shape {shape}, but the base parameter has shape {expected}"
        return None

    module_name, part = match["module"], match["part"]
    try:
        module = model.get_submodule(module_name)
    except AttributeError:
        return f"module {module_name} (adapted by {part}) does not exist in the base model"
    dims = _layer_dims(module)
    if dims is None:
        return None
    in_features, out_features = dims
    if part in ("lora_A", "lora_embedding_A"):
        fits, expected = len(shape) == 2 and shape[1] == in_features, f"(rank, {in_features})"
    elif part in ("lora_B", "lora_embedding_B"):
        fits, expected = len(shape) == 2 and shape[0] == out_features, f"({out_features}, rank)"
    else:
        fits, expected = len(shape) == 1 and shape[0] == out_features, f"({out_features},)"
    if fits:
        return None
    return (
        f"module {module_name}: {part} has shape {shape}, but the base layer {type(module).__name__}"
        f"({in_features} -> {out_features}) needs {expected}"
    )


def _layer_dims(module: nn.Module) -> tuple[int, int] | None:
    """Return (input size, output size) of a layer LoRA can adapt, or None for other module types."""
    if isinstance(module, nn.Linear):
        return module.in_features, module.out_features
    if isinstance(module, nn.Embedding):
        return module.num_embeddings, module.embedding_dim
    if type(module).__name__ == "Conv1D":
        return module.weight.shape[0], module.weight.shape[1]
    return None


def _full_model_errors(folder: Path, base) -> list[CompatibilityProblem]:
    """A full checkpoint loads on its own, but it is fed by the base's tokenizer, so the vocabularies must agree."""
    config = json.loads((folder / FULL_CONFIG).read_text(encoding="utf-8"))
    vocab_size = config.get("vocab_size")
    if vocab_size is not None and vocab_size != base.config.vocab_size:
        return [
            _error(
                f"its vocabulary has {vocab_size} tokens, but base {base.spec.name!r} and its tokenizer use "
                f"{base.config.vocab_size}"
            )
        ]
    return []
