"""Model cards: Hub YAML metadata, baseline comparison, loading snippet, and no secrets."""

import ast
import copy
import json

import pytest
import torch
import yaml
from huggingface_hub import ModelCard
from hypothesis import given, settings
from hypothesis import strategies as st

from lora_playground.adapters import card as card_module
from lora_playground.adapters.card import card_front_matter, emit_yaml, render_model_card

TOKEN = "hf_" + "Q7x" * 12


def _metadata(**changes) -> dict:
    metadata = {
        "schema_version": 1,
        "name": "sms-spam-lora",
        "kind": "lora",
        "task": {
            "name": "sms-spam",
            "type": "classification",
            "label_names": ["ham", "spam"],
            "source": "sms_spam.csv",
            "license": "cc-by-4.0",
            "hub_dataset": "ucirvine/sms_spam",
        },
        "base_model": {
            "name": "smollm2-135m",
            "hub_id": "HuggingFaceTB/SmolLM2-135M-Instruct",
            "fingerprint": "ab" * 32,
            "architecture": "decoder",
            "model_type": "llama",
        },
        "train_config": {"method": "lora", "rank": 8, "alpha": 16.0, "dropout": 0.05, "target_modules": None, "epochs": 3.0, "learning_rate": None, "batch_size": 16},
        "metrics": {"accuracy": 0.9512, "macro_f1": 0.9011},
        "val_metrics": {"accuracy": 0.94},
        "cost": {"trainable_parameters": 12345, "train_seconds": 61.5, "tokens_per_second": 812.0},
        "data_fingerprint": "cd" * 32,
        "created_at": "2026-12-04T10:00:00+00:00",
        "provenance": {"source": "local"},
    }
    for key, value in changes.items():
        metadata[key] = value
    return metadata


def _front_matter(text: str) -> dict:
    assert text.startswith("---\n")
    end = text.index("\n---\n", 4)
    return yaml.safe_load(text[4:end])


