"""Compatibility checks between a stored entry and a base model, run before anything is loaded."""

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from lora_playground.adapters import AdapterStore, check_compatible, raise_for_problems
from lora_playground.errors import AdapterError
from lora_playground.models import get_shared_base
from lora_helpers import logits, metadata_for, perturbed_lora_model


def _tiny_llama(folder: Path, tokenizer_dir: Path, hidden_size: int, seed: int) -> Path:
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def wider_llama_dir(tmp_path_factory, tiny_llama_dir) -> Path:
    """A Llama like the tiny one but with hidden size 48 instead of 32: LoRA shapes do not fit."""
    return _tiny_llama(tmp_path_factory.mktemp("wider-llama"), tiny_llama_dir, hidden_size=48, seed=0)


@pytest.fixture(scope="module")
def reseeded_llama_dir(tmp_path_factory, tiny_llama_dir) -> Path:
    """A Llama with the tiny one's shapes but other random weights: same shapes, other fingerprint."""
    return _tiny_llama(tmp_path_factory.mktemp("reseeded-llama"), tiny_llama_dir, hidden_size=32, seed=1)


@pytest.fixture
def llama_entry(tiny_llama_dir):
    base = get_shared_base(tiny_llama_dir)
    store = AdapterStore()
    model = perturbed_lora_model(base)
    store.save_lora("llama-lora", model, metadata_for(base))
    return store, model


def _errors(problems):
    return [problem.message for problem in problems if problem.severity == "error"]


def _warnings(problems):
    return [problem.message for problem in problems if problem.severity == "warning"]


def test_same_base_has_no_problems(llama_entry, tiny_llama_dir):
    store, _ = llama_entry
    assert check_compatible(store.path("llama-lora"), get_shared_base(tiny_llama_dir)) == []


def test_other_base_shapes_named(llama_entry, wider_llama_dir):
    store, _ = llama_entry
    wider = get_shared_base(wider_llama_dir)
    errors = _errors(check_compatible(store.path("llama-lora"), wider))
    q_proj_a = next(message for message in errors if "layers.0.self_attn.q_proj: lora_A" in message)
    assert "(4, 32)" in q_proj_a
    assert "(48 -> 48)" in q_proj_a
    assert "(rank, 48)" in q_proj_a
    assert any("tensor score.weight has shape (3, 32)" in message and "(3, 48)" in message for message in errors)
    assert any("made for base" in message for message in errors)


def test_load_on_other_base_rejected(llama_entry, wider_llama_dir):
    store, _ = llama_entry
    wider = get_shared_base(wider_llama_dir)
    with pytest.raises(AdapterError) as caught:
        store.load("llama-lora", wider)
    message = str(caught.value)
    assert "'llama-lora'" in message
    assert "q_proj" in message
    assert "(4, 32)" in message
    assert "more" in message
    assert "base model it was trained on" in message


def test_same_shapes_other_weights_warns(llama_entry, reseeded_llama_dir, tiny_llama_dir):
    store, model = llama_entry
    reseeded = get_shared_base(reseeded_llama_dir)
    assert reseeded.fingerprint != get_shared_base(tiny_llama_dir).fingerprint

    problems = check_compatible(store.path("llama-lora"), reseeded)
    assert _errors(problems) == []
    assert len(_warnings(problems)) == 1
    assert "shapes fit" in _warnings(problems)[0]

    loaded = store.load("llama-lora", reseeded)
    assert not torch.equal(logits(loaded, reseeded.tokenizer), logits(model, reseeded.tokenizer))


def test_encoder_adapter_on_decoder_rejected(tiny_bert_dir, tiny_llama_dir):
    bert = get_shared_base(tiny_bert_dir)
    llama = get_shared_base(tiny_llama_dir)
    problems = check_compatible(metadata_for(bert), llama)
    errors = _errors(problems)
    assert any("encoder" in message and "decoder" in message for message in errors)
    assert any("bert" in message and "llama" in message for message in errors)


