"""Tokenize a task's splits once per run, without padding, and optionally pack short chats together.

Rows keep their own length, so the collators pad each batch only to its longest row. Classification
rows carry `input_ids`, `attention_mask` (and `token_type_ids` for BERT-like tokenizers), `labels` and
`length`. Generation rows carry `input_ids`, `labels` (IGNORE_INDEX on prompt tokens) and `length`,
plus `position_ids` when packed.
"""

import logging
from collections import OrderedDict
from dataclasses import dataclass, field

import datasets
from transformers import PreTrainedTokenizerBase

from lora_playground.errors import DataError
from lora_playground.evaluation.prompting import IGNORE_INDEX, encode_chat
from lora_playground.tasks.task import LABEL, MESSAGES, TEXT, TEXT_PAIR, TaskType

logger = logging.getLogger(__name__)

LENGTH = "length"
POSITION_IDS = "position_ids"


@dataclass
class TokenizedSplit:
    """A tokenized split and what tokenization changed: rows cut to max_length, rows dropped."""

    dataset: datasets.Dataset
    truncated: int = 0
    dropped: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def lengths(self) -> list[int]:
        return self.dataset[LENGTH]


def _map_batches(split: datasets.Dataset, encode, split_name: str) -> datasets.Dataset:
    # keep_in_memory: no cache files beside the source data, and `encode` always runs, so its counters are right.
    return split.map(
        encode,
        batched=True,
        remove_columns=split.column_names,
        keep_in_memory=True,
        desc=f"Tokenizing {split_name}",
    )


def tokenize_classification(
    split: datasets.Dataset, tokenizer: PreTrainedTokenizerBase, max_length: int, split_name: str = "train"
) -> TokenizedSplit:
    """Tokenize `text` (and `text_pair` when present) with `label` as `labels`, truncating to max_length.

    Each row is first tokenized in full to count the rows longer than `max_length`. Only those rows
    are tokenized again with truncation, which cuts the longer text first for pairs.
    """
    has_pair = TEXT_PAIR in split.column_names
    truncated_rows = 0

    def encode(batch: dict) -> dict:
        nonlocal truncated_rows
        pairs = batch[TEXT_PAIR] if has_pair else None
        encoded = tokenizer(batch[TEXT], pairs, truncation=False, verbose=False)
        too_long = [index for index, ids in enumerate(encoded["input_ids"]) if len(ids) > max_length]
        if too_long:
            truncated_rows += len(too_long)
            texts = [batch[TEXT][index] for index in too_long]
            text_pairs = [pairs[index] for index in too_long] if has_pair else None
            cut = tokenizer(texts, text_pairs, truncation=True, max_length=max_length)
            for position, index in enumerate(too_long):
                for key in encoded:
                    encoded[key][index] = cut[key][position]
        result = dict(encoded)
        result["labels"] = batch[LABEL]
        result[LENGTH] = [len(ids) for ids in encoded["input_ids"]]
        return result

    dataset = _map_batches(split, encode, split_name)
    notes = []
    if truncated_rows:
        notes.append(f"truncated {truncated_rows} of {len(split)} {split_name} rows to max_length={max_length} tokens")
    return TokenizedSplit(dataset=dataset, truncated=truncated_rows, notes=notes)