def test_front_matter_has_hub_fields():
    text = render_model_card(_metadata())
    data = _front_matter(text)

    assert data["base_model"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert data["library_name"] == "peft"
    assert data["license"] == "unknown"
    assert data["datasets"] == ["ucirvine/sms_spam"]
    assert data["pipeline_tag"] == "text-classification"
    for tag in ("lora", "peft", "text-classification", "lora-playground"):
        assert tag in data["tags"]
    result = data["model-index"][0]["results"][0]
    assert data["model-index"][0]["name"] == "sms-spam-lora"
    assert result["task"]["type"] == "text-classification"
    assert result["dataset"]["name"] == "sms-spam"
    assert result["dataset"]["type"] == "ucirvine/sms_spam"
    assert {metric["type"]: metric["value"] for metric in result["metrics"]} == {"accuracy": 0.9512, "macro_f1": 0.9011}


def test_front_matter_parses_as_hub_card():
    parsed = ModelCard(render_model_card(_metadata()), ignore_metadata_errors=False)

    assert parsed.data.base_model == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert parsed.data.library_name == "peft"
    results = {result.metric_type: result.metric_value for result in parsed.data.eval_results}
    assert results == {"accuracy": 0.9512, "macro_f1": 0.9011}
    assert parsed.data.eval_results[0].dataset_type == "ucirvine/sms_spam"


def test_license_from_base_model():
    metadata = _metadata()
    metadata["base_model"]["license"] = "apache-2.0"

    assert _front_matter(render_model_card(metadata))["license"] == "apache-2.0"


def test_card_without_hub_dataset_or_metrics():
    metadata = _metadata(metrics={}, val_metrics={})
    metadata["task"]["hub_dataset"] = None
    text = render_model_card(metadata)
    data = _front_matter(text)

    assert "datasets" not in data
    assert "model-index" not in data
    assert "No evaluation results were recorded." in text


def test_smollm_card_mentions_gguf_dequantization():
    text = render_model_card(_metadata())

    assert "dequantized from the Q4_1 GGUF file `SmolLM2-135M-Instruct.Q4_1.gguf`" in text


def test_minilm_card_has_no_gguf_note():
    metadata = _metadata()
    metadata["base_model"] = {
        "name": "minilm-l6",
        "hub_id": "sentence-transformers/all-MiniLM-L6-v2",
        "fingerprint": "ef" * 32,
        "architecture": "encoder",
    }
    text = render_model_card(metadata)

    assert "GGUF" not in text
    assert _front_matter(text)["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    # Encoders classify from the first token, so the decoder-only pad token line is left out.
    assert "pad_token_id" not in text


def test_text_lists_task_labels_and_training_setup():
    text = render_model_card(_metadata(), adapter_config={"target_modules": ["v_proj", "q_proj"], "modules_to_save": ["score"]})

    assert "Labels (2): 0 = `ham`, 1 = `spam`" in text
    assert "| target modules | q_proj, v_proj |" in text
    assert "| also trained and saved | score |" in text
    assert "| LoRA rank r | 8 |" in text
    assert "| LoRA alpha | 16 |" in text
    assert "| epochs | 3 |" in text
    # learning_rate None means the LoRA default of TrainConfig.
    assert "| learning rate | 0.0005 |" in text
    assert "| trainable parameters | 12345 |" in text


def test_metrics_next_to_baseline():
    baseline = _metadata(
        name="sms-spam-full",
        kind="full",
        metrics={"accuracy": 0.9612, "macro_f1": 0.9211},
        cost={"trainable_parameters": 134515008, "train_seconds": 250.0},
    )
    text = render_model_card(_metadata(), baseline)

    assert "| metric | this model | full finetune | difference |" in text
    assert "| accuracy | 0.9512 | 0.9612 | -0.0100 |" in text
    assert "| macro_f1 | 0.9011 | 0.9211 | -0.0200 |" in text
    assert "| trainable parameters | 12345 | 134515008 |" in text
    assert "The full-finetune baseline is `sms-spam-full`." in text
    assert "different data" not in text


def test_baseline_on_other_data_is_flagged():
    baseline = _metadata(name="other-full", kind="full", data_fingerprint="00" * 32)

    assert "trained and evaluated on different data" in render_model_card(_metadata(), baseline)


def test_no_token_in_card():
    metadata = _metadata()
    metadata["train_config"]["extra"] = {"hub_token": TOKEN, "note": f"pushed with {TOKEN}"}
    metadata["task"]["source"] = f"https://example.org/data?token={TOKEN}"
    metadata["hf_token"] = TOKEN
    text = render_model_card(metadata, copy.deepcopy(metadata))

    assert TOKEN not in text
    assert "hub_token" not in text


def test_provenance_lists_library_versions():
    text = render_model_card(_metadata(library_versions={"peft": "0.21.2", "torch": "2.13.0"}))

    assert "- Library versions at save time: peft 0.21.2, torch 2.13.0" in text


def test_secret_filter_keeps_token_counts():
    metadata = _metadata(cost={"tokens_per_second": 812.0, "train_tokens": 51200})
    text = render_model_card(metadata)

    assert "| tokens per second | 812 |" in text
    assert "| train tokens | 51200 |" in text


def test_table_cells_escape_pipes():
    metadata = _metadata()
    metadata["task"]["label_names"] = ["yes|no", "line\nbreak"]
    text = render_model_card(metadata)
    label_line = next(line for line in text.splitlines() if line.startswith("- Labels"))

    assert "yes\\|no" in label_line
    assert "line break" in label_line


def test_generation_card_uses_causal_lm():
    metadata = _metadata()
    metadata["task"] = {"name": "chitchat", "type": "generation", "label_names": [], "source": "chatterbot"}
    text = render_model_card(metadata, repo_id="alice/chitchat-lora")
    data = _front_matter(text)

    assert "text-generation" in data["tags"]
    assert data["pipeline_tag"] == "text-generation"
    assert "AutoModelForCausalLM" in text
    assert "num_labels" not in text
    assert 'PeftModel.from_pretrained(base, "alice/chitchat-lora")' in text


def test_full_checkpoint_card():
    text = render_model_card(_metadata(kind="full", name="sms-spam-full"), repo_id="alice/sms-spam-full")
    data = _front_matter(text)

    assert data["library_name"] == "transformers"
    assert "full-finetune" in data["tags"]
    assert "PeftModel" not in text
    assert 'AutoModelForSequenceClassification.from_pretrained("alice/sms-spam-full")' in text


def _usage_code(text: str) -> str:
    section = text[text.index("## How to use"):]
    start = section.index("```python\n") + len("```python\n")
    return section[start:section.index("```", start)]


def test_usage_snippet_is_valid_python():
    code = _usage_code(render_model_card(_metadata(), repo_id="alice/sms-spam-lora"))
    tree = ast.parse(code)
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "from_pretrained"]
    base_call = next(call for call in calls if call.func.value.id == "AutoModelForSequenceClassification")
    keywords = {keyword.arg: ast.literal_eval(keyword.value) for keyword in base_call.keywords}

    assert keywords["num_labels"] == 2
    assert keywords["id2label"] == {0: "ham", 1: "spam"}
    assert ast.literal_eval(base_call.args[0]) == "HuggingFaceTB/SmolLM2-135M-Instruct"


def test_usage_snippet_loads_adapter(tiny_llama_dir, tmp_path):
    """Run the card's snippet against a real PEFT folder and tiny base, both on disk."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    torch.manual_seed(1)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_llama_dir, num_labels=2)
    model.config.pad_token_id = tokenizer.pad_token_id
    peft_model = get_peft_model(model, LoraConfig(task_type="SEQ_CLS", r=4, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():
        for name, parameter in peft_model.named_parameters():
            if "lora_B" in name:
                parameter.normal_()
    adapter_folder = tmp_path / "adapter"
    peft_model.save_pretrained(adapter_folder)
    inputs = tokenizer("an example text", return_tensors="pt")
    with torch.no_grad():
        expected = peft_model.eval()(**inputs).logits.argmax(-1).item()

    metadata = _metadata()
    metadata["base_model"]["hub_id"] = str(tiny_llama_dir)
    code = _usage_code(render_model_card(metadata, repo_id=str(adapter_folder)))
    namespace: dict = {}
    exec(compile(code, "model-card-snippet", "exec"), namespace)  # noqa: S102 - our own generated snippet

    assert namespace["predicted"] == expected
    assert namespace["model"].config.id2label == {0: "ham", 1: "spam"}


def test_fallback_yaml_matches_pyyaml(monkeypatch):
    metadata = _metadata()
    metadata["task"]["name"] = 'quotes " and: colons # and \\ backslashes'
    with_pyyaml = render_model_card(metadata)
    monkeypatch.setattr(card_module, "yaml", None)
    without_pyyaml = render_model_card(metadata)

    assert without_pyyaml != with_pyyaml
    assert _front_matter(without_pyyaml) == _front_matter(with_pyyaml) == card_front_matter(metadata)
    assert without_pyyaml.split("\n---\n", 1)[1] == with_pyyaml.split("\n---\n", 1)[1]


_yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(min_size=1), children, max_size=3),
    max_leaves=10,
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(min_size=1), _yaml_values, max_size=5))
def test_fallback_yaml_round_trips(data):
    assert yaml.safe_load(emit_yaml(data) or "{}") == data


@pytest.mark.parametrize("text", ["\u2028", "\x85", "\x7f", "\ufeff", "null", "- item", "a: b", "#", "\t", "\U0001f600"])
def test_fallback_yaml_special_strings(text):
    data = {"value": text, text: [text]}

    assert yaml.safe_load(emit_yaml(data)) == data
    assert json.loads(json.dumps(data)) == data
