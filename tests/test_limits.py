"""Every limit of a shared server: read from its environment variable, enforced, and named in its error.

| limit | variable | enforced by |
| --- | --- | --- |
| upload size | LORA_PLAYGROUND_MAX_UPLOAD_MB | data.files.check_data_file (and Gradio's max_file_size) |
| rows per file | LORA_PLAYGROUND_MAX_ROWS | data.readers.check_row_limit |
| tokens per sequence | LORA_PLAYGROUND_MAX_SEQ_LEN | TrainConfig.validate, pipeline.evaluate_model |
| queued or running jobs | LORA_PLAYGROUND_MAX_QUEUED_JOBS | JobQueue.submit |
| loaded adapters per base | LORA_PLAYGROUND_MAX_LOADED_ADAPTERS | AdapterPool |
"""

import json
import re
from dataclasses import fields
from pathlib import Path

import pytest

from lora_helpers import metadata_for, perturbed_lora_model
from lora_playground import settings
from lora_playground.adapters import AdapterStore
from lora_playground.adapters.serving import AdapterPool
from lora_playground.cli import main as cli_main
from lora_playground.data import load_task_data
from lora_playground.errors import ConfigError, LimitError
from lora_playground.jobs import JobQueue, JobStore
from lora_playground.models import get_shared_base
from lora_playground.pipeline import compare_stored, evaluate_model
from lora_playground.pipeline.inference import answer_side_by_side
from lora_playground.training import train
from lora_playground.training.config import TrainConfig

REPO_ROOT = Path(__file__).resolve().parent.parent
MIB = 1024 * 1024
LIMIT_VARIABLES = {
    "max_upload_bytes": "LORA_PLAYGROUND_MAX_UPLOAD_MB",
    "max_rows": "LORA_PLAYGROUND_MAX_ROWS",
    "max_sequence_length": "LORA_PLAYGROUND_MAX_SEQ_LEN",
    "max_queued_jobs": "LORA_PLAYGROUND_MAX_QUEUED_JOBS",
    "max_loaded_adapters": "LORA_PLAYGROUND_MAX_LOADED_ADAPTERS",
}
DEFAULTS = {
    "max_upload_bytes": 50 * MIB,
    "max_rows": 200_000,
    "max_sequence_length": 1024,
    "max_queued_jobs": 20,
    "max_loaded_adapters": 32,
}


@pytest.fixture(autouse=True)
def default_limits(monkeypatch):
    """Start every test from the defaults, whatever the environment running the tests sets."""
    for variable in LIMIT_VARIABLES.values():
        monkeypatch.delenv(variable, raising=False)


@pytest.fixture
def bert_base(tiny_bert_dir):
    return get_shared_base(str(tiny_bert_dir))


def spam_rows(count: int) -> list[dict]:
    return [{"text": f"message {index} {'win a prize' if index % 2 else 'see you at lunch'}", "label": ["ham", "spam"][index % 2]} for index in range(count)]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


# ---- configuration


def test_limits_have_documented_defaults():
    assert {field.name for field in fields(settings.Limits)} == set(LIMIT_VARIABLES)
    limits = settings.limits()
    for name, value in DEFAULTS.items():
        assert getattr(limits, name) == value, name


@pytest.mark.parametrize(
    "name, raw, expected",
    [
        ("max_upload_bytes", "3", 3 * MIB),
        ("max_rows", "10", 10),
        ("max_sequence_length", "64", 64),
        ("max_queued_jobs", "2", 2),
        ("max_loaded_adapters", "5", 5),
    ],
)
def test_each_limit_reads_its_variable(name, raw, expected, monkeypatch):
    monkeypatch.setenv(LIMIT_VARIABLES[name], raw)
    assert getattr(settings.limits(), name) == expected
    others = {other: value for other, value in DEFAULTS.items() if other != name}
    for other, value in others.items():
        assert getattr(settings.limits(), other) == value, other


@pytest.mark.parametrize("raw", ["many", "1.5", "0", "-3"])
@pytest.mark.parametrize("variable", sorted(LIMIT_VARIABLES.values()))
def test_invalid_limit_value_names_variable(variable, raw, monkeypatch):
    monkeypatch.setenv(variable, raw)
    with pytest.raises(ConfigError) as caught:
        settings.limits()
    assert variable in str(caught.value)
    assert raw.lstrip("-") in str(caught.value)


def test_empty_variable_means_default(monkeypatch):
    monkeypatch.setenv("LORA_PLAYGROUND_MAX_ROWS", " ")
    assert settings.limits().max_rows == DEFAULTS["max_rows"]