def test_generation_on_encoder_rejected(tiny_bert_dir):
    bert = get_shared_base(tiny_bert_dir)
    errors = _errors(check_compatible(metadata_for(bert, task_type="generation"), bert))
    assert errors == ["generation needs a decoder base such as smollm2-135m"]


def test_metadata_only_fingerprint_warning(reseeded_llama_dir, tiny_llama_dir):
    metadata = metadata_for(get_shared_base(tiny_llama_dir))
    problems = check_compatible(metadata.to_dict(), get_shared_base(reseeded_llama_dir))
    assert _errors(problems) == []
    assert "shapes not checked" in _warnings(problems)[0]


def test_folder_without_metadata_checks_shapes(llama_entry, wider_llama_dir, tiny_llama_dir):
    store, _ = llama_entry
    folder = store.path("llama-lora")
    (folder / "metadata.json").unlink()

    same = check_compatible(folder, get_shared_base(tiny_llama_dir))
    assert _errors(same) == []
    assert "no metadata.json" in _warnings(same)[0]

    other = _errors(check_compatible(folder, get_shared_base(wider_llama_dir)))
    assert any("q_proj: lora_A has shape (4, 32)" in message for message in other)


def test_unknown_module_named(llama_entry, tiny_llama_dir):
    store, _ = llama_entry
    folder = store.path("llama-lora")
    from safetensors.torch import load_file, save_file

    tensors = load_file(folder / "adapter_model.safetensors")
    tensors["base_model.model.model.layers.7.self_attn.q_proj.lora_A.weight"] = torch.zeros(4, 32)
    save_file(tensors, folder / "adapter_model.safetensors")
    errors = _errors(check_compatible(folder, get_shared_base(tiny_llama_dir)))
    assert errors == ["module model.layers.7.self_attn.q_proj (adapted by lora_A) does not exist in the base model"]


def test_non_lora_adapter_not_shape_checked(llama_entry, tiny_llama_dir):
    store, _ = llama_entry
    config_path = store.path("llama-lora") / "adapter_config.json"
    config = json.loads(config_path.read_text())
    config["peft_type"] = "IA3"
    config_path.write_text(json.dumps(config))
    problems = check_compatible(store.path("llama-lora"), get_shared_base(tiny_llama_dir))
    assert _errors(problems) == []
    assert "'IA3' was not checked" in _warnings(problems)[0]


def test_full_entry_vocabulary_checked(tiny_bert_dir, tmp_path):
    from transformers import BertConfig, BertModel

    bert = get_shared_base(tiny_bert_dir)
    store = AdapterStore()
    store.save_full("bert-full", bert.full_copy("classification", 3), bert.tokenizer, metadata_for(bert, kind="full"))
    assert check_compatible(store.path("bert-full"), bert) == []

    # An encoder whose embedding table has 8 more rows than the tiny BERT's tokenizer.
    config = BertConfig(
        vocab_size=bert.config.vocab_size + 8, hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=64
    )
    BertModel(config).save_pretrained(tmp_path / "bigger-vocab")
    bert.tokenizer.save_pretrained(tmp_path / "bigger-vocab")
    errors = _errors(check_compatible(store.path("bert-full"), get_shared_base(tmp_path / "bigger-vocab")))
    assert any(f"its vocabulary has {bert.config.vocab_size} tokens" in message for message in errors)


def test_raise_for_problems_lists_errors():
    from lora_playground.adapters import CompatibilityProblem

    problems = [CompatibilityProblem("warning", "just a note")] + [
        CompatibilityProblem("error", f"problem {index}") for index in range(6)
    ]
    with pytest.raises(AdapterError) as caught:
        raise_for_problems(problems, "adapter 'x'", "tiny")
    message = str(caught.value)
    assert "problem 0; problem 1; problem 2; problem 3; and 2 more" in message
    assert "just a note" not in message
    raise_for_problems(problems[:1], "adapter 'x'")
