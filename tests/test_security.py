"""What a shared server must not let in: pickle code, model repo code, paths out of the store, leaked tokens.

Malicious files here really try to act: a crafted pickle opens a marker file when unpickled without
`weights_only`, and custom model code writes a marker when imported. Each test checks that the marker
was never written. The last section starts the real app and checks its binding and its login.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import httpx
import huggingface_hub
import pytest
import torch

from app_process import app_process, endpoint_arguments, listening_addresses
from hub_server import HubServer
from lora_helpers import LABELS, logits, metadata_for, perturbed_lora_model
from lora_playground.adapters import AdapterStore
from lora_playground.adapters.store import validate_name
from lora_playground.cli import build_parser as build_cli_parser
from lora_playground.errors import AdapterError, CancelledError, HubError, ModelError, PlaygroundError
from lora_playground.hub import pull_adapter, push_adapter
from lora_playground.jobs import FAILED, JobQueue, JobStore, strip_secrets
from lora_playground.models import get_shared_base, resolve_base
from lora_playground.ui.server import RedactingFormatter, parse_options

HF_SHAPED_TOKEN = "hf_" + "Zx9" * 12
# A self-hosted Hub may issue tokens without the hf_ prefix; only exact-value redaction catches those.
PLAIN_TOKEN = "plain-secret-value-4711"
BASE_HUB_ID = "test-org/tiny-bert"


class PickleExploit:
    """Unpickling this object (without weights_only) creates the file `marker`."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def write_malicious_pickle(path: Path, marker: Path, tensors: dict[str, torch.Tensor]) -> None:
    torch.save({**tensors, "payload": PickleExploit(marker)}, path)


@pytest.fixture
def marker(tmp_path) -> Path:
    path = tmp_path / "code-ran"
    yield path
    assert not path.exists(), "untrusted code ran during the test"


@pytest.fixture
def bert_base(tiny_bert_dir):
    from dataclasses import replace

    base = get_shared_base(str(tiny_bert_dir))
    return replace(base, spec=replace(base.spec, hub_id=BASE_HUB_ID))


@pytest.fixture
def no_outside_hub(monkeypatch, tmp_path):
    """No Hub token from the environment or a saved login, and no telemetry request to huggingface.co."""
    for variable in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_ENDPOINT"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(tmp_path / "no-saved-token"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_TELEMETRY", True)


def pickle_only_entry(store: AdapterStore, base, marker: Path, name: str = "pickled"):
    """Save a real entry, then replace its safetensors weights by a malicious pickle with the same tensors."""
    from safetensors.torch import load_file

    entry = store.save_lora(name, perturbed_lora_model(base), metadata_for(base))
    weights = entry.path / "adapter_model.safetensors"
    write_malicious_pickle(entry.path / "adapter_model.bin", marker, load_file(weights))
    weights.unlink()
    return entry


# ---- pickle files


def test_pickle_entry_rejected_by_default(bert_base, marker):
    store = AdapterStore()
    pickle_only_entry(store, bert_base, marker)

    with pytest.raises(AdapterError, match="allow_pickle=True") as caught:
        store.load("pickled", bert_base)
    assert "pickle" in str(caught.value)
    listed = store.list()
    assert [entry.name for entry in listed] == ["pickled"]
    assert not listed[0].ok


def test_allowed_pickle_runs_no_code(bert_base, marker):
    """allow_pickle opts in to pickle files, but they are read with weights_only, so objects are rejected."""
    store = AdapterStore()
    pickle_only_entry(store, bert_base, marker)

    with pytest.raises(PlaygroundError):
        store.load("pickled", bert_base, allow_pickle=True)


def test_install_skips_pickle_beside_safetensors(bert_base, marker, tmp_path):
    source_store = AdapterStore(tmp_path / "elsewhere")
    entry = source_store.save_lora("clean", perturbed_lora_model(bert_base), metadata_for(bert_base))
    write_malicious_pickle(entry.path / "adapter_model.bin", marker, {})
    (entry.path / "training_args.pt").write_bytes((entry.path / "adapter_model.bin").read_bytes())

    installed = AdapterStore().install_from_folder(entry.path, "installed")

    assert sorted(path.name for path in installed.path.iterdir()) == [
        "README.md",
        "adapter_config.json",
        "adapter_model.safetensors",
        "metadata.json",
    ]