def test_every_limit_documented_in_security_guide():
    guide = (REPO_ROOT / "SECURITY.md").read_text(encoding="utf-8")
    for variable in LIMIT_VARIABLES.values():
        assert variable in guide, f"{variable} is missing from SECURITY.md"
    for option in ("--auth-file", "--host", "--share", "allow_pickle", "trust_remote_code"):
        assert option in guide, f"{option} is missing from SECURITY.md"


# ---- upload size and rows


def test_upload_over_limit_rejected(tmp_path, monkeypatch):
    monkeypatch.setenv("LORA_PLAYGROUND_MAX_UPLOAD_MB", "1")
    path = tmp_path / "big.jsonl"
    rows = spam_rows(40)
    rows[0]["text"] = "x" * MIB
    write_jsonl(path, rows)

    with pytest.raises(LimitError) as caught:
        load_task_data(path)

    message = str(caught.value)
    assert "big.jsonl" in message
    assert "LORA_PLAYGROUND_MAX_UPLOAD_MB" in message
    assert "1 MiB" in message


def test_upload_at_limit_loads(tmp_path, monkeypatch):
    monkeypatch.setenv("LORA_PLAYGROUND_MAX_UPLOAD_MB", "1")
    path = tmp_path / "exact.jsonl"
    rows = spam_rows(40)
    write_jsonl(path, rows)
    rows[0]["text"] += "x" * (MIB - path.stat().st_size)
    write_jsonl(path, rows)
    assert path.stat().st_size == MIB

    task_data = load_task_data(path)

    assert sum(split.num_rows for split in task_data.splits.values()) == 40


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_rows_over_limit_rejected(suffix, tmp_path, monkeypatch):
    monkeypatch.setenv("LORA_PLAYGROUND_MAX_ROWS", "30")
    rows = spam_rows(31)
    path = tmp_path / f"rows{suffix}"
    if suffix == ".csv":
        path.write_text("text,label\n" + "".join(f"{row['text']},{row['label']}\n" for row in rows), encoding="utf-8")
    else:
        write_jsonl(path, rows)

    with pytest.raises(LimitError) as caught:
        load_task_data(path)

    assert "31 rows" in str(caught.value)
    assert "limit of 30 rows" in str(caught.value)
    assert "LORA_PLAYGROUND_MAX_ROWS" in str(caught.value)


def test_row_limit_applies_per_split_file(tmp_path, monkeypatch):
    monkeypatch.setenv("LORA_PLAYGROUND_MAX_ROWS", "20")
    folder = tmp_path / "splits"
    folder.mkdir()
    write_jsonl(folder / "train.jsonl", spam_rows(21))
    write_jsonl(folder / "test.jsonl", spam_rows(4))

    with pytest.raises(LimitError, match="LORA_PLAYGROUND_MAX_ROWS"):
        load_task_data(folder)


# ---- sequence length


def test_train_config_over_sequence_limit(monkeypatch):
    with pytest.raises(LimitError) as caught:
        TrainConfig(max_length=1025).validate()
    message = str(caught.value)
    assert "max_length=1025" in message
    assert "1024" in message
    assert "LORA_PLAYGROUND_MAX_SEQ_LEN" in message

    TrainConfig(max_length=1024).validate()
    monkeypatch.setenv("LORA_PLAYGROUND_MAX_SEQ_LEN", "2048")
    TrainConfig(max_length=1025).validate()


def test_invalid_options_reported_before_limit():
    with pytest.raises(ConfigError, match="rank=0"):
        TrainConfig(rank=0, max_length=5000).validate()


def test_training_stops_before_any_step(bert_base, tmp_path, monkeypatch):
    monkeypatch.setenv("LORA_PLAYGROUND_MAX_SEQ_LEN", "32")
    task_data = load_task_data(write_jsonl(tmp_path / "spam.jsonl", spam_rows(40)))
    reports = []

    with pytest.raises(LimitError, match="LORA_PLAYGROUND_MAX_SEQ_LEN"):
        train(bert_base, task_data, TrainConfig(max_length=64, max_steps=1), progress=reports.append)

    assert reports == []


def test_cli_train_over_limit_exits_with_message(tiny_bert_dir, tmp_path, capsys, monkeypatch, isolated_store):
    monkeypatch.setenv("LORA_PLAYGROUND_MAX_SEQ_LEN", "256")
    data = write_jsonl(tmp_path / "spam.jsonl", spam_rows(40))

    status = cli_main(["train", "--base", str(tiny_bert_dir), "--data", str(data), "--name", "long", "--max-length", "512"])

    assert status == 2
    error = capsys.readouterr().err
    assert "max_length=512" in error
    assert "LORA_PLAYGROUND_MAX_SEQ_LEN" in error
    assert not (isolated_store / "long").exists()


