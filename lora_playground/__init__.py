"""LoRA Playground: train, compare, try and publish LoRA adapters on one shared frozen base model."""

__version__ = "0.1.0"
