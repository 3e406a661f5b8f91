"""Built-in tasks whose data ships inside a pip package, so training works on a fresh offline machine.

All three come from the `chatterbot-corpus` package (1.3.3): user-contributed chatbot conversations in
YAML, one file per topic and language. Its package metadata declares the BSD license (classifier
"License :: OSI Approved :: BSD License"); the wheel ships no license text.
"""

import logging
from collections import defaultdict
from dataclasses import asdict, dataclass

import numpy as np

from lora_playground.data.assemble import build_task_data, complete_splits
from lora_playground.data.splits import check_fractions
from lora_playground.errors import DataError
from lora_playground.tasks.chatterbot import PACKAGE, corpus_version, read_conversations
from lora_playground.tasks.task import LABEL, MESSAGES, TEXT, Task, TaskData, TaskType

logger = logging.getLogger(__name__)

CORPUS_LICENSE = "BSD (chatterbot-corpus package metadata: License :: OSI Approved :: BSD License)"
_POOL_SEED = 0  # fixes which rows a capped class keeps, so every split seed draws from the same pool

# chatterbot-topics: topics with at least this many distinct first lines, each capped at TOPIC_CAP rows.
TOPIC_MIN_ROWS = 40
TOPIC_CAP = 100
# chatterbot-language: Latin-script languages, so the model must read words rather than tell scripts apart.
LANGUAGES = ("english", "spanish", "italian", "portuguese", "dutch", "german", "turkish", "indonesian")
LANGUAGE_CAP = 150
LANGUAGE_MIN_WORDS = 3


@dataclass(frozen=True)
class BuiltinTask:
    """A built-in task: what it asks, its type, and where its data and license come from."""

    name: str
    type: TaskType
    description: str
    source: str
    license: str

    def to_dict(self) -> dict:
        return asdict(self)


BUILTIN_TASKS: dict[str, BuiltinTask] = {
    task.name: task
    for task in (
        BuiltinTask(
            name="chatterbot-topics",
            type="classification",
            description=(
                "English: the user's first line of a conversation -> its topic. The corpus is very "
                "unbalanced (tech_support has 1,050 conversations but only 10 distinct first lines; health has "
                f"1), so only topics with at least {TOPIC_MIN_ROWS} distinct first lines are kept (trivia, "
                f"coding, psychology, ai, emotion), each capped at {TOPIC_CAP} lines; lines that open "
                "conversations in two topics are dropped. About 370 rows, 5 classes."
            ),
            source=f"{PACKAGE} 1.3.3 (pip), chatterbot_corpus/data/english/*.yml",
            license=CORPUS_LICENSE,
        ),
        BuiltinTask(
            name="chatterbot-language",
            type="classification",
            description=(
                "A line of chat -> its language, among 8 Latin-script languages ("
                + ", ".join(LANGUAGES)
                + f"). Every distinct turn of at least {LANGUAGE_MIN_WORDS} words, {LANGUAGE_CAP} per language; "
                "lines found in two languages are dropped. 1,200 rows, 8 classes."
            ),
            source=f"{PACKAGE} 1.3.3 (pip), chatterbot_corpus/data/<language>/*.yml",
            license=CORPUS_LICENSE,
        ),
        BuiltinTask(
            name="chatterbot-replies",
            type="generation",
            description=(
                "English chat replies in chat format: each distinct conversation becomes alternating user and "
                "assistant messages ending with an assistant reply. Conversations that open with the same line "
                "stay in one split, so test prompts are never seen in training. About 900 conversations."
            ),
            source=f"{PACKAGE} 1.3.3 (pip), chatterbot_corpus/data/english/*.yml",
            license=CORPUS_LICENSE,
        ),
    )
}