def test_evaluation_over_limit_rejected(bert_base, tmp_path, monkeypatch):
    task_data = load_task_data(write_jsonl(tmp_path / "spam.jsonl", spam_rows(40)))
    model = perturbed_lora_model(bert_base)
    monkeypatch.setenv("LORA_PLAYGROUND_MAX_SEQ_LEN", "100")

    with pytest.raises(LimitError, match="max_length=128"):
        evaluate_model(model, bert_base.tokenizer, task_data, name="x", kind="lora", max_length=128)
    result = evaluate_model(model, bert_base.tokenizer, task_data, name="x", kind="lora", max_length=100)
    assert len(result.predictions) == task_data.splits["test"].num_rows


def test_stored_entry_over_limit_rejected(bert_base, tiny_bert_dir, tmp_path, monkeypatch):
    """An entry trained (or pulled) with a longer max_length than this server allows is rejected, not cut silently."""
    rows = [{"text": f"message {index}", "label": ["ham", "spam", "other"][index % 3]} for index in range(45)]
    task_data = load_task_data(write_jsonl(tmp_path / "three.jsonl", rows))
    metadata = metadata_for(bert_base)
    # The helper model has a three-class head; give the entry this task's names for those classes.
    metadata.task = {**metadata.task, "label_names": list(task_data.task.label_names)}
    metadata.train_config = {**metadata.train_config, "max_length": 512}
    AdapterStore().save_lora("long-context", perturbed_lora_model(bert_base), metadata)
    monkeypatch.setenv("LORA_PLAYGROUND_MAX_SEQ_LEN", "256")

    with pytest.raises(LimitError, match="max_length=512"):
        compare_stored(["long-context"], task_data, base_name=str(tiny_bert_dir))


# ---- jobs


def test_job_queue_limit_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("LORA_PLAYGROUND_MAX_QUEUED_JOBS", "2")
    # The queue is not started, so submitted jobs stay queued and keep their places.
    queue = JobQueue(JobStore(tmp_path / "jobs.sqlite3"))
    queue.register("wait", lambda context: None)
    first = queue.submit("wait", {})
    queue.submit("wait", {})

    with pytest.raises(LimitError) as caught:
        queue.submit("wait", {})
    message = str(caught.value)
    assert "2 jobs are queued or running (limit 2)" in message
    assert "LORA_PLAYGROUND_MAX_QUEUED_JOBS" in message

    queue.cancel(first.id)
    third = queue.submit("wait", {})
    assert queue.get(third.id).status == "queued"
    assert queue.store.count() == 2


def test_finished_jobs_free_their_place(tmp_path, monkeypatch):
    monkeypatch.setenv("LORA_PLAYGROUND_MAX_QUEUED_JOBS", "1")
    queue = JobQueue(JobStore(tmp_path / "jobs.sqlite3"))
    queue.register("echo", lambda context: {"value": context.params["value"]})
    queue.start()
    try:
        results = [queue.wait(queue.submit("echo", {"value": index}).id, timeout=30).result for index in range(3)]
    finally:
        queue.shutdown()
    assert results == [{"value": 0}, {"value": 1}, {"value": 2}]


# ---- loaded adapters


def test_loaded_adapter_limit_from_environment(bert_base, monkeypatch):
    monkeypatch.setenv("LORA_PLAYGROUND_MAX_LOADED_ADAPTERS", "2")
    store = AdapterStore()
    for index in range(3):
        store.save_lora(f"adapter-{index}", perturbed_lora_model(bert_base, seed=index), metadata_for(bert_base))
    pool = AdapterPool(bert_base, store)

    pool.load("adapter-0")
    pool.load("adapter-1")
    with pytest.raises(LimitError) as caught:
        pool.load("adapter-2")
    assert "LORA_PLAYGROUND_MAX_LOADED_ADAPTERS=2" in str(caught.value)
    assert pool.loaded_names() == ["adapter-0", "adapter-1"]

    pool.load("adapter-2", evict=True)
    assert len(pool.loaded_names()) == 2
    assert "adapter-2" in pool.loaded_names()


def test_side_by_side_request_over_limit(bert_base, tiny_bert_dir, monkeypatch):
    monkeypatch.setenv("LORA_PLAYGROUND_MAX_LOADED_ADAPTERS", "2")
    store = AdapterStore()
    names = [f"adapter-{index}" for index in range(3)]
    for index, name in enumerate(names):
        store.save_lora(name, perturbed_lora_model(bert_base, seed=index), metadata_for(bert_base))

    with pytest.raises(LimitError) as caught:
        answer_side_by_side(str(tiny_bert_dir), names, "win a prize", store=store)
    assert re.search(r"needs 3 models", str(caught.value))
    assert "LORA_PLAYGROUND_MAX_LOADED_ADAPTERS" in str(caught.value)

    answers = answer_side_by_side(str(tiny_bert_dir), names[:2], "win a prize", store=store)
    assert [answer["name"] for answer in answers] == names[:2]
