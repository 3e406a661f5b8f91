"""SIGKILL during training, an adapter save and a Hub pull: after a restart the store and the job list agree.

Each test runs a real child process (tests/crash_helpers.py) that stops at a known point and writes a
marker file; the test kills it there with SIGKILL, then opens the store and the job queue again as a
restarted app would, and checks that nothing half-written is visible and nothing finished was lost.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import huggingface_hub
import pytest
import torch

from crash_helpers import KEPT_ACCURACY, KEPT_NAME
from hub_server import HubServer
from lora_helpers import logits, metadata_for, perturbed_lora_model
from lora_playground.adapters import AdapterStore
from lora_playground.hub import pull_adapter
from lora_playground.jobs import CANCELLED, FAILED, INTERRUPTED_MESSAGE, RUNNING, SUCCEEDED, JobQueue, JobStore
from lora_playground.models import get_shared_base

TESTS_DIR = Path(__file__).resolve().parent
HELPER = TESTS_DIR / "crash_helpers.py"
# Starting a child costs several seconds of imports; on a loaded two-core machine it can take much longer.
CHILD_TIMEOUT = 180


def child_env(tmp_path: Path) -> dict[str, str]:
    """The test's environment (its store and runs folder) without any Hub token or Hub login."""
    env = {key: value for key, value in os.environ.items() if key not in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_ENDPOINT")}
    env.update(HF_HOME=str(tmp_path / "hf-home"), HF_HUB_DISABLE_TELEMETRY="1", PYTHONUNBUFFERED="1")
    return env


class Child:
    """A crash helper process whose output goes to a log file shown when something goes wrong."""

    def __init__(self, args: list[str], tmp_path: Path, env: dict[str, str] | None = None):
        self.log_path = tmp_path / f"child-{args[0]}.log"
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(
                [sys.executable, str(HELPER), *args],
                cwd=TESTS_DIR.parent,
                env=env or child_env(tmp_path),
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def wait_until(self, condition: Callable[[], bool], what: str, timeout: float = CHILD_TIMEOUT) -> None:
        """Poll `condition` until it holds; fail with the child's log if the child exits or time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            if self.process.poll() is not None:
                pytest.fail(f"the child exited with {self.process.returncode} before {what}:\n{self.log()}")
            time.sleep(0.1)
        pytest.fail(f"the child did not reach {what} within {timeout} s:\n{self.log()}")

    def kill(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        assert self.process.wait(timeout=30) == -signal.SIGKILL

    def cleanup(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)


def hidden_entries(root: Path) -> list[str]:
    return sorted(path.name for path in root.iterdir() if path.name.startswith("."))


@pytest.fixture
def bert_base(tiny_bert_dir):
    return get_shared_base(str(tiny_bert_dir))


@pytest.fixture
def spam_csv(tmp_path) -> Path:
    rows = ["text,label"]
    for index in range(48):
        spam = index % 2 == 1
        rows.append(f"message {index} {'win a free prize now' if spam else 'see you at lunch'},{'spam' if spam else 'ham'}")
    path = tmp_path / "spam.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


# ---- training in the app's job queue


def test_kill_during_training_job(tmp_path, tiny_bert_dir, spam_csv, isolated_store):
    job_store = JobStore()
    child = Child(
        ["jobs", "--base", str(tiny_bert_dir), "--data", str(spam_csv), "--finished-name", "done-run", "--interrupted-name", "cut-run"],
        tmp_path,
    )

    def training_steps() -> bool:
        if not job_store.path.exists():
            return False
        return any(
            job.params.get("name") == "cut-run" and job.status == RUNNING and (job.progress or {}).get("step", 0) >= 1
            for job in job_store.list()
        )

    try:
        child.wait_until(training_steps, "a training step of the second job")
        child.kill()
    finally:
        child.cleanup()

    # The restart: the app opens the job queue (which recovers open jobs) and the store.
    restarted = JobQueue(JobStore())
    store = AdapterStore()
    jobs = {job.params["name"]: job for job in restarted.list()}

    assert set(jobs) == {"done-run", "cut-run"}
    finished, interrupted = jobs["done-run"], jobs["cut-run"]
    assert finished.status == SUCCEEDED
    assert finished.result["adapter"] == "done-run"
    assert interrupted.status == FAILED
    assert interrupted.error == INTERRUPTED_MESSAGE
    assert interrupted.progress["step"] >= 1
    assert interrupted.finished_at is not None

    assert store.names() == ["done-run"]
    assert hidden_entries(store.root) == []
    entry = store.get("done-run")
    assert entry.metadata.metrics == finished.result["run"]["metrics"]
    assert entry.metadata.train_config["max_steps"] == 2

    # The restarted queue runs new jobs; the interrupted one stays closed.
    restarted.register("echo", lambda context: {"echo": context.params["value"]})
    restarted.start()
    try:
        echoed = restarted.wait(restarted.submit("echo", {"value": 3}).id, timeout=30)
    finally:
        restarted.shutdown()
    assert echoed.status == SUCCEEDED
    assert echoed.result == {"echo": 3}
    assert restarted.get(interrupted.id).status == FAILED


def test_queued_job_cancelled_on_restart(tmp_path):
    """A job still waiting when the process dies is closed as cancelled, never run after the restart."""
    path = tmp_path / "jobs.sqlite3"
    store = JobStore(path)
    waiting = store.create("train", {"name": "never-started"})

    restarted = JobQueue(JobStore(path))
    ran = threading.Event()
    restarted.register("train", lambda context: ran.set())
    restarted.start()
    try:
        time.sleep(0.5)
    finally:
        restarted.shutdown()

    assert not ran.is_set()
    assert store.get(waiting.id).status == CANCELLED
    assert store.get(waiting.id).error == INTERRUPTED_MESSAGE


# ---- adapter saves


@pytest.mark.parametrize("pause", ["temporary", "commit"])
def test_kill_during_new_save(pause, tmp_path, tiny_bert_dir, bert_base, isolated_store):
    marker = tmp_path / "marker.json"
    child = Child(["save", "--base", str(tiny_bert_dir), "--name", "half-saved", "--pause", pause, "--marker", str(marker)], tmp_path)
    try:
        child.wait_until(marker.exists, f"the {pause} point of the save")
        child.kill()
    finally:
        child.cleanup()
    temporary = Path(json.loads(marker.read_text())["temporary"])

    # The half-written folder is hidden in the store root, so listings skip it even before the cleanup.
    assert temporary.is_dir()
    assert temporary.parent == isolated_store
    assert temporary.name.startswith(".")

    store = AdapterStore()
    assert not temporary.exists()
    assert hidden_entries(store.root) == []
    assert [entry.name for entry in store.list()] == [KEPT_NAME]
    assert_kept_entry_intact(store, bert_base)


def test_kill_during_forced_replace(tmp_path, tiny_bert_dir, bert_base, isolated_store):
    """Killed after the old entry was moved aside but before the new one took its name: the old one comes back."""
    marker = tmp_path / "marker.json"
    child = Child(["save", "--base", str(tiny_bert_dir), "--name", KEPT_NAME, "--pause", "replace", "--marker", str(marker)], tmp_path)
    try:
        child.wait_until(marker.exists, "the rename of the replacement")
        child.kill()
    finally:
        child.cleanup()
    assert not (isolated_store / KEPT_NAME).exists(), "the old entry should have been moved aside at this point"

    store = AdapterStore()

    assert store.names() == [KEPT_NAME]
    assert hidden_entries(store.root) == []
    assert_kept_entry_intact(store, bert_base)


def assert_kept_entry_intact(store: AdapterStore, base) -> None:
    """The entry saved before the crash loads with its own metadata and exactly its own weights."""
    entry = store.get(KEPT_NAME)
    assert entry.metadata.metrics == {"accuracy": KEPT_ACCURACY}
    expected = logits(perturbed_lora_model(base, seed=1), base.tokenizer)
    assert torch.equal(logits(store.load(KEPT_NAME, base), base.tokenizer), expected)


# ---- Hub pulls


class HeldDownload:
    """Keeps the server's response to one file download open until released, and records when it started."""

    def __init__(self, hub: HubServer, path: str):
        self.started = threading.Event()
        self.release = threading.Event()
        original = hub.record_download

        def record_download(repo, requested_path):
            if requested_path == path and not self.release.is_set():
                self.started.set()
                self.release.wait(CHILD_TIMEOUT)
            return original(repo, requested_path)

        hub.record_download = record_download


def test_kill_during_hub_pull(tmp_path, monkeypatch, tiny_bert_dir, bert_base, isolated_store):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_TELEMETRY", True)
    source = AdapterStore(tmp_path / "publisher-store")
    published = source.save_lora("published", perturbed_lora_model(bert_base, seed=5), metadata_for(bert_base))
    files = {path.name: path.read_bytes() for path in published.path.iterdir() if path.is_file()}
    store = AdapterStore()
    store.save_lora(KEPT_NAME, perturbed_lora_model(bert_base, seed=1), _kept_metadata(bert_base))

    child_tmp = tmp_path / "child-tmp"
    child_tmp.mkdir()
    env = {**child_env(tmp_path), "TMPDIR": str(child_tmp)}
    marker = tmp_path / "marker.json"
    with HubServer() as hub:
        hub.create_repo_with_files("alice/spam-lora", files)
        held = HeldDownload(hub, "adapter_model.safetensors")
        child = Child(
            ["pull", "--base", str(tiny_bert_dir), "--endpoint", hub.url, "--repo", "alice/spam-lora", "--name", "pulled", "--marker", str(marker)],
            tmp_path,
            env=env,
        )
        try:
            child.wait_until(held.started.is_set, "the download of the adapter weights")
            child.kill()
        finally:
            held.release.set()
            child.cleanup()

        leftovers_in_temp = [path.name for path in child_tmp.iterdir()]
        restarted = AdapterStore()

        assert leftovers_in_temp == []
        assert restarted.names() == [KEPT_NAME]
        assert hidden_entries(restarted.root) == []
        assert_kept_entry_intact(restarted, bert_base)

        # The interrupted pull blocks nothing: pulling again installs the complete adapter.
        entry = pull_adapter("alice/spam-lora", endpoint=hub.url, base=bert_base, name="pulled", store=restarted)
    expected = logits(perturbed_lora_model(bert_base, seed=5), bert_base.tokenizer)
    assert torch.equal(logits(restarted.load(entry.name, bert_base), bert_base.tokenizer), expected)


def _kept_metadata(base):
    metadata = metadata_for(base)
    metadata.metrics = {"accuracy": KEPT_ACCURACY}
    return metadata
