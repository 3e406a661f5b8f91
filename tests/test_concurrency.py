"""Many users at once: threads against the store, the job queue and the adapter pool, then HTTP clients
against the real app. No call may crash, and no result may be lost or given to the wrong request.

Every adapter here gets a distinct seed, and its metadata records that seed as its "accuracy", so a test
can tell from the entry alone whether its weights and its metadata came from the same save.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

from app_process import app_process, endpoint_arguments
from lora_helpers import logits, metadata_for, perturbed_lora_model
from lora_playground.adapters import AdapterStore
from lora_playground.errors import AdapterError, LimitError
from lora_playground.jobs import CANCELLED, FINAL_STATUSES, SUCCEEDED, JobQueue, JobStore
from lora_playground.models import get_shared_base
from lora_playground.pipeline.inference import answer_side_by_side

THREADS = 4


@pytest.fixture
def bert_base(tiny_bert_dir):
    return get_shared_base(str(tiny_bert_dir))


def seeded_metadata(base, seed: int):
    metadata = metadata_for(base)
    metadata.metrics = {"accuracy": seed / 1000}
    return metadata


def seed_of(entry) -> int:
    return round(entry.metadata.metrics["accuracy"] * 1000)


def run_in_threads(workers: list[Callable[[], None]]) -> list[BaseException]:
    """Start all workers at once (behind a barrier) and return the exceptions they raised."""
    barrier = threading.Barrier(len(workers))
    errors: list[BaseException] = []

    def start(worker):
        barrier.wait()
        try:
            worker()
        except BaseException as error:  # noqa: BLE001 - every failure is collected and reported by the test
            errors.append(error)

    threads = [threading.Thread(target=start, args=(worker,)) for worker in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(thread.is_alive() for thread in threads), "a worker thread hung"
    return errors


def hidden_entries(root: Path) -> list[str]:
    return sorted(path.name for path in root.iterdir() if path.name.startswith("."))


# ---- the adapter store


def test_racing_forced_saves(bert_base):
    """Forced saves of one name from several threads: the survivor's weights and metadata match."""
    store = AdapterStore()
    models = {seed: perturbed_lora_model(bert_base, seed=seed) for seed in range(THREADS)}
    expected = {seed: logits(model, bert_base.tokenizer) for seed, model in models.items()}

    def saver(seed):
        return lambda: [store.save_lora("shared", models[seed], seeded_metadata(bert_base, seed), force=True) for _ in range(3)]

    errors = run_in_threads([saver(seed) for seed in models])

    assert errors == []
    assert store.names() == ["shared"]
    assert hidden_entries(store.root) == []
    survivor = seed_of(store.get("shared"))
    assert torch.equal(logits(store.load("shared", bert_base), bert_base.tokenizer), expected[survivor])


def test_racing_new_saves_one_winner(bert_base):
    store = AdapterStore()
    models = {seed: perturbed_lora_model(bert_base, seed=seed) for seed in range(THREADS)}
    winners = []

    def saver(seed):
        def save():
            try:
                store.save_lora("contested", models[seed], seeded_metadata(bert_base, seed))
            except AdapterError as error:
                assert "already exists" in str(error)
            else:
                winners.append(seed)

        return save

    errors = run_in_threads([saver(seed) for seed in models])

    assert errors == []
    assert len(winners) == 1
    assert seed_of(store.get("contested")) == winners[0]
    assert hidden_entries(store.root) == []


def test_mixed_store_traffic(bert_base):
    """Saves, loads, lists, metadata updates and deletes on overlapping names from several threads."""
    store = AdapterStore()
    names = ["red", "green", "blue"]
    seeds = {name: index for index, name in enumerate(names)}
    models = {name: perturbed_lora_model(bert_base, seed=seed) for name, seed in seeds.items()}
    expected = {name: logits(model, bert_base.tokenizer) for name, model in models.items()}
    for name in names:
        store.save_lora(name, models[name], seeded_metadata(bert_base, seeds[name]))
    mismatches = []

    def writer(offset):
        def work():
            rng = random.Random(offset)
            for _ in range(6):
                name = rng.choice(names)
                action = rng.choice(["save", "delete", "update"])
                try:
                    if action == "save":
                        store.save_lora(name, models[name], seeded_metadata(bert_base, seeds[name]), force=True)
                    elif action == "delete":
                        store.delete(name)
                    else:
                        store.update_metadata(name, {"extra": {"touched_by": offset}})
                except AdapterError:
                    pass  # deleted or replaced by another thread meanwhile

        return work

    def reader(offset):
        def work():
            rng = random.Random(100 + offset)
            for _ in range(6):
                name = rng.choice(names)
                try:
                    loaded = store.load(name, bert_base)
                except AdapterError:
                    continue
                if not torch.equal(logits(loaded, bert_base.tokenizer), expected[name]):
                    mismatches.append(name)
                for entry in store.list():
                    if not entry.ok and (store.root / entry.name).exists():
                        mismatches.append(f"{entry.name} listed as broken: {entry.problem}")

        return work

    errors = run_in_threads([writer(0), writer(1), reader(0), reader(1)])

    assert errors == []
    assert mismatches == []
    assert hidden_entries(store.root) == []
    for entry in store.list():
        assert entry.ok, entry.problem
        assert seed_of(entry) == seeds[entry.name]


