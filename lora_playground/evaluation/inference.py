"""Shared setup for running a model without gradients: eval mode, inference mode, and its device."""

from collections.abc import Iterator
from contextlib import contextmanager

import torch


def model_device(model: torch.nn.Module) -> torch.device:
    """Return the device of the model's first parameter, where inputs must be placed."""
    return next(model.parameters()).device


@contextmanager
def evaluation_mode(model: torch.nn.Module) -> Iterator[None]:
    """Run the block with the model in eval mode under `torch.inference_mode`, then restore its train/eval mode."""
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        model.train(was_training)
