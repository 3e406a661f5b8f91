"""Model cards (README.md) for stored adapters, with the Hub's YAML metadata block.

The card is generated from an adapter's `metadata.json` (see `adapters/metadata.py` for the schema) and,
optionally, the metadata of the full-finetune baseline trained on the same task. The same text serves as
the README.md of a store entry and as the model card pushed to the Hub.

Secrets never reach the card: keys that name a token, password or secret are left out, and any string
that looks like a Hugging Face access token (``hf_`` followed by 30 or more letters and digits) is
replaced by ``***``.
"""

import json
import math
import re

from lora_playground.jobs.redact import redact_text

try:
    import yaml
except ImportError:  # PyYAML is optional: the hand-written emitter below produces the same document.
    yaml = None

# Hub ids of the built-in bases whose training weights came from a GGUF file, with that file's name.
GGUF_DEQUANTIZED_BASES = {
    "HuggingFaceTB/SmolLM2-135M-Instruct": "SmolLM2-135M-Instruct.Q4_1.gguf",
}
GGUF_DEQUANTIZED_NAMES = {"smollm2-135m": "HuggingFaceTB/SmolLM2-135M-Instruct"}

# Key names that hold a secret: "token", "hf_token", "api_key", ... but not "max_tokens" or "tokens_per_second".
_SECRET_KEY_PATTERN = re.compile(r"(^|[_-])(token|secret|password|api[_-]?key|credentials?)$", re.IGNORECASE)

_PIPELINE_TAGS = {"classification": "text-classification", "generation": "text-generation"}
_TASK_TITLES = {"classification": "Text Classification", "generation": "Text Generation"}
_AUTO_CLASSES = {"classification": "AutoModelForSequenceClassification", "generation": "AutoModelForCausalLM"}

# Training options shown in the card, in this order, with their labels.
_TRAIN_OPTIONS = [
    ("rank", "LoRA rank r"),
    ("alpha", "LoRA alpha"),
    ("dropout", "LoRA dropout"),
    ("use_rslora", "rank-stabilized LoRA"),
    ("use_dora", "DoRA"),
    ("last_n_blocks", "trained blocks (full finetune)"),
    ("epochs", "epochs"),
    ("max_steps", "max steps"),
    ("batch_size", "batch size"),
    ("grad_accum", "gradient accumulation steps"),
    ("max_length", "max sequence length (tokens)"),
    ("weight_decay", "weight decay"),
    ("warmup_ratio", "warmup ratio"),
    ("lr_scheduler", "learning-rate schedule"),
    ("early_stopping_patience", "early stopping patience (evaluations)"),
    ("bf16", "bfloat16 autocast"),
    ("packing", "sequence packing"),
    ("seed", "seed"),
]


def render_model_card(
    metadata: dict,
    baseline: dict | None = None,
    *,
    adapter_config: dict | None = None,
    repo_id: str | None = None,
) -> str:
    """Render the model card of a stored adapter or full checkpoint as Markdown with YAML front matter.

    Args:
        metadata: the entry's metadata.json content (name, kind, task, base_model, train_config, metrics,
            val_metrics, cost, data_fingerprint, created_at, provenance). Missing fields are left out.
        baseline: metadata of the full-finetune run on the same task; its metrics and costs are shown
            next to this entry's. None shows this entry's numbers alone.
        adapter_config: the PEFT adapter_config.json content; it gives the target modules that were
            really adapted, which the training options may leave to a per-architecture default.
        repo_id: the Hub repo the card is published under, used in the loading snippet. None writes a
            placeholder path.

    Returns the card text. It has no side effects and never contains an access token.
    """
    metadata = without_secrets(metadata)
    baseline = without_secrets(baseline) if baseline is not None else None
    adapter_config = without_secrets(adapter_config) if adapter_config is not None else None

    front_matter = dump_yaml(card_front_matter(metadata))
    body = _render_body(metadata, baseline, adapter_config, repo_id)
    return redact_text(f"---\n{front_matter}---\n\n{body}")


