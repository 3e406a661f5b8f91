"""Full-finetune baseline setup: every weight trains, or only the last N transformer blocks and the head."""

import logging

from torch import nn
from transformers import PreTrainedModel

from lora_playground.errors import ConfigError
from lora_playground.training.config import TrainConfig

logger = logging.getLogger(__name__)


def find_transformer_blocks(model: nn.Module) -> tuple[str, nn.ModuleList]:
    """Return the qualified name and the module list of the model's transformer blocks.

    The blocks are taken to be the `nn.ModuleList` holding the most parameters (`model.layers` in Llama,
    `bert.encoder.layer` in BERT), which holds for the decoder and encoder families the playground loads.
    """
    best_name, best_list, best_size = None, None, 0
    for name, module in model.named_modules():
        if not isinstance(module, nn.ModuleList) or len(module) == 0:
            continue
        size = sum(parameter.numel() for parameter in module.parameters())
        if size > best_size:
            best_name, best_list, best_size = name, module, size
    if best_list is None:
        raise ConfigError(
            f"No transformer blocks (an nn.ModuleList of layers) found in {type(model).__name__}.",
            "Train all weights by leaving last_n_blocks unset.",
        )
    return best_name, best_list


def prepare_full_finetune(model: PreTrainedModel, config: TrainConfig) -> PreTrainedModel:
    """Set which weights of `model` train for the full-finetune baseline, in place, and return it.

    `config.last_n_blocks=None` trains every parameter. Otherwise the embeddings and all blocks before
    the last N are frozen, and everything registered after the blocks trains as well (final norm,
    BERT's pooler, the classification head). A language-model head tied to the input embedding stays
    frozen with it, because both are one tensor.
    """
    if config.last_n_blocks is None:
        for parameter in model.parameters():
            parameter.requires_grad = True
        logger.info("Full finetune: all %d parameters trainable", sum(p.numel() for p in model.parameters()))
        return model

    blocks_name, blocks = find_transformer_blocks(model)
    if config.last_n_blocks > len(blocks):
        raise ConfigError(
            f"last_n_blocks={config.last_n_blocks} exceeds the {len(blocks)} transformer blocks of the model.",
            f"Use a value from 1 to {len(blocks)}, or leave it unset to train every block.",
        )
    first_trained = len(blocks) - config.last_n_blocks
    trained_prefixes = tuple(f"{blocks_name}.{index}." for index in range(first_trained, len(blocks)))
    blocks_prefix = f"{blocks_name}."

    # named_parameters follows registration order: embeddings, then blocks, then what comes after them.
    seen_blocks = False
    for name, parameter in model.named_parameters():
        if name.startswith(blocks_prefix):
            seen_blocks = True
            parameter.requires_grad = name.startswith(trained_prefixes)
        else:
            parameter.requires_grad = seen_blocks

    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    logger.info(
        "Full finetune of the last %d of %d blocks (%s) and the layers after them: %d parameters trainable",
        config.last_n_blocks,
        len(blocks),
        blocks_name,
        trainable,
    )
    return model