# ---- data loading


def test_parallel_data_loads(tmp_path):
    """Two sessions pressing "Check data" at once used to race inside tqdm's lock handling in datasets."""
    from lora_playground.data import load_task_data

    paths = [write_csv(tmp_path / f"data-{index}.csv", (f"no{index}", f"yes{index}")) for index in range(8)]
    loaded: dict[Path, list] = {path: [] for path in paths}

    def loader(path):
        return lambda: [loaded[path].append(load_task_data(path).task.label_names) for _ in range(4)]

    errors = run_in_threads([loader(path) for path in paths])

    assert [repr(error) for error in errors] == []
    for index, path in enumerate(paths):
        assert loaded[path] == [[f"no{index}", f"yes{index}"]] * 4


# ---- the job queue


def test_threads_submit_and_cancel_jobs(tmp_path):
    queue = JobQueue(JobStore(tmp_path / "jobs.sqlite3"), concurrency=2, max_active_jobs=1000)

    def echo(context):
        time.sleep(0.02)
        context.report({"step": 1, "value": context.params["value"]})
        context.raise_if_cancelled()
        return {"value": context.params["value"]}

    queue.register("echo", echo)
    queue.start()
    submitted: dict[int, int] = {}
    cancelled: set[int] = set()
    lock = threading.Lock()

    def client(offset):
        def work():
            rng = random.Random(offset)
            for index in range(15):
                value = offset * 1000 + index
                job = queue.submit("echo", {"value": value})
                with lock:
                    submitted[job.id] = value
                if rng.random() < 0.3:
                    queue.cancel(job.id)
                    with lock:
                        cancelled.add(job.id)

        return work

    try:
        errors = run_in_threads([client(offset) for offset in range(THREADS)])
        jobs = [queue.wait(job_id, timeout=120) for job_id in submitted]
    finally:
        queue.shutdown()

    assert errors == []
    assert len(submitted) == THREADS * 15
    assert len({job.id for job in jobs}) == len(submitted)
    for job in jobs:
        assert job.status in FINAL_STATUSES
        assert job.params == {"value": submitted[job.id]}
        if job.status == SUCCEEDED:
            assert job.result == {"value": submitted[job.id]}
            assert job.id not in cancelled or job.started_at is not None
        else:
            assert job.status == CANCELLED, job.error
            assert job.id in cancelled
            assert job.result is None
    assert queue.store.count() == 0


def test_queue_limit_under_racing_submits(tmp_path):
    queue = JobQueue(JobStore(tmp_path / "jobs.sqlite3"), max_active_jobs=5)
    queue.register("idle", lambda context: None)
    accepted, rejected = [], []

    def client():
        for _ in range(5):
            try:
                accepted.append(queue.submit("idle", {}).id)
            except LimitError:
                rejected.append(1)

    errors = run_in_threads([client for _ in range(THREADS)])

    assert errors == []
    assert len(accepted) == 5
    assert len(rejected) == THREADS * 5 - 5
    assert queue.store.count() == 5


# ---- trying adapters while others are deleted and saved


def test_try_requests_during_churn(bert_base, tiny_bert_dir):
    store = AdapterStore()
    names = ["alpha", "beta", "gamma"]
    for seed, name in enumerate(names):
        store.save_lora(name, perturbed_lora_model(bert_base, seed=seed), seeded_metadata(bert_base, seed))
    texts = ["win a free prize now", "see you at lunch", "the meeting moved"]
    expected = {
        (name, text): answer_side_by_side(str(tiny_bert_dir), [name], text, store=store)[0]["probabilities"]
        for name in names
        for text in texts
    }
    churn_model = perturbed_lora_model(bert_base, seed=9)
    wrong = []

    def asker(offset):
        def work():
            for step in range(9):
                name, text = names[(step + offset) % 3], texts[(step * 2 + offset) % 3]
                answer = answer_side_by_side(str(tiny_bert_dir), [name], text, store=store)[0]
                if answer["name"] != name or answer["probabilities"] != pytest.approx(expected[(name, text)], abs=1e-5):
                    wrong.append((name, text, answer))

        return work

    def churner():
        for _ in range(4):
            store.save_lora("churn", churn_model, seeded_metadata(bert_base, 9), force=True)
            answer_side_by_side(str(tiny_bert_dir), ["churn"], texts[0], store=store)
            store.delete("churn")

    errors = run_in_threads([asker(0), asker(1), asker(2), churner])

    assert errors == []
    assert wrong == []
    assert store.names() == names