def card_front_matter(metadata: dict) -> dict:
    """Build the card's YAML metadata: base_model, library_name, license, tags, datasets, model-index."""
    task = metadata.get("task") or {}
    task_type = task.get("type", "classification")
    kind = metadata.get("kind", "lora")
    hub_id = base_hub_id(metadata)

    data: dict = {}
    if hub_id:
        data["base_model"] = hub_id
    data["library_name"] = "peft" if kind == "lora" else "transformers"
    data["license"] = _card_license(metadata)

    tags = ["lora", "peft"] if kind == "lora" else ["full-finetune"]
    tags += [_PIPELINE_TAGS.get(task_type, task_type), "lora-playground"]
    data["tags"] = tags
    if task.get("hub_dataset"):
        data["datasets"] = [task["hub_dataset"]]
    if task_type in _PIPELINE_TAGS:
        data["pipeline_tag"] = _PIPELINE_TAGS[task_type]

    results = _model_index_metrics(metadata.get("metrics") or {})
    if results:
        data["model-index"] = [
            {
                "name": metadata.get("name", "adapter"),
                "results": [
                    {
                        "task": {"type": _PIPELINE_TAGS.get(task_type, task_type), "name": _TASK_TITLES.get(task_type, task_type)},
                        "dataset": {
                            "name": task.get("name", "unnamed task"),
                            "type": task.get("hub_dataset") or task.get("name", "unnamed task"),
                            "split": "test",
                        },
                        "metrics": results,
                    }
                ],
            }
        ]
    return data


def base_hub_id(metadata: dict) -> str | None:
    """Return the Hub id of the entry's base model, or None when only a local path is known."""
    base = metadata.get("base_model") or {}
    if base.get("hub_id"):
        return base["hub_id"]
    return GGUF_DEQUANTIZED_NAMES.get(base.get("name", ""))


def dump_yaml(data: dict) -> str:
    """Serialize a dict of plain values (str, numbers, bools, None, lists, dicts) as a YAML block.

    Uses PyYAML when it is installed, else the hand-written emitter, which writes every string as a
    JSON-style double-quoted scalar (valid YAML) so no value can change the document's structure.
    """
    if yaml is not None:
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False)
    return emit_yaml(data)


def emit_yaml(data: dict) -> str:
    """Serialize a dict as block-style YAML without PyYAML; strings are double-quoted and escaped."""
    return "".join(line + "\n" for line in _yaml_mapping_lines(data, indent=0))


# YAML accepts only these characters unescaped in a double-quoted scalar (YAML 1.1 "printable").
# The line breaks U+0085, U+2028 and U+2029 are printable but would be folded, so they are escaped too.
_YAML_UNSAFE = re.compile("[^\x09\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _yaml_scalar(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        text = repr(value)
        mantissa, marker, exponent = text.partition("e")
        if marker and "." not in mantissa:
            # YAML 1.1 (PyYAML) reads "5e-05" as a string: a float needs a dot in the mantissa.
            text = f"{mantissa}.0e{exponent}"
        return text
    quoted = json.dumps(str(value), ensure_ascii=False)
    return _YAML_UNSAFE.sub(lambda match: f"\\u{ord(match.group()):04x}", quoted)


def _yaml_key(key) -> str:
    key = str(key)
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", key) and key.lower() not in {"null", "true", "false", "yes", "no", "on", "off", "y", "n"}:
        return key
    return _yaml_scalar(key)


def _yaml_mapping_lines(mapping: dict, indent: int) -> list[str]:
    pad = " " * indent
    lines = []
    for key, value in mapping.items():
        if isinstance(value, dict) and value:
            lines.append(f"{pad}{_yaml_key(key)}:")
            lines += _yaml_mapping_lines(value, indent + 2)
        elif isinstance(value, (list, tuple)) and value:
            lines.append(f"{pad}{_yaml_key(key)}:")
            lines += _yaml_sequence_lines(list(value), indent)
        else:
            lines.append(f"{pad}{_yaml_key(key)}: {_yaml_inline(value)}")
    return lines


def _yaml_sequence_lines(items: list, indent: int) -> list[str]:
    pad = " " * indent
    lines = []
    for item in items:
        if isinstance(item, dict) and item:
            # The first key shares the "- " line; the rest align under it.
            nested = _yaml_mapping_lines(item, indent + 2)
            lines.append(f"{pad}- {nested[0].lstrip()}")
            lines += nested[1:]
        elif isinstance(item, (list, tuple)) and item:
            nested = _yaml_sequence_lines(list(item), indent + 2)
            lines.append(f"{pad}- {nested[0].lstrip()}")
            lines += nested[1:]
        else:
            lines.append(f"{pad}- {_yaml_inline(item)}")
    return lines


def _yaml_inline(value) -> str:
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, (list, tuple)):
        return "[]"
    return _yaml_scalar(value)


