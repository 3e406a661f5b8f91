"""TrainConfig.activation_checkpointing: recomputed activations give the same training, for LoRA and full."""

import pytest

from lora_playground.cli import options
from lora_playground.models.shared_base import load_base
from lora_playground.models.registry import resolve_base
from lora_playground.training import TrainConfig
from lora_playground.training.trainer import train
from benchmarks.workloads import load_workload

ROWS = {"train": 16, "validation": 4, "test": 4}


@pytest.fixture(scope="module")
def tiny_base(tiny_llama_dir):
    return load_base(resolve_base(str(tiny_llama_dir)))


@pytest.mark.parametrize("method", ["lora", "full"])
def test_checkpointing_keeps_losses(tiny_base, method):
    task_data = load_workload(None, max_rows=ROWS, drop_splits=("validation",))
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
    parser = options.argparse.ArgumentParser()
    options.add_training_arguments(parser, with_method=True)
    assert options.train_config_from_args(parser.parse_args(["--activation-checkpointing"])).activation_checkpointing
    assert not options.train_config_from_args(parser.parse_args([])).activation_checkpointing