def test_full_entry_pickle_rejected(bert_base, marker):
    store = AdapterStore()
    model = bert_base.full_copy("classification", len(LABELS), LABELS)
    entry = store.save_full("full-pickled", model, bert_base.tokenizer, metadata_for(bert_base, kind="full"))
    write_malicious_pickle(entry.path / "pytorch_model.bin", marker, {})
    (entry.path / "model.safetensors").unlink()

    with pytest.raises(AdapterError, match="pytorch_model.bin"):
        store.load("full-pickled", bert_base)


def test_hub_pickle_not_downloaded(bert_base, marker, no_outside_hub):
    with HubServer() as hub:
        _pickle_repo(hub, bert_base, marker, "mallory/evil-lora")

        with pytest.raises(AdapterError, match="only pickle weights"):
            pull_adapter("mallory/evil-lora", endpoint=hub.url, base=bert_base)

        downloaded = [path for method, path, _ in hub.request_log if "/resolve/" in path]
    assert downloaded == []
    assert AdapterStore().names() == []


def test_hub_allowed_pickle_runs_no_code(bert_base, marker, no_outside_hub):
    with HubServer() as hub:
        _pickle_repo(hub, bert_base, marker, "mallory/evil-lora")

        with pytest.raises(AdapterError, match="Cannot read the pickle weights"):
            pull_adapter("mallory/evil-lora", endpoint=hub.url, base=bert_base, allow_pickle=True)

    store = AdapterStore()
    assert store.names() == []
    assert [path.name for path in store.root.iterdir()] == []


def _pickle_repo(hub: HubServer, base, marker: Path, repo_id: str) -> None:
    from safetensors.torch import load_file

    folder = AdapterStore(marker.parent / "publisher").save_lora("evil", perturbed_lora_model(base), metadata_for(base)).path
    pickled = marker.parent / "adapter_model.bin"
    write_malicious_pickle(pickled, marker, load_file(folder / "adapter_model.safetensors"))
    hub.create_repo_with_files(
        repo_id, {"adapter_config.json": (folder / "adapter_config.json").read_bytes(), "adapter_model.bin": pickled.read_bytes()}
    )


# ---- custom model code (trust_remote_code)


CUSTOM_CONFIG_CODE = """
from pathlib import Path
Path({marker!r}).write_text("configuration module imported")
from transformers import BertConfig

class EvilConfig(BertConfig):
    model_type = "evil-bert"
"""


def custom_code_folder(source: Path, destination: Path, marker: Path, model_type: str) -> Path:
    """Copy a model folder and point its config at custom code (auto_map) that writes `marker` on import."""
    shutil.copytree(source, destination)
    config = json.loads((destination / "config.json").read_text())
    config["model_type"] = model_type
    config["auto_map"] = {"AutoConfig": "configuration_evil.EvilConfig", "AutoModel": "configuration_evil.EvilModel"}
    (destination / "config.json").write_text(json.dumps(config))
    (destination / "configuration_evil.py").write_text(CUSTOM_CONFIG_CODE.format(marker=str(marker)))
    return destination


def test_custom_architecture_not_loaded(tiny_bert_dir, tmp_path, marker):
    folder = custom_code_folder(tiny_bert_dir, tmp_path / "evil-model", marker, "evil-bert")

    with pytest.raises(ModelError, match="evil-model"):
        resolve_base(folder)
    with pytest.raises(ModelError):
        get_shared_base(folder)


def test_known_architecture_ignores_custom_code(tiny_bert_dir, tmp_path, marker):
    folder = custom_code_folder(tiny_bert_dir, tmp_path / "bert-with-code", marker, "bert")

    base = get_shared_base(folder)

    assert type(base.model).__name__ == "BertModel"
    assert base.trust_remote_code is False


def test_trust_remote_code_is_passed_through(tiny_bert_dir, tmp_path, monkeypatch):
    """The opt-in reaches transformers: with it, the folder's own configuration code is imported."""
    import sys

    import transformers.dynamic_module_utils as dynamic_modules

    modules_cache = tmp_path / "modules-cache"
    monkeypatch.setattr(dynamic_modules, "HF_MODULES_CACHE", str(modules_cache))
    monkeypatch.setattr(sys, "path", list(sys.path))
    ran = tmp_path / "trusted-code-ran"
    folder = custom_code_folder(tiny_bert_dir, tmp_path / "trusted", ran, "evil-bert")

    # The custom config loads, and only then is its unknown model type rejected.
    with pytest.raises(ModelError, match="evil-bert"):
        resolve_base(folder, trust_remote_code=True)

    assert ran.read_text() == "configuration module imported"