def load_builtin(
    name: str, seed: int = 42, *, validation_fraction: float = 0.1, test_fraction: float = 0.1
) -> TaskData:
    """Build a built-in task's TaskData from the installed corpus; `seed` drives the train/validation/test split.

    Raises DataError for an unknown name (listing the built-in names) or a missing corpus package.
    """
    if name not in BUILTIN_TASKS:
        raise DataError(
            f"Unknown built-in task {name!r}.",
            f"Built-in tasks: {', '.join(BUILTIN_TASKS)}; or give a data file, folder or Hub dataset id.",
        )
    check_fractions(validation_fraction, test_fraction)
    spec = BUILTIN_TASKS[name]
    builders = {
        "chatterbot-topics": _topic_rows,
        "chatterbot-language": _language_rows,
        "chatterbot-replies": _reply_rows,
    }
    rows, label_names = builders[name]()
    task = Task(
        name=name,
        type=spec.type,
        text_columns=["messages"] if spec.type == "generation" else ["text"],
        label_column=None if spec.type == "generation" else "label",
        label_names=label_names,
        data_format="chat" if spec.type == "generation" else None,
        source=f"{PACKAGE} {corpus_version()} (pip)",
        license=spec.license,
    )
    group_key = (lambda row: row[MESSAGES][0]["content"]) if spec.type == "generation" else None
    splits, notes = complete_splits(
        {"train": rows},
        stratify=spec.type == "classification",
        seed=seed,
        validation_fraction=validation_fraction,
        test_fraction=test_fraction,
        group_key=group_key,
    )
    return build_task_data(task, splits, notes)


def _unambiguous(texts_by_class: dict[str, set[str]]) -> dict[str, list[str]]:
    """Drop texts that occur under more than one class; return each class' texts sorted."""
    owners = defaultdict(set)
    for label, texts in texts_by_class.items():
        for text in texts:
            owners[text].add(label)
    return {label: sorted(t for t in texts if len(owners[t]) == 1) for label, texts in texts_by_class.items()}


def _capped_rows(texts_by_class: dict[str, list[str]], cap: int) -> tuple[list[dict], list[str]]:
    rng = np.random.default_rng(_POOL_SEED)
    label_names = sorted(texts_by_class)
    rows = []
    for index, label in enumerate(label_names):
        texts = texts_by_class[label]
        if len(texts) > cap:
            texts = sorted(rng.choice(texts, size=cap, replace=False).tolist())
        rows.extend({TEXT: text, LABEL: index} for text in texts)
    order = rng.permutation(len(rows))
    return [rows[position] for position in order], label_names


def _topic_rows() -> tuple[list[dict], list[str]]:
    first_lines = {
        topic: {conversation[0] for conversation in conversations}
        for topic, conversations in read_conversations("english").items()
    }
    distinct = _unambiguous(first_lines)
    kept = {topic: lines for topic, lines in distinct.items() if len(lines) >= TOPIC_MIN_ROWS}
    return _capped_rows(kept, TOPIC_CAP)


def _language_rows() -> tuple[list[dict], list[str]]:
    lines = {}
    for language in LANGUAGES:
        lines[language] = {
            turn
            for conversations in read_conversations(language).values()
            for conversation in conversations
            for turn in conversation
            if len(turn.split()) >= LANGUAGE_MIN_WORDS
        }
    return _capped_rows(_unambiguous(lines), LANGUAGE_CAP)


def _reply_rows() -> tuple[list[dict], list[str]]:
    distinct = set()
    for topic_conversations in read_conversations("english").values():
        distinct.update(conversation for conversation in topic_conversations if len(conversation) >= 2)
    conversations = sorted(distinct)
    rows = []
    for conversation in conversations:
        # Turns alternate user/assistant; an odd last turn is a user line with no reply, so it is left out.
        turns = conversation[: len(conversation) - len(conversation) % 2]
        roles = ("user", "assistant")
        rows.append({MESSAGES: [{"role": roles[i % 2], "content": turn} for i, turn in enumerate(turns)]})
    order = np.random.default_rng(_POOL_SEED).permutation(len(rows))
    return [rows[position] for position in order], []