def _card_license(metadata: dict) -> str:
    """Pick the adapter's license: explicit, else the base model's; "unknown" (a Hub license id) if neither."""
    if metadata.get("license"):
        return metadata["license"]
    base = metadata.get("base_model") or {}
    return base.get("license") or "unknown"


def _metric_number(value) -> float | None:
    """Return a metric as a float; metrics may be plain numbers or dicts with a "value" field."""
    if isinstance(value, dict):
        value = value.get("value")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _model_index_metrics(metrics: dict) -> list[dict]:
    entries = []
    for name, value in metrics.items():
        number = _metric_number(value)
        if number is None or math.isnan(number):
            continue
        entries.append({"type": name, "value": round(number, 6), "name": _title(name)})
    return entries


def _render_body(metadata: dict, baseline: dict | None, adapter_config: dict | None, repo_id: str | None) -> str:
    sections = [
        _intro_section(metadata),
        _task_section(metadata),
        _training_section(metadata, adapter_config),
        _results_section(metadata, baseline),
        _cost_section(metadata, baseline),
        _usage_section(metadata, repo_id),
        _provenance_section(metadata),
    ]
    return "\n".join(section for section in sections if section)


def _intro_section(metadata: dict) -> str:
    name = metadata.get("name", "adapter")
    kind = metadata.get("kind", "lora")
    task = metadata.get("task") or {}
    base = metadata.get("base_model") or {}
    hub_id = base_hub_id(metadata)
    base_label = f"[{hub_id}](https://huggingface.co/{hub_id})" if hub_id else f"`{base.get('name', 'unknown')}`"
    description = "A LoRA adapter" if kind == "lora" else "A fully finetuned model"
    lines = [
        f"# {_md(name)}",
        "",
        f"{description} for {_md(task.get('type', 'classification'))} on the task **{_md(task.get('name', 'unnamed'))}**, "
        f"trained on the base model {base_label} with LoRA Playground.",
        "",
    ]
    gguf_file = _gguf_source(metadata)
    if gguf_file:
        lines += [
            f"> Note: the base weights used for training were dequantized from the Q4_1 GGUF file `{gguf_file}`, "
            f"not taken from the original weights of {hub_id}. Loading this {'adapter' if kind == 'lora' else 'model'} "
            "on the original weights gives slightly different outputs than the ones measured below.",
            "",
        ]
    return "\n".join(lines)


def _gguf_source(metadata: dict) -> str | None:
    base = metadata.get("base_model") or {}
    if base.get("gguf_file"):
        return base["gguf_file"]
    return GGUF_DEQUANTIZED_BASES.get(base_hub_id(metadata) or "")


def _task_section(metadata: dict) -> str:
    task = metadata.get("task") or {}
    lines = ["## Task", ""]
    lines.append(f"- Name: {_md(task.get('name', 'unnamed'))}")
    lines.append(f"- Type: {_md(task.get('type', 'classification'))}")
    label_names = task.get("label_names") or []
    if label_names:
        labels = ", ".join(f"{index} = `{_md(label)}`" for index, label in enumerate(label_names))
        lines.append(f"- Labels ({len(label_names)}): {labels}")
    if task.get("source"):
        lines.append(f"- Data source: {_md(task['source'])}")
    if task.get("hub_dataset"):
        lines.append(f"- Hub dataset: [{task['hub_dataset']}](https://huggingface.co/datasets/{task['hub_dataset']})")
    lines.append(f"- Data license: {_md(task.get('license') or 'not specified')}")
    if metadata.get("data_fingerprint"):
        lines.append(f"- Data fingerprint (sha256 of the normalized rows): `{metadata['data_fingerprint']}`")
    lines.append("")
    return "\n".join(lines)


