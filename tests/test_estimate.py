"""The LoRA footprint estimate equals what a real adapter on the shared base trains and stores."""

import pytest
import torch
from peft import get_peft_model_state_dict

from lora_playground.errors import ConfigError, ModelError
from lora_playground.models import get_shared_base
from lora_playground.training.config import TrainConfig
from lora_playground.training.cost import count_parameters
from lora_playground.training.estimate import estimate_lora
from lora_playground.training.lora import apply_lora

CASES = [
    ("classification", TrainConfig(rank=4)),
    ("classification", TrainConfig(rank=8, target_modules="all-linear")),
    ("classification", TrainConfig(rank=2, use_dora=True, target_modules=["q_proj", "k_proj"])),
    ("generation", TrainConfig(rank=16)),
]


@pytest.mark.parametrize(("task_type", "config"), CASES)
def test_estimate_matches_real_adapter(tiny_llama_dir, tmp_path, task_type, config):
    base = get_shared_base(tiny_llama_dir)
    estimate = estimate_lora(base, config, task_type, num_labels=3)

    torch.manual_seed(0)
    model = base.classification_model(3) if task_type == "classification" else base.causal_lm_model()
    peft_model = apply_lora(model, config, task_type)
    trainable, total = count_parameters(peft_model)
    state = get_peft_model_state_dict(peft_model)
    stored = sum(tensor.numel() * tensor.element_size() for tensor in state.values())

    assert estimate.trainable_params == trainable
    assert estimate.total_params == total
    assert estimate.adapter_bytes == stored
    assert estimate.trainable_fraction == pytest.approx(trainable / total)

    peft_model.save_pretrained(tmp_path)
    file_size = (tmp_path / "adapter_model.safetensors").stat().st_size
    assert 0 < file_size - estimate.adapter_bytes < 64 * 1024


def test_estimate_counts_rank_linearly(tiny_bert_dir):
    base = get_shared_base(tiny_bert_dir)
    head = estimate_lora(base, TrainConfig(rank=1), num_labels=2)
    double = estimate_lora(base, TrainConfig(rank=2), num_labels=2)
    # BERT default targets are query and value (32 x 32): 2 layers x 2 modules x (32 + 32) per unit of rank.
    assert double.trainable_params - head.trainable_params == 2 * 2 * (32 + 32)
    assert head.adapted_layers == 4
    assert head.target_modules == ["query", "value"]
    assert head.base_params < head.total_params


def test_estimate_rejects_full_method(tiny_bert_dir):
    base = get_shared_base(tiny_bert_dir)
    with pytest.raises(ConfigError, match="method='full'"):
        estimate_lora(base, TrainConfig(method="full"))


def test_estimate_rejects_generation_on_encoder(tiny_bert_dir):
    base = get_shared_base(tiny_bert_dir)
    with pytest.raises(ModelError, match="encoder"):
        estimate_lora(base, TrainConfig(), "generation")


def test_estimate_rejects_unknown_target(tiny_llama_dir):
    base = get_shared_base(tiny_llama_dir)
    with pytest.raises(ModelError, match="no_such_proj"):
        estimate_lora(base, TrainConfig(target_modules=["no_such_proj"]))