def test_full_entry_custom_code_not_run(bert_base, marker):
    store = AdapterStore()
    model = bert_base.full_copy("classification", len(LABELS), LABELS)
    entry = store.save_full("full-with-code", model, bert_base.tokenizer, metadata_for(bert_base, kind="full"))
    config = json.loads((entry.path / "config.json").read_text())
    config["auto_map"] = {"AutoConfig": "configuration_evil.EvilConfig", "AutoModelForSequenceClassification": "configuration_evil.EvilModel"}
    (entry.path / "config.json").write_text(json.dumps(config))
    (entry.path / "configuration_evil.py").write_text(CUSTOM_CONFIG_CODE.format(marker=str(marker)))

    loaded = store.load("full-with-code", bert_base)

    assert type(loaded).__name__ == "BertForSequenceClassification"


def test_cli_trust_remote_code_off_by_default():
    arguments = build_cli_parser().parse_args(["train", "--task", "sms-spam", "--name", "run"])
    assert arguments.trust_remote_code is False
    opted_in = build_cli_parser().parse_args(["train", "--task", "sms-spam", "--name", "run", "--trust-remote-code"])
    assert opted_in.trust_remote_code is True


# ---- names that try to leave the store


ESCAPING_NAMES = [
    "../outside",
    "../../etc/passwd",
    "a/b",
    "/tmp/absolute",
    "..",
    ".",
    ".hidden",
    "a\\b",
    "name\x00null",
    "name\n",
    "line\nbreak",
    "..\u2215outside",  # U+2215 DIVISION SLASH looks like "/"
    "..\uff0foutside",  # U+FF0F FULLWIDTH SOLIDUS
    "\uff0e\uff0e",  # fullwidth ".."; NFKC normalization would turn it into ".."
    "spam\u202egpj",  # right-to-left override shows another name
    "аdapter",  # Cyrillic "а" posing as Latin "a"
    "e\u0301",
    "~",
    "~/adapters",
    "",
    " spaced",
]


@pytest.mark.parametrize("name", ESCAPING_NAMES)
def test_escaping_name_rejected(name):
    with pytest.raises(AdapterError) as caught:
        validate_name(name)
    assert repr(name) in str(caught.value)


@pytest.mark.parametrize("name", ["../outside", "a/b", "/tmp/absolute-target", "name\n"])
def test_store_operations_stay_inside(name, bert_base, tmp_path):
    store = AdapterStore(tmp_path / "store")
    source = AdapterStore(tmp_path / "source").save_lora("source", perturbed_lora_model(bert_base), metadata_for(bert_base))
    before = sorted(str(path) for path in tmp_path.rglob("*"))
    operations = {
        "save_lora": lambda: store.save_lora(name, perturbed_lora_model(bert_base), metadata_for(bert_base)),
        "install_from_folder": lambda: store.install_from_folder(source.path, name),
        "get": lambda: store.get(name),
        "load": lambda: store.load(name, bert_base),
        "delete": lambda: store.delete(name),
        "update_metadata": lambda: store.update_metadata(name, {"metrics": {}}),
    }
    for operation, call in operations.items():
        with pytest.raises(AdapterError, match="Invalid adapter name"):
            call()

    assert sorted(str(path) for path in tmp_path.rglob("*")) == before
    assert not Path("/tmp/absolute-target").exists()


def test_symlinked_entry_cannot_be_used_or_deleted(bert_base, tmp_path):
    store = AdapterStore()
    outside = AdapterStore(tmp_path / "outside").save_lora("victim", perturbed_lora_model(bert_base), metadata_for(bert_base))
    (store.root / "link").symlink_to(outside.path, target_is_directory=True)

    for call in (lambda: store.get("link"), lambda: store.load("link", bert_base), lambda: store.delete("link")):
        with pytest.raises(AdapterError, match="link"):
            call()
    listed = {entry.name: entry for entry in store.list()}
    assert not listed["link"].ok
    assert sorted(path.name for path in outside.path.iterdir()) == [
        "README.md",
        "adapter_config.json",
        "adapter_model.safetensors",
        "metadata.json",
    ]