def _training_section(metadata: dict, adapter_config: dict | None) -> str:
    config = metadata.get("train_config") or {}
    kind = metadata.get("kind", "lora")
    lines = ["## Training setup", "", "| option | value |", "| --- | --- |"]
    lines.append(f"| method | {'LoRA' if kind == 'lora' else 'full finetune'} |")

    targets = (adapter_config or {}).get("target_modules") or config.get("target_modules")
    if kind == "lora":
        if isinstance(targets, (list, tuple, set)):
            targets = ", ".join(sorted(str(target) for target in targets))
        lines.append(f"| target modules | {_md(targets or 'per-architecture default')} |")
        modules_to_save = (adapter_config or {}).get("modules_to_save")
        if modules_to_save:
            lines.append(f"| also trained and saved | {_md(', '.join(modules_to_save))} |")

    learning_rate = config.get("learning_rate")
    if learning_rate is None and config:
        # TrainConfig picks the method default when learning_rate is None.
        learning_rate = 5e-4 if config.get("method", kind) == "lora" else 5e-5
    if learning_rate is not None:
        lines.append(f"| learning rate | {learning_rate:g} |")

    lora_only = {"rank", "alpha", "dropout", "use_rslora", "use_dora"}
    for key, label in _TRAIN_OPTIONS:
        if key not in config or config[key] is None:
            continue
        if kind != "lora" and key in lora_only:
            continue
        if kind == "lora" and key == "last_n_blocks":
            continue
        lines.append(f"| {label} | {_md(_format_value(config[key]))} |")
    lines.append("")
    return "\n".join(lines)


def _results_section(metadata: dict, baseline: dict | None) -> str:
    metrics = metadata.get("metrics") or {}
    val_metrics = metadata.get("val_metrics") or {}
    if not metrics and not val_metrics:
        return "## Results\n\nNo evaluation results were recorded.\n"

    lines = ["## Results", ""]
    if metrics:
        lines += _metrics_table("Test split", metrics, (baseline or {}).get("metrics") if baseline else None)
    if val_metrics:
        lines += _metrics_table("Validation split", val_metrics, (baseline or {}).get("val_metrics") if baseline else None)
    if baseline is not None:
        lines += _baseline_notes(metadata, baseline)
    return "\n".join(lines)


def _metrics_table(title: str, metrics: dict, baseline_metrics: dict | None) -> list[str]:
    lines = [f"### {title}", ""]
    if baseline_metrics is None:
        lines += ["| metric | value |", "| --- | --- |"]
        for name, value in metrics.items():
            lines.append(f"| {_md(name)} | {_format_metric(value)} |")
    else:
        lines += ["| metric | this model | full finetune | difference |", "| --- | --- | --- | --- |"]
        for name in list(metrics) + [name for name in baseline_metrics if name not in metrics]:
            ours = _metric_number(metrics.get(name))
            theirs = _metric_number(baseline_metrics.get(name))
            difference = f"{ours - theirs:+.4f}" if ours is not None and theirs is not None else "n/a"
            lines.append(
                f"| {_md(name)} | {_format_metric(metrics.get(name))} | "
                f"{_format_metric(baseline_metrics.get(name))} | {difference} |"
            )
    lines.append("")
    return lines


def _baseline_notes(metadata: dict, baseline: dict) -> list[str]:
    notes = [f"The full-finetune baseline is `{_md(baseline.get('name', 'unnamed'))}`."]
    ours = metadata.get("data_fingerprint")
    theirs = baseline.get("data_fingerprint")
    if ours and theirs and ours != theirs:
        notes.append("Warning: the baseline was trained and evaluated on different data (the data fingerprints differ), so the numbers are not directly comparable.")
    our_base = (metadata.get("base_model") or {}).get("fingerprint")
    their_base = (baseline.get("base_model") or {}).get("fingerprint")
    if our_base and their_base and our_base != their_base:
        notes.append("Warning: the baseline started from different base weights (the base fingerprints differ).")
    return [" ".join(notes), ""]


def _cost_section(metadata: dict, baseline: dict | None) -> str:
    cost = metadata.get("cost") or {}
    if not cost:
        return ""
    baseline_cost = (baseline or {}).get("cost") or {}
    lines = ["## Cost", ""]
    if baseline_cost:
        lines += ["| quantity | this model | full finetune |", "| --- | --- | --- |"]
        for key in list(cost) + [key for key in baseline_cost if key not in cost]:
            lines.append(f"| {_md(_title(key))} | {_md(_format_value(cost.get(key, 'n/a')))} | {_md(_format_value(baseline_cost.get(key, 'n/a')))} |")
    else:
        lines += ["| quantity | value |", "| --- | --- |"]
        for key, value in cost.items():
            lines.append(f"| {_md(_title(key))} | {_md(_format_value(value))} |")
    lines.append("")
    return "\n".join(lines)


