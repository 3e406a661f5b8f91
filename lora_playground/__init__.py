"""LoRA Playground: train, compare, try and publish LoRA adapters on one shared frozen base model."""

import os

# huggingface_hub 2.4 sends one request per process to its default endpoint to build its user agent,
# even when every call of ours goes to a self-hosted endpoint; this switch stops it. It must be set
# before huggingface_hub is imported, and a user's own setting wins.
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

__version__ = "0.1.0"
