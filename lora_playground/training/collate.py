"""Batch collators that pad each batch only to its own longest row (dynamic padding)."""

from dataclasses import dataclass

import torch
from transformers import DataCollatorWithPadding, PreTrainedTokenizerBase

from lora_playground.evaluation.prompting import IGNORE_INDEX
from lora_playground.tasks.task import TaskType
from lora_playground.training.tokenize import POSITION_IDS


@dataclass
class CausalLMCollator:
    """Pad tokenized chats to the longest row of the batch for a causal language-model loss.

    Padding gets `pad_token_id` as input and IGNORE_INDEX as label, so no loss falls on it. Unpacked
    rows get an `attention_mask` that hides the padding. Packed rows (with `position_ids`) get no
    attention mask, because transformers derives the per-chat causal mask from `position_ids` only when
    the mask is absent. Their padding forms a separate segment whose positions restart at 0, so real
    tokens never attend to it.
    """

    pad_token_id: int

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        # (batch, longest row in this batch)
        longest = max(len(feature["input_ids"]) for feature in features)
        packed = POSITION_IDS in features[0]

        input_ids, labels, attention_mask, position_ids = [], [], [], []
        for feature in features:
            length = len(feature["input_ids"])
            padding = longest - length
            input_ids.append(list(feature["input_ids"]) + [self.pad_token_id] * padding)
            labels.append(list(feature["labels"]) + [IGNORE_INDEX] * padding)
            if packed:
                position_ids.append(list(feature[POSITION_IDS]) + list(range(padding)))
            else:
                attention_mask.append([1] * length + [0] * padding)

        batch = {
            "input_ids": torch.tensor(input_ids, dtype=torch.long),
            "labels": torch.tensor(labels, dtype=torch.long),
        }
        if packed:
            batch[POSITION_IDS] = torch.tensor(position_ids, dtype=torch.long)
        else:
            batch["attention_mask"] = torch.tensor(attention_mask, dtype=torch.long)
        return batch


def collator_for(task_type: TaskType, tokenizer: PreTrainedTokenizerBase):
    """Return the dynamic-padding collator for a task type."""
    if task_type == "classification":
        return DataCollatorWithPadding(tokenizer)
    if tokenizer.pad_token_id is None:
        raise ValueError("The tokenizer has no pad token; SharedBase sets one, so this is a bug in model loading.")
    return CausalLMCollator(pad_token_id=tokenizer.pad_token_id)
