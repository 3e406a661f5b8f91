"""Publishing adapters to, and pulling them from, the Hugging Face Hub or a Hub-compatible server.

The endpoint is the `endpoint` argument, else `HF_ENDPOINT`, else https://huggingface.co; the token is
the `token` argument, else `HF_TOKEN`, else the `hf auth login` token (details in `hub.client`).
"""

from lora_playground.hub.client import resolve_endpoint, resolve_token
from lora_playground.hub.listing import HubAdapterInfo, list_hub_adapters
from lora_playground.hub.pull import default_entry_name, pull_adapter
from lora_playground.hub.push import PushResult, push_adapter

__all__ = [
    "HubAdapterInfo",
    "PushResult",
    "default_entry_name",
    "list_hub_adapters",
    "pull_adapter",
    "push_adapter",
    "resolve_endpoint",
    "resolve_token",
]
