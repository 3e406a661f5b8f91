"""Normalizing raw generation splits into chat `messages` rows.

Formats:
- alpaca: `instruction`, optional `input`, `output`. The user turn is the instruction, followed by a blank
  line and the input when the input is not empty; the assistant turn is the output.
- chat: a `messages` list of {role, content} with roles system/user/assistant; the last must be assistant.
- prompt_completion: `prompt` becomes the user turn, `completion` the assistant turn.

A missing prompt-side field (no instruction, no prompt, a malformed message) is an error naming the row,
because it means the file is not what it claims. An empty response only drops that row, and the count is
reported in the notes.
"""

import logging
from dataclasses import dataclass, field

import datasets

from lora_playground.data.cells import cell_text, dropped_note, require_columns
from lora_playground.data.sources import RawData, RawSplit
from lora_playground.errors import ConfigError, DataError
from lora_playground.tasks.task import MESSAGES

logger = logging.getLogger(__name__)

GENERATION_FORMATS = ("alpaca", "chat", "prompt_completion")
ROLES = ("system", "user", "assistant")

# Source columns of each format: (prompt-side columns, response column); chat keeps both in `messages`.
FORMAT_COLUMNS = {
    "alpaca": (["instruction", "input"], "output"),
    "chat": (["messages"], None),
    "prompt_completion": (["prompt"], "completion"),
}


@dataclass
class GenerationRows:
    """Normalized `messages` rows per split, the detected format and the source columns used."""

    rows: dict[str, list[dict]]
    data_format: str
    prompt_columns: list[str]
    response_column: str | None
    notes: list[str] = field(default_factory=list)


def detect_format(columns: list[str], origin: str) -> str:
    """Return the generation format implied by `columns`; raise DataError when none fits."""
    if "messages" in columns:
        return "chat"
    if "instruction" in columns and "output" in columns:
        return "alpaca"
    if "prompt" in columns and "completion" in columns:
        return "prompt_completion"
    raise DataError(
        f"Cannot tell the generation format of {origin} from its columns: {', '.join(columns)}.",
        "Use alpaca columns (instruction, input, output), a chat column (messages), or prompt and "
        "completion columns; or name the format with data_format=... (CLI: --format).",
    )


def normalize_generation(raw: RawData, data_format: str | None = None) -> GenerationRows:
    """Turn every split into `messages` rows; `data_format` forces a format instead of detecting it."""
    train = raw.splits["train"]
    if data_format is None:
        data_format = detect_format(train.dataset.column_names, train.origin)
    elif data_format not in GENERATION_FORMATS:
        raise ConfigError(f"Unknown data_format {data_format!r}.", f"Use one of: {', '.join(GENERATION_FORMATS)}.")

    prompt_columns, response_column = FORMAT_COLUMNS[data_format]
    required = [column for column in prompt_columns + [response_column] if column and column != "input"]
    notes = []
    rows = {}
    for split, raw_split in raw.splits.items():
        require_columns(raw_split.dataset, required, raw_split.origin, "data_format=... (CLI: --format)")
        split_rows, dropped = _normalize_split(raw_split, data_format)
        if dropped:
            notes.append(dropped_note(dropped, "an empty response", split, raw_split.origin))
        if not split_rows:
            raise DataError(
                f"No examples remain in the {split} data ({raw_split.origin}): every response is empty.",
                "Check the response column.",
            )
        rows[split] = split_rows
    used_prompt_columns = [c for c in prompt_columns if c in train.dataset.column_names]
    return GenerationRows(rows, data_format, used_prompt_columns, response_column, notes)


def _normalize_split(raw_split: RawSplit, data_format: str) -> tuple[list[dict], int]:
    dataset: datasets.Dataset = raw_split.dataset
    convert = {"alpaca": _alpaca_messages, "chat": _chat_messages, "prompt_completion": _prompt_messages}[
        data_format
    ]
    rows, dropped = [], 0
    for position, record in enumerate(dataset):
        messages = convert(record, position + 1, raw_split.origin)
        if not messages[-1]["content"].strip():
            dropped += 1
            continue
        rows.append({MESSAGES: messages})
    return rows, dropped


def _required_text(record: dict, column: str, row: int, origin: str, what: str) -> str:
    value = record.get(column)
    if value is None:
        raise DataError(f"Row {row} of {origin} has no {column!r} field.", f"Every record needs {what}.")
    return cell_text(value, column, row, origin)


def _alpaca_messages(record: dict, row: int, origin: str) -> list[dict]:
    instruction = _required_text(record, "instruction", row, origin, "an instruction")
    if not instruction.strip():
        raise DataError(f"Row {row} of {origin} has an empty 'instruction'.", "Every record needs an instruction.")
    output = _required_text(record, "output", row, origin, "an output (the expected response)")
    extra_input = cell_text(record.get("input"), "input", row, origin)
    user = instruction if not extra_input.strip() else f"{instruction}\n\n{extra_input}"
    return [{"role": "user", "content": user}, {"role": "assistant", "content": output}]


def _prompt_messages(record: dict, row: int, origin: str) -> list[dict]:
    prompt = _required_text(record, "prompt", row, origin, "a prompt")
    if not prompt.strip():
        raise DataError(f"Row {row} of {origin} has an empty 'prompt'.", "Every record needs a prompt.")
    completion = _required_text(record, "completion", row, origin, "a completion")
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": completion}]


def _chat_messages(record: dict, row: int, origin: str) -> list[dict]:
    messages = record.get("messages")
    example = 'such as [{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."}]'
    if not isinstance(messages, list) or len(messages) < 2:
        raise DataError(
            f"Row {row} of {origin}: 'messages' must be a list of at least two messages, got {messages!r:.80}.",
            f"Give a list {example}.",
        )
    normalized = []
    for number, message in enumerate(messages, start=1):
        if not isinstance(message, dict) or message.get("role") not in ROLES or "content" not in message:
            raise DataError(
                f"Row {row} of {origin}: message {number} is {message!r:.80}, not a {{role, content}} object "
                f"with a role among {', '.join(ROLES)}.",
                f"Give messages {example}.",
            )
        content = cell_text(message["content"], f"messages[{number}].content", row, origin)
        normalized.append({"role": message["role"], "content": content})
    if normalized[-1]["role"] != "assistant":
        raise DataError(
            f"Row {row} of {origin}: the last message has role {normalized[-1]['role']!r}, not 'assistant'.",
            "End every conversation with the assistant reply the model should learn.",
        )
    if not any(message["role"] == "user" for message in normalized):
        raise DataError(f"Row {row} of {origin} has no user message.", "Add the user turn before the reply.")
    return normalized