@pytest.mark.parametrize("repo_id", ["../etc", "alice/../../etc", "alice/x/../../y", "/abs/path", "alice/.."])
def test_hub_repo_ids_cannot_escape(repo_id, bert_base, no_outside_hub):
    with HubServer() as hub:
        with pytest.raises(HubError, match="Invalid Hub repo id"):
            pull_adapter(repo_id, endpoint=hub.url, base=bert_base)
        with pytest.raises(HubError, match="Invalid Hub repo id"):
            push_adapter("anything", repo_id, endpoint=hub.url, token=HF_SHAPED_TOKEN)
        assert hub.request_log == []
    assert AdapterStore().names() == []


@pytest.mark.parametrize("name", ["../outside", "a/b", "/tmp/absolute"])
def test_pull_name_cannot_escape(name, bert_base, no_outside_hub):
    with HubServer() as hub:
        with pytest.raises(AdapterError, match="Invalid adapter name"):
            pull_adapter("alice/spam-lora", endpoint=hub.url, base=bert_base, name=name)
        assert hub.request_log == []


# ---- tokens


def database_bytes(store: JobStore) -> bytes:
    """The job database with its write-ahead log, where fresh rows sit before a checkpoint."""
    files = [store.path, Path(f"{store.path}-wal"), Path(f"{store.path}-shm")]
    return b"".join(path.read_bytes() for path in files if path.exists())


@pytest.mark.parametrize("token", [HF_SHAPED_TOKEN, PLAIN_TOKEN])
def test_job_records_never_hold_tokens(token, tmp_path, caplog):
    store = JobStore(tmp_path / "jobs.sqlite3")
    queue = JobQueue(store)

    def leaky(context):
        context.report({"step": 1, "note": f"using {context.secrets['token']}"})
        raise HubError(f"The Hub rejected {context.secrets['token']}.")

    def crashing(context):
        raise RuntimeError(f"request failed with Authorization: Bearer {context.secrets['token']}")

    queue.register("leaky", leaky)
    queue.register("crashing", crashing)
    queue.start()
    caplog.set_level(logging.DEBUG)
    try:
        params = {"repo_id": "alice/x", "hf_token": token, "Authorization": f"Bearer {token}", "nested": {"api_key": token}}
        failed = queue.wait(queue.submit("leaky", params, secrets={"token": token}).id, timeout=30)
        crashed = queue.wait(queue.submit("crashing", {}, secrets={"token": token}).id, timeout=30)
    finally:
        queue.shutdown()

    assert failed.status == FAILED
    assert failed.error == "The Hub rejected ***."
    assert failed.params == {"repo_id": "alice/x", "nested": {}}
    assert crashed.status == FAILED
    assert "***" in crashed.error
    assert queue.events(failed.id)[0]["note"] == "using ***"
    assert token not in caplog.text
    assert token.encode() not in database_bytes(store)


def test_result_holds_no_secret(tmp_path):
    queue = JobQueue(JobStore(tmp_path / "jobs.sqlite3"))
    queue.register("push", lambda context: {"summary": f"pushed with {context.secrets['token']}", "token": "x", "tokens_seen": 5})
    queue.start()
    try:
        job = queue.wait(queue.submit("push", {}, secrets={"token": PLAIN_TOKEN}).id, timeout=30)
    finally:
        queue.shutdown()
    assert job.result == {"summary": "pushed with ***", "tokens_seen": 5}


@pytest.mark.parametrize("key", ["token", "hf_token", "HF_TOKEN", "accessToken", "api_key", "apiKey", "password", "secrets", "Authorization", "client_secret", "credentials", "auth"])
def test_secret_keys_removed(key):
    assert strip_secrets({key: "value", "kept": 1}) == {"kept": 1}


@pytest.mark.parametrize("key", ["tokens_per_s", "tokens_seen", "max_new_tokens", "tokenizer", "author", "authors", "step"])
def test_ordinary_keys_kept(key):
    assert strip_secrets({key: 7}) == {key: 7}


def test_training_progress_keeps_token_counts(tmp_path):
    """The Train screen shows tokens/s from the stored progress, so those keys must survive secret stripping."""
    queue = JobQueue(JobStore(tmp_path / "jobs.sqlite3"))
    progress = {"event": "step", "step": 3, "max_steps": 10, "tokens_seen": 512, "tokens_per_s": 128.0, "eta_s": 7.0}
    queue.register("train", lambda context: context.report(progress))
    queue.start()
    try:
        job = queue.wait(queue.submit("train", {}).id, timeout=30)
    finally:
        queue.shutdown()
    assert job.progress == progress