def tokenize_generation(
    split: datasets.Dataset, tokenizer: PreTrainedTokenizerBase, max_length: int, split_name: str = "train"
) -> TokenizedSplit:
    """Tokenize chats (`messages`, the last one the reply) with labels on the reply tokens only.

    Prompt and reply are rendered by `evaluation.prompting.encode_chat`, so the model trains on the
    same prompt text it is given at generation time. Chats longer than `max_length` lose their
    end. A chat whose prompt alone fills `max_length` has no reply token left and is dropped, because it
    would contribute nothing to the loss; both counts are reported in `notes`.
    """
    truncated_rows = 0
    dropped_rows = 0

    def encode(batch: dict) -> dict:
        nonlocal truncated_rows, dropped_rows
        result = {"input_ids": [], "labels": [], LENGTH: []}
        for messages in batch[MESSAGES]:
            chat = encode_chat(tokenizer, messages, max_length)
            if chat.reply_token_count == 0:
                dropped_rows += 1
                continue
            truncated_rows += chat.truncated
            result["input_ids"].append(chat.input_ids)
            result["labels"].append(chat.labels)
            result[LENGTH].append(len(chat.input_ids))
        return result

    dataset = _map_batches(split, encode, split_name)
    if len(dataset) == 0:
        raise DataError(
            f"No {split_name} chat has a reply token left within max_length={max_length} tokens.",
            "Raise max_length or shorten the prompts.",
        )
    notes = []
    if truncated_rows:
        notes.append(
            f"truncated {truncated_rows} of {len(split)} {split_name} chats to max_length={max_length} tokens"
        )
    if dropped_rows:
        notes.append(
            f"dropped {dropped_rows} of {len(split)} {split_name} chats whose prompt alone fills "
            f"max_length={max_length} tokens"
        )
    return TokenizedSplit(dataset=dataset, truncated=truncated_rows, dropped=dropped_rows, notes=notes)


def pack_chats(tokenized: TokenizedSplit, max_length: int) -> TokenizedSplit:
    """Pack consecutive tokenized chats into rows of at most `max_length` tokens.

    Chats are taken in order and appended to the current row while they fit (chats are never split).
    `position_ids` restart at 0 for every chat, and transformers builds a block-diagonal causal mask
    from them when no attention mask is given, so a token attends only to earlier tokens of its own
    chat. The first label of every chat is IGNORE_INDEX, so no token is trained to predict the start
    of the next chat from the end of the previous one.
    """
    rows: dict[str, list[list[int]]] = {"input_ids": [], "labels": [], POSITION_IDS: []}
    current_ids: list[int] = []
    current_labels: list[int] = []
    current_positions: list[int] = []

    def close_row() -> None:
        if current_ids:
            rows["input_ids"].append(list(current_ids))
            rows["labels"].append(list(current_labels))
            rows[POSITION_IDS].append(list(current_positions))
            current_ids.clear()
            current_labels.clear()
            current_positions.clear()

    all_labels = tokenized.dataset["labels"]
    for input_ids, labels in zip(tokenized.dataset["input_ids"], all_labels):
        if len(current_ids) + len(input_ids) > max_length:
            close_row()
        current_ids.extend(input_ids)
        current_labels.extend([IGNORE_INDEX] + labels[1:])
        current_positions.extend(range(len(input_ids)))
    close_row()

    rows[LENGTH] = [len(ids) for ids in rows["input_ids"]]
    packed = datasets.Dataset.from_dict(rows)
    note = f"packed {len(tokenized.dataset)} chats into {len(packed)} rows of at most {max_length} tokens"
    logger.info(note)
    return TokenizedSplit(
        dataset=packed,
        truncated=tokenized.truncated,
        dropped=tokenized.dropped,
        notes=tokenized.notes + [note],
    )


def tokenize_split(
    split: datasets.Dataset,
    tokenizer: PreTrainedTokenizerBase,
    task_type: TaskType,
    max_length: int,
    split_name: str = "train",
) -> TokenizedSplit:
    """Tokenize one split for `task_type` ("classification" or "generation")."""
    if task_type == "classification":
        return tokenize_classification(split, tokenizer, max_length, split_name)
    if task_type == "generation":
        return tokenize_generation(split, tokenizer, max_length, split_name)
    raise DataError(f"Task type {task_type!r} is not supported.", "Use 'classification' or 'generation'.")


class TokenizationCache:
    """Tokenized splits kept in memory per process, so a LoRA run and a full run on the same data and
    base tokenize once. Keys are (data fingerprint, split name, base fingerprint, max_length)."""

    def __init__(self, max_entries: int = 8):
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple, TokenizedSplit] = OrderedDict()

    def get(self, key: tuple) -> TokenizedSplit | None:
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def put(self, key: tuple, value: TokenizedSplit) -> None:
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()


TOKENIZATION_CACHE = TokenizationCache()
