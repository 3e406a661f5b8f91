"""Export: a LoRA adapter merged into a copy of its base, saved as a plain transformers model folder."""

import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

from lora_playground.adapters import AdapterStore
from lora_playground.adapters.export import EXPORT_RECORD, export_merged
from lora_playground.errors import AdapterError, ConfigError
from lora_playground.models import get_shared_base
from lora_playground.models.fingerprint import state_dict_fingerprint
from lora_helpers import TEXTS, logits
from serving_helpers import run_extra_cli, store_classifier, store_full_classifier, store_generator


@pytest.fixture
def llama_base(tiny_llama_dir):
    return get_shared_base(tiny_llama_dir)


@pytest.fixture
def bert_base(tiny_bert_dir):
    return get_shared_base(tiny_bert_dir)


def token_logits(model, tokenizer, texts=TEXTS) -> torch.Tensor:
    inputs = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        output = model(**inputs).logits  # (texts, seq, vocab)
    return output * inputs["attention_mask"].unsqueeze(-1)


@pytest.mark.parametrize("base_fixture", ["llama_base", "bert_base"])
def test_exported_classifier_matches_adapter(base_fixture, request, tmp_path):
    base = request.getfixturevalue(base_fixture)
    store = AdapterStore()
    store_classifier(base, "to-export", seed=3)
    expected = logits(store.load("to-export", base), base.tokenizer)
    fingerprint = state_dict_fingerprint(base.model.state_dict())

    result = export_merged("to-export", tmp_path / "exported")

    assert result.auto_class == "AutoModelForSequenceClassification"
    assert result.max_abs_difference is not None and result.max_abs_difference < 1e-4
    names = {path.name for path in result.path.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer_config.json", EXPORT_RECORD} <= names
    assert not any(name.startswith("adapter_") for name in names)
    exported = AutoModelForSequenceClassification.from_pretrained(result.path, dtype=torch.float32).eval()
    assert not hasattr(exported, "peft_config")
    tokenizer = AutoTokenizer.from_pretrained(result.path)
    assert torch.allclose(logits(exported, tokenizer), expected, atol=1e-5)
    assert exported.config.id2label == {0: "ham", 1: "spam", 2: "other"}
    assert state_dict_fingerprint(base.model.state_dict()) == fingerprint
    # The adapter still predicts as before, so nothing merged into the shared tensors.
    assert torch.equal(logits(store.load("to-export", base), base.tokenizer), expected)


def test_exported_generator_matches_adapter(llama_base, tmp_path):
    store = AdapterStore()
    store_generator(llama_base, "writer", seed=4)
    expected = token_logits(store.load("writer", llama_base), llama_base.tokenizer)
    fingerprint = state_dict_fingerprint(llama_base.model.state_dict())

    result = export_merged("writer", tmp_path / "exported-writer")

    exported = AutoModelForCausalLM.from_pretrained(result.path, dtype=torch.float32).eval()
    record = json.loads((result.path / EXPORT_RECORD).read_text())
    assert record["adapter"] == "writer"
    assert record["load_with"] == "AutoModelForCausalLM"
    assert torch.allclose(token_logits(exported, llama_base.tokenizer), expected, atol=1e-4)
    base_logits = token_logits(llama_base.causal_lm_model(), llama_base.tokenizer)
    assert not torch.allclose(base_logits, expected, atol=1e-3)
    assert state_dict_fingerprint(llama_base.model.state_dict()) == fingerprint


def test_export_refuses_full_and_existing_folder(llama_base, tmp_path):
    store_full_classifier(llama_base, "full-model")
    store_classifier(llama_base, "adapter", seed=1)
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "keep.txt").write_text("mine")

    with pytest.raises(AdapterError, match="already a standard transformers folder"):
        export_merged("full-model", tmp_path / "out")
    with pytest.raises(ConfigError, match="not empty"):
        export_merged("adapter", occupied)
    assert (occupied / "keep.txt").read_text() == "mine"

    result = export_merged("adapter", occupied, force=True)
    assert not (occupied / "keep.txt").exists()
    assert (result.path / "model.safetensors").is_file()
    assert [path.name for path in tmp_path.iterdir() if path.name.startswith(".")] == []


def test_export_command(bert_base, tmp_path, capsys):
    store_classifier(bert_base, "to-export", seed=3)

    code = run_extra_cli(["export", "to-export", "--output", str(tmp_path / "cli-export")])

    output = capsys.readouterr().out
    assert code == 0
    assert f"to {tmp_path / 'cli-export'}" in output
    assert "AutoModelForSequenceClassification.from_pretrained" in output
    assert (tmp_path / "cli-export" / "model.safetensors").is_file()
