"""Training options that trade speed or memory: activation checkpointing and LoRA on the last blocks only."""

import pytest

from lora_playground.adapters.store import AdapterStore
from lora_playground.cli import options
from lora_playground.errors import ConfigError
from lora_playground.evaluation import predict_classification
from lora_playground.models import get_shared_base
from lora_playground.models.registry import resolve_base
from lora_playground.models.shared_base import load_base
from lora_playground.pipeline import train_and_store
from lora_playground.training import TrainConfig
from lora_playground.training.trainer import train
from benchmarks.workloads import load_workload

ROWS = {"train": 16, "validation": 4, "test": 4}


@pytest.fixture(scope="module")
def tiny_base(tiny_llama_dir):
    return load_base(resolve_base(str(tiny_llama_dir)))


@pytest.fixture(scope="module")
def task_data():
    return load_workload(None, max_rows=ROWS, drop_splits=("validation",))


def cli_config(*arguments: str) -> TrainConfig:
    parser = options.argparse.ArgumentParser()
    options.add_training_arguments(parser, with_method=True)
    return options.train_config_from_args(parser.parse_args(list(arguments)))


@pytest.mark.parametrize("method", ["lora", "full"])
def test_checkpointing_keeps_losses(tiny_base, task_data, method):
    losses = {}
    for checkpointing in (False, True):
        config = TrainConfig(method=method, max_steps=3, batch_size=4, activation_checkpointing=checkpointing)
        run = train(tiny_base, task_data, config)
        losses[checkpointing] = [entry["loss"] for entry in run.history if "loss" in entry]
        body = run.model.get_base_model() if method == "lora" else run.model
        assert body.is_activation_checkpointing is checkpointing
    assert len(losses[True]) == 3
    assert losses[True] == pytest.approx(losses[False], rel=1e-5)


def test_cli_flag_sets_checkpointing():
    assert cli_config("--activation-checkpointing").activation_checkpointing
    assert not cli_config().activation_checkpointing


def test_lora_last_blocks_adapts_only_them(tiny_base, task_data):
    run = train(tiny_base, task_data, TrainConfig(max_steps=2, batch_size=4, lora_last_n_blocks=1))
    adapted = sorted(name for name, _ in run.model.named_modules() if name.endswith(".lora_A"))
    assert adapted == [
        "base_model.model.model.layers.1.self_attn.q_proj.lora_A",
        "base_model.model.model.layers.1.self_attn.v_proj.lora_A",
    ]
    every_block = train(tiny_base, task_data, TrainConfig(max_steps=2, batch_size=4))
    assert run.cost.trainable_params < every_block.cost.trainable_params


def test_lora_last_blocks_reload_same_predictions(tiny_llama_dir, task_data):
    config = TrainConfig(max_steps=2, batch_size=4, lora_last_n_blocks=1)
    stored = train_and_store(str(tiny_llama_dir), task_data, config, "last-block")
    shared = get_shared_base(str(tiny_llama_dir))
    reloaded = AdapterStore().load("last-block", shared)

    texts = list(task_data.splits["test"]["text"])
    expected = predict_classification(stored.trained.model, shared.tokenizer, texts).probabilities
    actual = predict_classification(reloaded, shared.tokenizer, texts).probabilities
    assert actual == pytest.approx(expected, abs=1e-6)


def test_lora_last_blocks_rejects_too_many(tiny_base, task_data):
    with pytest.raises(ConfigError, match="lora_last_n_blocks=3 exceeds the 2 transformer blocks"):
        train(tiny_base, task_data, TrainConfig(max_steps=1, lora_last_n_blocks=3))


def test_lora_last_blocks_rejected_for_full():
    with pytest.raises(ConfigError, match="apply to method='lora' only"):
        TrainConfig(method="full", lora_last_n_blocks=1).validate()


def test_cli_lora_last_blocks_only_for_lora():
    assert cli_config("--lora-last-n-blocks", "4").lora_last_n_blocks == 4
    assert cli_config("--method", "full", "--lora-last-n-blocks", "4").lora_last_n_blocks is None
