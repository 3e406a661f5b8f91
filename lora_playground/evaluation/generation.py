"""Responses of a causal language model to chat prompts, their overlap scores, and reply perplexity."""

import logging
import math
import time
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from transformers import GenerationConfig, PreTrainedModel, PreTrainedTokenizerBase

from lora_playground.errors import ConfigError, DataError, ModelError
from lora_playground.evaluation.inference import evaluation_mode, model_device
from lora_playground.evaluation.metrics import compute_metric
from lora_playground.evaluation.prompting import IGNORE_INDEX, encode_chat, render_prompt

logger = logging.getLogger(__name__)


def _require_pad_token(tokenizer: PreTrainedTokenizerBase) -> int:
    if tokenizer.pad_token_id is None:
        raise ModelError(
            f"The tokenizer of {tokenizer.name_or_path!r} has no pad token, so batches cannot be padded.",
            "Set tokenizer.pad_token (for decoder models usually to the EOS token).",
        )
    return tokenizer.pad_token_id


def _stop_token_ids(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> list[int]:
    # Chat models often end a turn with a token other than the tokenizer's EOS (listed in the
    # generation config), so generation stops at any of them.
    configured = getattr(model, "generation_config", None)
    configured_ids = configured.eos_token_id if configured is not None else None
    if isinstance(configured_ids, int):
        configured_ids = [configured_ids]
    stop_ids = list(configured_ids or [])
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in stop_ids:
        stop_ids.append(tokenizer.eos_token_id)
    return stop_ids


def _generation_config(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, max_new_tokens: int, temperature: float, top_p: float
) -> GenerationConfig:
    options = {
        "max_new_tokens": max_new_tokens,
        "pad_token_id": tokenizer.pad_token_id,
        "eos_token_id": _stop_token_ids(model, tokenizer),
    }
    if temperature == 0.0:
        options.update(do_sample=False, num_beams=1)
    else:
        # top_k=0 switches top-k filtering off, so temperature and top-p alone define the sampling.
        options.update(do_sample=True, temperature=temperature, top_p=top_p, top_k=0)
    return GenerationConfig(**options)


def _rng_devices(device: torch.device) -> list[int]:
    return [device.index or 0] if device.type == "cuda" else []


def generate_responses(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts_messages: Sequence[Sequence[dict]],
    *,
    max_new_tokens: int = 64,
    temperature: float = 0.0,
    top_p: float = 1.0,
    seed: int = 0,
    batch_size: int = 8,
    max_prompt_length: int | None = None,
) -> list[str]:
    """Generate one reply per chat prompt and return the decoded replies (special tokens removed, stripped).

    Each prompt is a list of messages without the reply, rendered by `prompting.render_prompt`
    (chat template or the plain format). `temperature == 0` decodes greedily; a positive temperature
    samples with temperature and top-p (top-k off). Sampling draws from torch's generator seeded with
    `seed` inside a forked random state, so the same prompts, order, batch size and seed give the same
    replies and the caller's random state is left as it was. Prompts are left-padded per batch so every
    reply starts at the same position. With `max_prompt_length`, longer prompts keep their last
    `max_prompt_length` tokens (logged with a count). The model's train/eval mode is restored afterwards.
    """
    if max_new_tokens < 1:
        raise ConfigError(f"max_new_tokens={max_new_tokens} must be at least 1.")
    if temperature < 0.0:
        raise ConfigError(
            f"temperature={temperature} is negative.", "Use 0 for greedy decoding or a positive value to sample."
        )
    if not 0.0 < top_p <= 1.0:
        raise ConfigError(f"top_p={top_p} is not in (0, 1].", "Use 1.0 to keep the whole distribution.")
    if batch_size < 1:
        raise ConfigError(f"batch_size={batch_size} must be at least 1.")
    if max_prompt_length is not None and max_prompt_length < 1:
        raise ConfigError(f"max_prompt_length={max_prompt_length} must be at least 1 token or None.")
    _require_pad_token(tokenizer)

    prompt_ids = [
        tokenizer(render_prompt(tokenizer, messages), add_special_tokens=False)["input_ids"]
        for messages in prompts_messages
    ]
    if max_prompt_length is not None:
        too_long = sum(len(ids) > max_prompt_length for ids in prompt_ids)
        if too_long:
            logger.warning("Kept the last %d tokens of %d prompts that were longer", max_prompt_length, too_long)
        prompt_ids = [ids[-max_prompt_length:] for ids in prompt_ids]

    config = _generation_config(model, tokenizer, max_new_tokens, temperature, top_p)
    device = model_device(model)
    replies: list[str] = []
    started = time.perf_counter()
    with torch.random.fork_rng(devices=_rng_devices(device)), evaluation_mode(model):
        torch.manual_seed(seed)
        for start in range(0, len(prompt_ids), batch_size):
            batch = tokenizer.pad(
                {"input_ids": prompt_ids[start : start + batch_size]}, padding_side="left", return_tensors="pt"
            ).to(device)
            output = model.generate(**batch, generation_config=config)  # (batch, prompt + new tokens)
            new_tokens = output[:, batch["input_ids"].shape[1] :]
            replies.extend(text.strip() for text in tokenizer.batch_decode(new_tokens, skip_special_tokens=True))
    logger.info("Generated %d replies in %.2f s", len(replies), time.perf_counter() - started)
    return replies


def generation_metrics(predictions: Sequence[str], references: Sequence[str]) -> dict:
    """Score generated replies against references with the local `evaluate` modules.

    Returns `rouge_l` (LCS F-measure), `exact_match` and `token_f1` (SQuAD-style normalization), each the
    mean over examples from 0.0 to 1.0, and `n` (examples scored).
    """
    if len(predictions) != len(references):
        raise DataError(f"Got {len(predictions)} generated replies for {len(references)} references.")
    if len(references) == 0:
        raise DataError("There are no examples to score.", "Check that the evaluation split is not empty.")
    predicted = list(predictions)
    expected = list(references)
    return {
        "rouge_l": compute_metric("rouge_l", predicted, expected)["rouge_l"],
        "exact_match": compute_metric("exact_match", predicted, expected)["exact_match"],
        "token_f1": compute_metric("token_f1", predicted, expected)["token_f1"],
        "n": len(expected),
    }


def _right_pad(rows: list[list[int]], value: int) -> torch.Tensor:
    width = max(len(row) for row in rows)
    return torch.tensor([row + [value] * (width - len(row)) for row in rows], dtype=torch.long)


def response_perplexity(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    messages_list: Sequence[Sequence[dict]],
    max_length: int = 512,
    *,
    batch_size: int = 8,
) -> float:
    """Return the perplexity of the reference replies: exp(mean negative log-likelihood per reply token).

    Each chat ends with the assistant reply. Only reply tokens are scored (prompt tokens are context
    and carry the ignore label), and the mean is over all reply tokens of all chats. Chats longer than
    `max_length` tokens lose their end; chats whose prompt alone fills `max_length` have no reply
    token left and are skipped with a warning. Memory grows with batch_size * length * vocabulary size
    because the full logits are materialized.
    """
    if batch_size < 1:
        raise ConfigError(f"batch_size={batch_size} must be at least 1.")
    pad_token_id = _require_pad_token(tokenizer)
    encoded = [encode_chat(tokenizer, messages, max_length) for messages in messages_list]
    usable = [chat for chat in encoded if chat.reply_token_count > 0]
    if len(usable) < len(encoded):
        logger.warning(
            "Skipped %d of %d chats whose prompt fills max_length=%d tokens",
            len(encoded) - len(usable),
            len(encoded),
            max_length,
        )
    truncated = sum(chat.truncated for chat in usable)
    if truncated:
        logger.warning("Cut %d chats to max_length=%d tokens before scoring their replies", truncated, max_length)
    if not usable:
        raise DataError(
            f"No chat has a reply token within max_length={max_length} tokens, so there is nothing to score.",
            "Raise max_length or shorten the prompts.",
        )

    device = model_device(model)
    total_nll = 0.0
    total_tokens = 0
    with evaluation_mode(model):
        for start in range(0, len(usable), batch_size):
            batch = usable[start : start + batch_size]
            input_ids = _right_pad([chat.input_ids for chat in batch], pad_token_id).to(device)
            labels = _right_pad([chat.labels for chat in batch], IGNORE_INDEX).to(device)
            attention_mask = _right_pad([[1] * len(chat.input_ids) for chat in batch], 0).to(device)

            logits = model(input_ids=input_ids, attention_mask=attention_mask).logits  # (batch, seq, vocab)
            # Position t predicts token t + 1, so logits drop the last position and labels the first.
            shifted_logits = logits[:, :-1, :].float()
            shifted_labels = labels[:, 1:]
            total_nll += F.cross_entropy(
                shifted_logits.reshape(-1, shifted_logits.shape[-1]),
                shifted_labels.reshape(-1),
                ignore_index=IGNORE_INDEX,
                reduction="sum",
            ).item()
            total_tokens += int((shifted_labels != IGNORE_INDEX).sum())
    if total_tokens == 0:
        raise DataError("No reply token could be scored: each reply starts at the first position of its chat.")
    return math.exp(total_nll / total_tokens)