def _usage_section(metadata: dict, repo_id: str | None) -> str:
    task = metadata.get("task") or {}
    task_type = task.get("type", "classification")
    auto_class = _AUTO_CLASSES.get(task_type, "AutoModel")
    hub_id = base_hub_id(metadata) or (metadata.get("base_model") or {}).get("name") or "path/to/base-model"
    location = repo_id or "path/to/adapter"
    label_names = task.get("label_names") or []
    architecture = (metadata.get("base_model") or {}).get("architecture")

    model_arguments = [json.dumps(hub_id)]
    if task_type == "classification":
        model_arguments.append(f"num_labels={len(label_names)}")
        if label_names:
            id2label = dict(enumerate(label_names))
            label2id = {label: index for index, label in id2label.items()}
            model_arguments += [f"id2label={id2label!r}", f"label2id={label2id!r}"]

    if metadata.get("kind", "lora") != "lora":
        code = [
            f"from transformers import {auto_class}, AutoTokenizer",
            "",
            f"tokenizer = AutoTokenizer.from_pretrained({json.dumps(location)})",
            f"model = {auto_class}.from_pretrained({json.dumps(location)})",
        ]
    else:
        code = [
            "from peft import PeftModel",
            f"from transformers import {auto_class}, AutoTokenizer",
            "",
            f"tokenizer = AutoTokenizer.from_pretrained({json.dumps(hub_id)})",
            f"base = {auto_class}.from_pretrained(",
            *[f"    {argument}," for argument in model_arguments],
            ")",
        ]
        if task_type == "classification" and architecture != "encoder":
            # Decoder models classify from the last non-padding token, so they need the pad token id.
            code.append("base.config.pad_token_id = tokenizer.pad_token_id")
        code.append(f"model = PeftModel.from_pretrained(base, {json.dumps(location)})")
        code.append("model.eval()")
    if task_type == "classification":
        code += [
            "",
            'inputs = tokenizer("an example text", return_tensors="pt")',
            "predicted = model(**inputs).logits.argmax(-1).item()",
        ]
    else:
        code += [
            "",
            'messages = [{"role": "user", "content": "Hello!"}]',
            "inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors=\"pt\", return_dict=True)",
            "output = model.generate(**inputs, max_new_tokens=64)",
            "print(tokenizer.decode(output[0][inputs[\"input_ids\"].shape[1]:], skip_special_tokens=True))",
        ]
    return "\n".join(["## How to use", "", "```python", *code, "```", ""])


def _provenance_section(metadata: dict) -> str:
    lines = []
    base = metadata.get("base_model") or {}
    if base.get("fingerprint"):
        lines.append(f"- Base weights fingerprint (sha256): `{base['fingerprint']}`")
    if metadata.get("created_at"):
        lines.append(f"- Created: {_md(metadata['created_at'])}")
    versions = metadata.get("library_versions") or {}
    if versions:
        listed = ", ".join(f"{library} {version}" for library, version in sorted(versions.items()))
        lines.append(f"- Library versions at save time: {_md(listed)}")
    provenance = metadata.get("provenance") or {}
    if provenance.get("repo_id"):
        revision = provenance.get("commit") or provenance.get("revision")
        lines.append(f"- Pulled from the Hub repo `{_md(provenance['repo_id'])}` at `{_md(revision or 'main')}`")
    if not lines:
        return ""
    return "\n".join(["## Provenance", "", *lines, ""])


def _format_metric(value) -> str:
    number = _metric_number(value)
    if number is None:
        return "n/a" if value is None else _md(str(value))
    return f"{number:.4f}"


def _format_value(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(item) for item in value)
    return str(value)


def _title(key: str) -> str:
    return str(key).replace("_", " ")


def _md(text) -> str:
    """Escape text for a Markdown table cell or line: pipes and line breaks would break the layout."""
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def without_secrets(value):
    """Return a copy of a JSON-like value without the dict keys that name a secret (token, password, ...)."""
    if isinstance(value, dict):
        return {key: without_secrets(item) for key, item in value.items() if not _SECRET_KEY_PATTERN.search(str(key))}
    if isinstance(value, list):
        return [without_secrets(item) for item in value]
    return value