# ---- several HTTP sessions against the real app


def write_csv(path: Path, labels: tuple[str, str], count: int = 40) -> Path:
    rows = ["text,label"] + [f"message {index} about {labels[index % 2]},{labels[index % 2]}" for index in range(count)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def busy_app(tiny_bert_dir, tmp_path_factory):
    """The app on a tiny BERT with five stored adapters: three to try and two to delete."""
    workdir = tmp_path_factory.mktemp("busy-app")
    base = get_shared_base(str(tiny_bert_dir))
    store = AdapterStore(workdir / "adapters")
    for seed, name in enumerate(["alpha", "beta", "gamma", "doomed-1", "doomed-2"]):
        store.save_lora(name, perturbed_lora_model(base, seed=seed), seeded_metadata(base, seed))
    with app_process(workdir, ["--base", str(tiny_bert_dir)]) as app:
        yield app


def test_http_sessions_at_once(busy_app, tiny_bert_dir, tmp_path):
    from gradio_client import Client, handle_file

    from lora_playground.ui.try_models import results_frames

    base_name = str(tiny_bert_dir)
    store = AdapterStore(busy_app.adapters_dir)
    texts = {"alpha": "win a free prize now", "beta": "see you at lunch", "gamma": "the meeting moved"}
    expected = {
        name: results_frames(answer_side_by_side(base_name, [name], text, store=store))[0].iloc[0]
        for name, text in texts.items()
    }
    data_files = {"trained-a": write_csv(tmp_path / "a.csv", ("ham", "spam")), "trained-b": write_csv(tmp_path / "b.csv", ("cats", "dogs"))}
    problems: list[str] = []

    def trainer(run_name: str):
        def work():
            client = Client(busy_app.url, verbose=False)
            api = client.view_api(return_format="dict", print_info=False)
            client.predict(*endpoint_arguments(api, "/check", {"Data source": "Upload a file", "Data file": handle_file(data_files[run_name])}), api_name="/check")
            options = {"Store as": run_name, "Max steps": 2, "Batch size": 4, "Max tokens per example": 32, "Epochs": 1}
            client.predict(*endpoint_arguments(api, "/start", options), api_name="/start")

        return work

    def tryer(name: str):
        def work():
            client = Client(busy_app.url, verbose=False)
            api = client.view_api(return_format="dict", print_info=False)
            for _ in range(3):
                arguments = endpoint_arguments(
                    api, "/run", {"Runs": [name], "Input text": texts[name], "Also the untrained base": False, "Also full finetunes": False}
                )
                table = client.predict(*arguments, api_name="/run")[0]
                rows = [dict(zip(table["headers"], row)) for row in table["data"]]
                if [row["model"] for row in rows] != [name]:
                    problems.append(f"Try {name} answered for {[row['model'] for row in rows]}")
                elif (rows[0]["output"], rows[0]["top classes"]) != (expected[name]["output"], expected[name]["top classes"]):
                    problems.append(f"Try {name} gave {rows[0]} instead of {dict(expected[name])}")

        return work

    def deleter():
        client = Client(busy_app.url, verbose=False)
        api = client.view_api(return_format="dict", print_info=False)
        for name in ("doomed-1", "doomed-2"):
            client.predict(*endpoint_arguments(api, "/delete", {"Entry": name, "Type the entry name": name}), api_name="/delete")

    workers = [trainer("trained-a"), trainer("trained-b"), tryer("alpha"), tryer("beta"), tryer("gamma"), deleter]
    with ThreadPoolExecutor(len(workers)) as pool:
        futures = [pool.submit(worker) for worker in workers]
        errors = [future.exception(timeout=300) for future in futures]

    assert [repr(error) for error in errors if error is not None] == []
    assert problems == []

    jobs_store = JobStore(busy_app.runs_dir / "jobs.sqlite3")
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and jobs_store.count() > 0:
        time.sleep(0.5)
    jobs = {job.params.get("name"): job for job in jobs_store.list()}
    assert sorted(jobs) == ["trained-a", "trained-b"]
    for run_name, job in jobs.items():
        assert job.status == SUCCEEDED, job.error
        assert job.result["adapter"] == run_name

    assert busy_app.process.poll() is None, busy_app.log()[-3000:]
    assert store.names() == ["alpha", "beta", "gamma", "trained-a", "trained-b"]
    assert hidden_entries(store.root) == []
    # Each session trained on its own upload, so each entry carries its own labels.
    assert store.get("trained-a").metadata.label_names == ["ham", "spam"]
    assert store.get("trained-b").metadata.label_names == ["cats", "dogs"]
    assert "Traceback" not in busy_app.log()