def test_token_pasted_into_plain_field_not_stored(tmp_path):
    store = JobStore(tmp_path / "jobs.sqlite3")
    queue = JobQueue(store)
    queue.register("pull", lambda context: None)

    job = queue.submit("pull", {"repo_id": HF_SHAPED_TOKEN, "revision": f"main {HF_SHAPED_TOKEN}"})

    assert job.params == {"repo_id": "***", "revision": "main ***"}
    assert HF_SHAPED_TOKEN.encode() not in database_bytes(store)


def test_cancelled_job_message_redacted(tmp_path):
    queue = JobQueue(JobStore(tmp_path / "jobs.sqlite3"))

    def cancelled(context):
        raise CancelledError(f"stopped while sending {context.secrets['token']}")

    queue.register("cancelled", cancelled)
    queue.start()
    try:
        job = queue.wait(queue.submit("cancelled", {}, secrets={"token": PLAIN_TOKEN}).id, timeout=30)
    finally:
        queue.shutdown()
    assert job.error == "stopped while sending ***"


@pytest.mark.parametrize("token", [HF_SHAPED_TOKEN, PLAIN_TOKEN])
def test_hub_errors_and_logs_hide_token(token, bert_base, caplog, no_outside_hub):
    store = AdapterStore()
    store.save_lora("spam-lora", perturbed_lora_model(bert_base), metadata_for(bert_base))
    caplog.set_level(logging.DEBUG)
    with HubServer(tokens={"hf_" + "Ok1" * 12: ("alice", "write")}) as hub:
        with pytest.raises(HubError) as pushed:
            push_adapter("spam-lora", "alice/spam-lora", endpoint=hub.url, token=token)
        with pytest.raises(HubError) as pulled:
            pull_adapter("alice/spam-lora", endpoint=hub.url, token=token, base=bert_base)

    for error in (pushed.value, pulled.value):
        assert token not in str(error)
        assert "rejected the token" in str(error)
    assert token not in caplog.text


def test_pushed_files_and_entry_hold_no_token(bert_base, caplog, no_outside_hub):
    token = "hf_" + "Ok1" * 12
    store = AdapterStore()
    store.save_lora("spam-lora", perturbed_lora_model(bert_base), metadata_for(bert_base))
    caplog.set_level(logging.DEBUG)
    with HubServer(tokens={token: ("alice", "write")}) as hub:
        push_adapter("spam-lora", "alice/spam-lora", endpoint=hub.url, token=token)
        pull_adapter("alice/spam-lora", endpoint=hub.url, token=token, base=bert_base, name="pulled")
        published = hub.repos["alice/spam-lora"].head().files

    assert set(published) >= {"adapter_config.json", "adapter_model.safetensors", "metadata.json", "README.md"}
    for path, content in published.items():
        assert token.encode() not in content, path
    for path in store.root.rglob("*"):
        if path.is_file():
            assert token.encode() not in path.read_bytes(), path
    assert token not in caplog.text
    expected = logits(perturbed_lora_model(bert_base), bert_base.tokenizer)
    assert torch.equal(logits(store.load("pulled", bert_base), bert_base.tokenizer), expected)


def test_app_log_formatter_redacts_tokens():
    formatter = RedactingFormatter("%(levelname)s %(message)s")
    record = logging.LogRecord("lora_playground", logging.ERROR, __file__, 1, "header Authorization: Bearer %s", (HF_SHAPED_TOKEN,), None)
    assert formatter.format(record) == "ERROR header Authorization: Bearer ***"


# ---- binding and login of the app


def test_options_default_loopback_no_login():
    options = parse_options([], environ={})
    assert options.host == "127.0.0.1"
    assert options.share is False
    assert options.auth == []
    assert options.is_exposed is False


@pytest.mark.parametrize(
    "argv, environ, exposed",
    [
        (["--host", "localhost"], {}, False),
        (["--host", "::1"], {}, False),
        (["--host", "0.0.0.0"], {}, True),
        (["--host", "192.168.1.20"], {}, True),
        ([], {"GRADIO_SERVER_NAME": "0.0.0.0"}, True),
        (["--share"], {}, True),
        ([], {"LORA_PLAYGROUND_SHARE": "1"}, True),
    ],
)
def test_exposure_is_detected(argv, environ, exposed):
    assert parse_options(argv, environ=environ).is_exposed is exposed


LOGIN = {"username": "alice", "password": "correct horse:battery"}


