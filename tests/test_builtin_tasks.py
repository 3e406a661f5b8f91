"""Built-in tasks from the chatterbot-corpus package: sizes, balance, determinism, license, bad names."""

import importlib.metadata
from collections import Counter

import pytest

from lora_playground.errors import DataError
from lora_playground.tasks.builtin import BUILTIN_TASKS, load_builtin
from lora_playground.tasks.chatterbot import corpus_dir, read_conversations


def test_registry_entries_complete():
    assert set(BUILTIN_TASKS) == {"chatterbot-topics", "chatterbot-language", "chatterbot-replies"}
    for name, task in BUILTIN_TASKS.items():
        assert task.name == name
        assert task.type in ("classification", "generation")
        assert len(task.description) > 50
        assert "chatterbot-corpus" in task.source
        assert task.license.startswith("BSD")


def test_license_matches_package_metadata():
    classifiers = importlib.metadata.metadata("chatterbot-corpus").get_all("Classifier")
    assert "License :: OSI Approved :: BSD License" in classifiers


def test_corpus_found_in_site_packages():
    folder = corpus_dir()
    assert (folder / "english" / "ai.yml").is_file()
    assert "shared" not in folder.parts


def test_corpus_turns_are_strings():
    turns = {turn for conversations in read_conversations("english").values() for c in conversations for turn in c}
    assert all(isinstance(turn, str) for turn in turns)
    assert "1984" in turns


def test_topics_classes_and_caps():
    task_data = load_builtin("chatterbot-topics")
    assert task_data.task.label_names == ["ai", "coding", "emotion", "psychology", "trivia"]
    labels = Counter(
        task_data.task.label_names[i] for split in task_data.splits.values() for i in split["label"]
    )
    assert labels == {"trivia": 100, "coding": 96, "psychology": 62, "ai": 60, "emotion": 48}
    for split in ("validation", "test"):
        assert set(task_data.splits[split]["label"]) == set(range(5))


def test_topics_texts_unique_across_splits():
    task_data = load_builtin("chatterbot-topics")
    texts = [text for split in task_data.splits.values() for text in split["text"]]
    assert len(texts) == len(set(texts))


def test_language_balanced():
    task_data = load_builtin("chatterbot-language")
    assert len(task_data.task.label_names) == 8
    assert Counter(task_data.splits["train"]["label"]) == {index: 120 for index in range(8)}
    assert Counter(task_data.splits["test"]["label"]) == {index: 15 for index in range(8)}
    assert all(len(text.split()) >= 3 for text in task_data.splits["train"]["text"])


def test_replies_end_with_assistant():
    task_data = load_builtin("chatterbot-replies")
    assert task_data.task.type == "generation"
    assert task_data.task.data_format == "chat"
    total = sum(split.num_rows for split in task_data.splits.values())
    assert total == 898
    for row in task_data.splits["train"]:
        roles = [message["role"] for message in row["messages"]]
        assert roles[-1] == "assistant"
        assert roles[::2] == ["user"] * len(roles[::2])


def test_replies_prompts_not_shared_between_splits():
    task_data = load_builtin("chatterbot-replies")
    prompts = {split: {row["messages"][0]["content"] for row in data} for split, data in task_data.splits.items()}
    assert not prompts["train"] & prompts["test"]
    assert not prompts["train"] & prompts["validation"]
    assert not prompts["validation"] & prompts["test"]


def test_seed_changes_split_not_pool():
    first, again, other = load_builtin("chatterbot-topics", 1), load_builtin("chatterbot-topics", 1), load_builtin("chatterbot-topics", 2)
    assert first.fingerprint == again.fingerprint
    assert first.fingerprint != other.fingerprint
    pool = lambda data: sorted(text for split in data.splits.values() for text in split["text"])  # noqa: E731
    assert pool(first) == pool(other)


def test_unknown_builtin_lists_names():
    with pytest.raises(DataError) as caught:
        load_builtin("imdb")
    message = str(caught.value)
    assert "'imdb'" in message
    assert "chatterbot-topics, chatterbot-language, chatterbot-replies" in message
