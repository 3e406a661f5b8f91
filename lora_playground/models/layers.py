"""Module names inside a model: linear layers LoRA can target, default targets, and task heads."""

import re

from torch import nn

from lora_playground.errors import ModelError

# Attention query and value projections, the targets of the original LoRA paper (Hu et al., 2021).
_DEFAULT_TARGETS = {"llama": ["q_proj", "v_proj"], "bert": ["query", "value"]}


def _unwrap(model: nn.Module) -> nn.Module:
    # A PeftModel exposes the transformers model through get_base_model().
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def _is_linear(module: nn.Module) -> bool:
    # transformers' Conv1D (GPT-2 style) is a linear layer with a transposed weight.
    return isinstance(module, nn.Linear) or type(module).__name__ == "Conv1D"


def linear_layer_names(model: nn.Module) -> list[str]:
    """Return the sorted distinct leaf names of the linear layers in the model body (heads excluded).

    Examples: ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"] for Llama,
    ["dense", "key", "query", "value"] for BERT. These are the names `target_modules` accepts.
    """
    body = _unwrap(model).base_model
    return sorted({name.rsplit(".", 1)[-1] for name, module in body.named_modules() if name and _is_linear(module)})


def default_target_modules(model_type: str) -> list[str]:
    """Return the default LoRA targets for a transformers model type: the attention query and value layers.

    Llama uses ["q_proj", "v_proj"], BERT ["query", "value"]; other types use PEFT's own mapping.
    Raises ModelError when neither has an entry for the type.
    """
    if model_type in _DEFAULT_TARGETS:
        return list(_DEFAULT_TARGETS[model_type])
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING

    if model_type in TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING:
        return list(TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING[model_type])
    raise ModelError(
        f"There are no default LoRA target modules for model type {model_type!r}.",
        "Pass target_modules explicitly (a list of linear layer names) or 'all-linear'.",
    )


def validate_target_modules(model: nn.Module, targets: list[str] | str | None) -> None:
    """Raise ModelError unless every LoRA target matches a module of the model, as PEFT matches them.

    A list entry matches a module whose full name equals it or ends with "." + entry. A string other
    than "all-linear" is a regular expression that must fully match at least one module name. None and
    "all-linear" always pass. The error lists the model's linear layer names.
    """
    if targets is None or targets == "all-linear":
        return
    names = [name for name, _ in _unwrap(model).named_modules() if name]
    if isinstance(targets, str):
        if not any(re.fullmatch(targets, name) for name in names):
            raise _unknown_targets_error(model, [targets], "matches no module name")
        return
    missing = [target for target in targets if not any(name == target or name.endswith("." + target) for name in names)]
    if missing:
        raise _unknown_targets_error(model, missing, "not found in the model")


def _unknown_targets_error(model: nn.Module, targets: list[str], reason: str) -> ModelError:
    model_type = _unwrap(model).config.model_type
    return ModelError(
        f"LoRA target module(s) {targets} {reason} ({model_type}).",
        f"Linear layers of this model: {', '.join(linear_layer_names(model))}; or use 'all-linear'.",
    )


def classification_head_names(model: nn.Module) -> list[str]:
    """Return the names of the task head modules outside the body, for PEFT's `modules_to_save`.

    ["score"] for Llama, ["classifier"] for BERT, ["pre_classifier", "classifier"] for DistilBERT.
    Modules without parameters (dropout) are left out.
    """
    plain = _unwrap(model)
    body = plain.base_model
    return [
        name
        for name, child in plain.named_children()
        if child is not body and any(True for _ in child.parameters())
    ]