@pytest.fixture(scope="module")
def guarded_app(tiny_bert_dir, tmp_path_factory):
    """The real app started with no --host flag, a login from an auth file and a 1 MiB upload limit."""
    workdir = tmp_path_factory.mktemp("guarded-app")
    auth_file = workdir / "logins.txt"
    auth_file.write_text(f"# one login per line\n{LOGIN['username']}:{LOGIN['password']}\n", encoding="utf-8")
    arguments = ["--base", str(tiny_bert_dir), "--auth-file", str(auth_file)]
    with app_process(workdir, arguments, extra_env={"LORA_PLAYGROUND_MAX_UPLOAD_MB": "1"}) as app:
        yield app


@pytest.fixture
def logged_in(guarded_app):
    with httpx.Client(base_url=guarded_app.url, timeout=60) as client:
        assert client.post("/login", data=LOGIN).status_code == 200
        yield client


def call_endpoint(client: httpx.Client, api_name: str, values: dict) -> tuple[str, str]:
    """Call a named endpoint over Gradio's HTTP API and return the final server-sent event's type and data."""
    arguments = endpoint_arguments(client.get("/gradio_api/info").json(), api_name, values)
    event_id = client.post(f"/gradio_api/call{api_name}", json={"data": arguments}).json()["event_id"]
    stream = client.get(f"/gradio_api/call{api_name}/{event_id}").text
    events = [block for block in stream.strip().split("\n\n") if block.startswith("event:")]
    kind, _, data = events[-1].partition("\n")
    return kind.removeprefix("event:").strip(), data.removeprefix("data:").strip()


def test_app_listens_on_loopback_only(guarded_app):
    assert listening_addresses(guarded_app.port) == ["127.0.0.1"]


def test_app_requires_login(guarded_app):
    with httpx.Client(base_url=guarded_app.url, timeout=30) as client:
        assert client.get("/config").status_code == 401
        assert client.get("/gradio_api/info").status_code == 401
        upload = client.post("/gradio_api/upload", files={"files": ("data.csv", b"text,label\nhi,a\n")})
        assert upload.status_code == 401

        wrong = client.post("/login", data={"username": "alice", "password": "wrong"})
        assert wrong.status_code == 400
        assert client.get("/config").status_code == 401

        right = client.post("/login", data=LOGIN)
        assert right.status_code == 200
        assert client.get("/config").status_code == 200


def test_app_serves_no_server_files(guarded_app, logged_in, bert_base):
    store = AdapterStore(guarded_app.adapters_dir)
    entry = store.save_lora("private", perturbed_lora_model(bert_base), metadata_for(bert_base))
    for path in ("/etc/passwd", str(entry.path / "metadata.json"), str(guarded_app.runs_dir / "jobs.sqlite3"), str(Path("app.py").resolve())):
        response = logged_in.get(f"/gradio_api/file={path}")
        assert response.status_code in (403, 404), (path, response.status_code)


def test_app_rejects_upload_over_limit(logged_in):
    too_big = logged_in.post("/gradio_api/upload", files={"files": ("big.csv", b"text,label\n" + b"x" * (1024 * 1024))})
    assert too_big.status_code == 413
    assert "1048576 bytes" in too_big.text

    small = logged_in.post("/gradio_api/upload", files={"files": ("small.csv", b"text,label\nhi,a\n")})
    assert small.status_code == 200


def test_app_reads_only_uploads(guarded_app, logged_in, tmp_path):
    """A request naming a server path directly is rejected; the same file uploaded first is read."""
    rows = "".join(f"message {index},{'ab'[index % 2]}\n" for index in range(40))
    outside = tmp_path / "server-side.csv"
    outside.write_text("text,label\n" + rows, encoding="utf-8")

    def check(path: str) -> tuple[str, str]:
        file_data = {"path": path, "orig_name": "data.csv", "meta": {"_type": "gradio.FileData"}}
        return call_endpoint(logged_in, "/check", {"Data source": "Upload a file", "Data file": file_data})

    kind, _ = check(str(outside))
    assert kind == "error"
    assert "because it was not uploaded by a user" in guarded_app.log()
    assert f"from {outside}" not in guarded_app.log()

    uploaded = logged_in.post("/gradio_api/upload", files={"files": ("data.csv", outside.read_bytes())}).json()[0]
    kind, data = check(uploaded)
    assert kind == "complete"
    assert "Ready:" in data


def test_app_log_hides_password(guarded_app):
    assert "correct horse" not in guarded_app.log()
