"""How a chat (a list of `{"role", "content"}` messages) becomes model input text, for training and generation.

A tokenizer with a chat template renders the chat with that template. A tokenizer without one uses
the plain format below, where each message is a role header line followed by its content and a
blank line, and the prompt ends with the assistant header so the model writes the reply next:

    <bos>### System:
    You are terse.

    ### User:
    Name a prime.

    ### Assistant:
    7<eos>

`<bos>` is written only when the tokenizer itself adds a BOS token to encoded text, and `<eos>` ends the
reply in training text only, when the tokenizer has an EOS token. All text rendered here already contains
its special tokens, so encode it with `add_special_tokens=False`.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from jinja2.exceptions import TemplateError
from transformers import PreTrainedTokenizerBase

from lora_playground.errors import DataError

ASSISTANT = "assistant"
IGNORE_INDEX = -100  # label value that torch's cross-entropy (and transformers' losses) skip


def uses_chat_template(tokenizer: PreTrainedTokenizerBase) -> bool:
    """Return whether `render_prompt` will use the tokenizer's chat template (else the plain format)."""
    return bool(getattr(tokenizer, "chat_template", None))


def _check_messages(messages: Sequence[dict]) -> None:
    if not messages:
        raise DataError("The chat has no messages.", "Give at least one user message.")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or "role" not in message or "content" not in message:
            raise DataError(f"Message {index} is {message!r}, not a dict with 'role' and 'content'.")
        if not isinstance(message["role"], str) or not isinstance(message["content"], str):
            raise DataError(f"Message {index} must have a string role and string content, got {message!r}.")


def _apply_template(tokenizer: PreTrainedTokenizerBase, messages: Sequence[dict], add_generation_prompt: bool) -> str:
    try:
        return tokenizer.apply_chat_template(
            list(messages), tokenize=False, add_generation_prompt=add_generation_prompt
        )
    except (TemplateError, ValueError, TypeError) as error:
        roles = [message["role"] for message in messages]
        raise DataError(
            f"The tokenizer's chat template failed to render a chat with roles {roles}: {error}",
            "Use roles the template accepts; many templates require user and assistant messages to alternate.",
        ) from error


def _plain_bos(tokenizer: PreTrainedTokenizerBase) -> str:
    # Write the BOS token only for tokenizers that add it to encoded text themselves (Llama does, GPT-2 does not).
    if tokenizer.bos_token is None:
        return ""
    with_specials = tokenizer("x", add_special_tokens=True)["input_ids"]
    return tokenizer.bos_token if with_specials and with_specials[0] == tokenizer.bos_token_id else ""


def _plain_turn(message: dict) -> str:
    return f"### {message['role'].capitalize()}:\n{message['content']}\n\n"


def render_prompt(tokenizer: PreTrainedTokenizerBase, messages: Sequence[dict]) -> str:
    """Render the chat before the assistant reply, ending where the model should start writing.

    `messages` must not end with an assistant message: it is the conversation so far. The result is
    the chat template output with `add_generation_prompt=True`, or the plain format of this module.
    Raises DataError for malformed messages or a template that fails to render.
    """
    _check_messages(messages)
    if messages[-1]["role"] == ASSISTANT:
        raise DataError(
            "The prompt ends with an assistant message, so there is nothing left for the model to answer.",
            "Pass the messages before the reply (drop the last assistant message).",
        )
    if uses_chat_template(tokenizer):
        return _apply_template(tokenizer, messages, add_generation_prompt=True)
    return _plain_bos(tokenizer) + "".join(_plain_turn(message) for message in messages) + "### Assistant:\n"


def render_conversation(tokenizer: PreTrainedTokenizerBase, messages: Sequence[dict]) -> tuple[str, str]:
    """Split the rendered chat into (prompt text, reply text) whose concatenation is the full training text.

    The last message must be the assistant reply. The reply text includes the end-of-turn marker the
    template writes after it (or the EOS token in the plain format), so a model trained on it learns to stop.
    """
    _check_messages(messages)
    if messages[-1]["role"] != ASSISTANT:
        raise DataError(
            f"The last message has role {messages[-1]['role']!r}, but it must be the assistant reply.",
            "End each example with a message whose role is 'assistant'.",
        )
    prompt = render_prompt(tokenizer, messages[:-1])
    if not uses_chat_template(tokenizer):
        return prompt, messages[-1]["content"] + (tokenizer.eos_token or "")

    full = _apply_template(tokenizer, messages, add_generation_prompt=False)
    if not full.startswith(prompt):
        raise DataError(
            "The chat template renders the conversation differently with and without the reply, "
            "so the reply tokens cannot be located.",
            "Use a tokenizer whose rendered prompt is a prefix of the rendered chat, or remove its chat template.",
        )
    return prompt, full[len(prompt) :]


@dataclass
class EncodedChat:
    """Token ids of one chat, with labels for a loss on the reply only.

    `labels` equals `input_ids` on reply tokens and IGNORE_INDEX on prompt tokens. `truncated` is True
    when tokens at the end were dropped to fit `max_length`.
    """

    input_ids: list[int]
    labels: list[int]
    truncated: bool

    @property
    def reply_token_count(self) -> int:
        return sum(label != IGNORE_INDEX for label in self.labels)


def encode_chat(tokenizer: PreTrainedTokenizerBase, messages: Sequence[dict], max_length: int) -> EncodedChat:
    """Tokenize a chat whose last message is the assistant reply, masking the prompt in the labels.

    The prompt and the reply are tokenized separately and concatenated, so no token straddles the
    boundary. Sequences longer than `max_length` tokens lose their end; when the prompt alone reaches
    `max_length`, no reply token is left and `reply_token_count` is 0.
    """
    if max_length < 1:
        raise DataError(f"max_length={max_length} must be at least 1 token.")
    prompt, reply = render_conversation(tokenizer, messages)
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    reply_ids = tokenizer(reply, add_special_tokens=False)["input_ids"]

    input_ids = (prompt_ids + reply_ids)[:max_length]
    labels = ([IGNORE_INDEX] * len(prompt_ids) + reply_ids)[:max_length]
    truncated = len(prompt_ids) + len(reply_ids) > max_length
    return EncodedChat(input_ids=input_ids, labels=labels, truncated=truncated)
