"""Base models: the registry, the GGUF -> safetensors cache, the shared frozen base, and layer names."""

from lora_playground.models.layers import (
    classification_head_names,
    default_target_modules,
    linear_layer_names,
    validate_target_modules,
)
from lora_playground.models.registry import REGISTRY, BaseModelSpec, resolve_base
from lora_playground.models.shared_base import SharedBase, get_shared_base

__all__ = [
    "REGISTRY",
    "BaseModelSpec",
    "SharedBase",
    "classification_head_names",
    "default_target_modules",
    "get_shared_base",
    "linear_layer_names",
    "resolve_base",
    "validate_target_modules",
]
