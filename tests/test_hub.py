"""Push, pull and list adapters against a Hub-compatible server on 127.0.0.1 (tests/hub_server.py)."""

import json
import logging
import os
import socket
import tempfile
import time
from dataclasses import replace

import huggingface_hub
import pytest
import torch
import yaml
from huggingface_hub import ModelCard
from peft import LoraConfig, get_peft_model
from safetensors.torch import load_file, save_file

from hub_server import HubServer
from lora_playground.adapters import AdapterMetadata, AdapterStore, BaseModelRef
from lora_playground.errors import AdapterError, HubError
from lora_playground.hub import list_hub_adapters, pull_adapter, push_adapter
from lora_playground.models import get_shared_base
from lora_playground.training.config import TrainConfig

WRITE_TOKEN = "hf_" + "W1" * 17
READ_TOKEN = "hf_" + "R2" * 17
BOB_TOKEN = "hf_" + "B3" * 17
WRONG_TOKEN = "hf_" + "X9" * 17
BASE_HUB_ID = "test-org/tiny-llama"
LABELS = ["ham", "spam", "other"]
TEXTS = ["win a free prize now", "see you at lunch", "the meeting moved to 3pm", "ok"]


class LoopbackOnly:
    """A socket.getaddrinfo replacement that rejects and records every host other than the loopback."""

    def __init__(self):
        self.blocked: list[str] = []
        self._real = socket.getaddrinfo

    def getaddrinfo(self, host, *args, **kwargs):
        if host not in ("127.0.0.1", "localhost", "::1"):
            self.blocked.append(host)
            raise OSError(f"the test blocked a connection to {host}")
        return self._real(host, *args, **kwargs)


@pytest.fixture(autouse=True)
def no_outside_network(monkeypatch, tmp_path):
    """Keep the real Hub out: no token from the environment or a login, and no connection off 127.0.0.1."""
    for variable in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE", "HF_ENDPOINT"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(tmp_path / "no-saved-token"))
    # Without HF_HUB_DISABLE_TELEMETRY, huggingface_hub 2.4 fetches its agent-harness list from the
    # import-time endpoint (huggingface.co) once per process to build its user agent.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_TELEMETRY", True)
    guard = LoopbackOnly()
    monkeypatch.setattr(socket, "getaddrinfo", guard.getaddrinfo)
    yield guard
    assert guard.blocked == [], f"the code tried to reach {guard.blocked}"


@pytest.fixture
def hub():
    tokens = {WRITE_TOKEN: ("alice", "write"), READ_TOKEN: ("alice", "read"), BOB_TOKEN: ("bob", "write")}
    with HubServer(tokens=tokens, orgs={"alice": ["lab"]}) as server:
        yield server


@pytest.fixture
def llama_base(tiny_llama_dir):
    """The tiny Llama as a shared base that records a Hub id, as the built-in bases do."""
    base = get_shared_base(str(tiny_llama_dir))
    return replace(base, spec=replace(base.spec, hub_id=BASE_HUB_ID))


@pytest.fixture
def wide_llama_base(tiny_llama_dir, tmp_path_factory):
    """A Llama with hidden size 48 instead of 32: same module names, other shapes."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    folder = tmp_path_factory.mktemp("wide-llama")
    config = LlamaConfig.from_pretrained(tiny_llama_dir)
    config.hidden_size = 48
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny_llama_dir).save_pretrained(folder)
    base = get_shared_base(str(folder))
    return replace(base, spec=replace(base.spec, hub_id="test-org/wide-llama"))


@pytest.fixture
def store():
    return AdapterStore()


def _save_adapter(store, base, name="sms-lora"):
    """Store a LoRA classification adapter whose weights all differ from their initial values."""
    torch.manual_seed(3)
    model = base.classification_model(len(LABELS), LABELS)
    config = LoraConfig(task_type="SEQ_CLS", r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], modules_to_save=["score"])
    peft_model = get_peft_model(model, config)
    with torch.no_grad():
        for parameter_name, parameter in peft_model.named_parameters():
            if "lora_" in parameter_name:
                parameter.normal_(std=0.5)
    metadata = AdapterMetadata(
        name=name,
        kind="lora",
        task={"name": "sms", "type": "classification", "label_names": LABELS, "source": "/home/alice/private/sms.csv", "license": "cc-by-4.0", "hub_dataset": None},
        base_model=BaseModelRef.from_shared_base(base),
        train_config=TrainConfig(rank=4, alpha=8.0, target_modules=["q_proj", "v_proj"]).to_dict(),
        metrics={"accuracy": 0.75, "macro_f1": 0.7},
        cost={"trainable_parameters": 4096},
        data_fingerprint="cd" * 32,
    )
    entry = store.save_lora(name, peft_model, metadata)
    return entry, peft_model.eval()


def _logits(model, base):
    inputs = base.tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        return model(**inputs).logits


def _pushed_files(hub, repo_id):
    return hub.repos[repo_id].head().files


# ---- push and pull


def test_push_then_pull_is_identical(hub, store, llama_base):
    entry, original = _save_adapter(store, llama_base)
    result = push_adapter("sms-lora", "alice/sms-lora", token=WRITE_TOKEN, endpoint=hub.url)

    pulled = pull_adapter("alice/sms-lora", name="sms-lora-copy", endpoint=hub.url, base=llama_base)

    original_weights = load_file(entry.path / "adapter_model.safetensors")
    pulled_weights = load_file(pulled.path / "adapter_model.safetensors")
    assert sorted(original_weights) == sorted(pulled_weights)
    for key, tensor in original_weights.items():
        assert torch.equal(tensor, pulled_weights[key]), key
    assert (entry.path / "adapter_model.safetensors").read_bytes() == (pulled.path / "adapter_model.safetensors").read_bytes()

    reloaded = store.load("sms-lora-copy", llama_base)
    assert torch.equal(_logits(original, llama_base), _logits(reloaded, llama_base))
    assert not torch.equal(_logits(original, llama_base), _logits(llama_base.classification_model(3, LABELS), llama_base))

    provenance = pulled.metadata.provenance
    assert provenance.source == "hub"
    assert provenance.repo_id == "alice/sms-lora"
    assert provenance.revision == "main"
    assert provenance.commit == result.commit_id
    assert pulled.metadata.label_names == LABELS
    assert pulled.metadata.metrics == {"accuracy": 0.75, "macro_f1": 0.7}


def test_push_is_one_commit(hub, store, llama_base):
    _save_adapter(store, llama_base)

    result = push_adapter("sms-lora", "alice/sms-lora", token=WRITE_TOKEN, endpoint=hub.url)

    repo = hub.repos["alice/sms-lora"]
    assert len(repo.commits) == 2  # the repo's initial commit, then the push
    head = repo.head()
    assert head.oid == result.commit_id
    assert len(result.commit_id) == 40
    assert result.repo_url == f"{hub.url}/alice/sms-lora"
    assert result.files == ["README.md", "adapter_config.json", "adapter_model.safetensors", "metadata.json"]
    assert set(head.files) == {".gitattributes", *result.files}
    commit_posts = [path for method, path, _ in hub.request_log if method == "POST" and "/commit/" in path]
    assert commit_posts == ["/api/models/alice/sms-lora/commit/main"]
    assert not repo.private


def test_pushed_config_names_hub_id(hub, store, llama_base, tiny_llama_dir):
    entry, _ = _save_adapter(store, llama_base)
    push_adapter("sms-lora", "alice/sms-lora", token=WRITE_TOKEN, endpoint=hub.url)
    files = _pushed_files(hub, "alice/sms-lora")

    config = json.loads(files["adapter_config.json"])
    assert config["base_model_name_or_path"] == BASE_HUB_ID
    metadata = json.loads(files["metadata.json"])
    assert metadata["base_model"]["hub_id"] == BASE_HUB_ID
    assert metadata["base_model"]["name"] == BASE_HUB_ID
    assert metadata["task"]["source"] == "local file sms.csv"
    for content in files.values():
        assert str(tiny_llama_dir).encode() not in content
        assert b"/home/alice" not in content


def test_local_base_needs_hub_id(hub, store, tiny_llama_dir):
    base = get_shared_base(str(tiny_llama_dir))
    _save_adapter(store, base)

    with pytest.raises(AdapterError, match="base_hub_id") as error:
        push_adapter("sms-lora", "alice/sms-lora", token=WRITE_TOKEN, endpoint=hub.url)
    assert str(tiny_llama_dir) in str(error.value)
    assert hub.request_log == []

    push_adapter("sms-lora", "alice/sms-lora", token=WRITE_TOKEN, endpoint=hub.url, base_hub_id="test-org/base")
    assert json.loads(_pushed_files(hub, "alice/sms-lora")["adapter_config.json"])["base_model_name_or_path"] == "test-org/base"


def test_pushed_card_metadata(hub, store, llama_base):
    _save_adapter(store, llama_base)
    push_adapter("sms-lora", "alice/sms-lora", token=WRITE_TOKEN, endpoint=hub.url)
    text = _pushed_files(hub, "alice/sms-lora")["README.md"].decode()

    front_matter = yaml.safe_load(text.split("---\n")[1])
    assert front_matter["base_model"] == BASE_HUB_ID
    assert front_matter["library_name"] == "peft"
    assert front_matter["model-index"][0]["results"][0]["metrics"][0] == {"type": "accuracy", "value": 0.75, "name": "accuracy"}
    card = ModelCard(text)
    assert card.data.eval_results[0].metric_value == 0.75
    assert 'PeftModel.from_pretrained(base, "alice/sms-lora")' in text
    assert "num_labels=3" in text


def test_push_with_baseline_card(hub, store, llama_base):
    _save_adapter(store, llama_base)
    full_model = llama_base.full_copy("classification", len(LABELS), LABELS)
    baseline = AdapterMetadata(
        name="sms-full",
        kind="full",
        task={"name": "sms", "type": "classification", "label_names": LABELS},
        base_model=BaseModelRef.from_shared_base(llama_base),
        metrics={"accuracy": 0.8, "macro_f1": 0.75},
        data_fingerprint="cd" * 32,
    )
    store.save_full("sms-full", full_model, llama_base.tokenizer, baseline)

    push_adapter("sms-lora", "alice/sms-lora", token=WRITE_TOKEN, endpoint=hub.url, baseline="sms-full")

    text = _pushed_files(hub, "alice/sms-lora")["README.md"].decode()
    assert "| accuracy | 0.7500 | 0.8000 | -0.0500 |" in text


def test_repush_unchanged_makes_no_commit(hub, store, llama_base):
    _save_adapter(store, llama_base)
    first = push_adapter("sms-lora", "alice/sms-lora", token=WRITE_TOKEN, endpoint=hub.url)

    second = push_adapter("sms-lora", "alice/sms-lora", token=WRITE_TOKEN, endpoint=hub.url)

    assert second.commit_id == first.commit_id
    assert len(hub.repos["alice/sms-lora"].commits) == 2


def test_bare_repo_name_uses_token_user(hub, store, llama_base):
    _save_adapter(store, llama_base)

    result = push_adapter("sms-lora", "sms-lora", token=WRITE_TOKEN, endpoint=hub.url)

    assert result.repo_url.endswith("/alice/sms-lora")
    assert "alice/sms-lora" in hub.repos


def test_push_private_repo(hub, store, llama_base):
    _save_adapter(store, llama_base)
    push_adapter("sms-lora", "alice/sms-lora", token=WRITE_TOKEN, endpoint=hub.url, private=True)

    assert hub.repos["alice/sms-lora"].private
    assert list_hub_adapters("alice", endpoint=hub.url) == []
    with pytest.raises(HubError, match="not found"):
        pull_adapter("alice/sms-lora", endpoint=hub.url, base=llama_base)

    pulled = pull_adapter("alice/sms-lora", endpoint=hub.url, base=llama_base, token=WRITE_TOKEN)
    assert pulled.name == "alice--sms-lora"


def test_token_from_environment(hub, store, llama_base, monkeypatch):
    _save_adapter(store, llama_base)
    monkeypatch.setenv("HF_TOKEN", WRITE_TOKEN)

    push_adapter("sms-lora", "alice/sms-lora", endpoint=hub.url)

    assert "alice/sms-lora" in hub.repos


def test_endpoint_from_environment(hub, store, llama_base, monkeypatch):
    _save_adapter(store, llama_base)
    monkeypatch.setenv("HF_ENDPOINT", hub.url + "/")

    result = push_adapter("sms-lora", "alice/sms-lora", token=WRITE_TOKEN)

    assert result.repo_url == f"{hub.url}/alice/sms-lora"
    assert [info.repo_id for info in list_hub_adapters("alice")] == ["alice/sms-lora"]


# ---- errors


def test_wrong_token_message(hub, store, llama_base, caplog):
    _save_adapter(store, llama_base)
    caplog.set_level(logging.DEBUG)

    with pytest.raises(HubError) as error:
        push_adapter("sms-lora", "alice/sms-lora", token=WRONG_TOKEN, endpoint=hub.url)

    message = str(error.value)
    assert "the Hub rejected the token (invalid credentials)" in message
    assert "https://huggingface.co/settings/tokens" in message
    assert "HF_TOKEN" in message
    assert WRONG_TOKEN not in message
    assert WRONG_TOKEN not in caplog.text
    assert WRONG_TOKEN not in repr(error.value.__cause__) + repr(error.value.__context__)
    assert "alice/sms-lora" not in hub.repos


def test_wrong_token_on_pull(hub, store, llama_base):
    _save_adapter(store, llama_base)
    push_adapter("sms-lora", "alice/sms-lora", token=WRITE_TOKEN, endpoint=hub.url)

    with pytest.raises(HubError, match=r"rejected the token \(invalid credentials\)") as error:
        pull_adapter("alice/sms-lora", endpoint=hub.url, base=llama_base, token=WRONG_TOKEN)
    assert WRONG_TOKEN not in str(error.value)
    assert store.names() == ["sms-lora"]


def test_missing_token(hub, store, llama_base):
    _save_adapter(store, llama_base)

    with pytest.raises(HubError, match="No Hugging Face token was found") as error:
        push_adapter("sms-lora", "alice/sms-lora", endpoint=hub.url)
    assert "HF_TOKEN" in str(error.value)
    assert hub.request_log == []


def test_read_only_token(hub, store, llama_base):
    _save_adapter(store, llama_base)

    with pytest.raises(HubError, match="read-only"):
        push_adapter("sms-lora", "alice/sms-lora", token=READ_TOKEN, endpoint=hub.url)
    assert "alice/sms-lora" not in hub.repos


def test_push_to_foreign_namespace(hub, store, llama_base):
    _save_adapter(store, llama_base)

    with pytest.raises(HubError, match="no permission") as error:
        push_adapter("sms-lora", "bob/sms-lora", token=WRITE_TOKEN, endpoint=hub.url)
    assert "'bob/sms-lora'" in str(error.value)


def test_push_to_own_organisation(hub, store, llama_base):
    _save_adapter(store, llama_base)

    push_adapter("sms-lora", "lab/sms-lora", token=WRITE_TOKEN, endpoint=hub.url)

    assert "lab/sms-lora" in hub.repos


def test_missing_repo(hub, llama_base, store):
    with pytest.raises(HubError) as error:
        pull_adapter("alice/does-not-exist", endpoint=hub.url, base=llama_base)

    assert "'alice/does-not-exist' was not found" in str(error.value)
    assert store.names() == []


def test_missing_revision(hub, store, llama_base):
    _save_adapter(store, llama_base)
    push_adapter("sms-lora", "alice/sms-lora", token=WRITE_TOKEN, endpoint=hub.url)

    with pytest.raises(HubError) as error:
        pull_adapter("alice/sms-lora", revision="v9", endpoint=hub.url, base=llama_base)

    assert "revision 'v9' was not found" in str(error.value).lower()
    assert "alice/sms-lora" in str(error.value)


def test_pull_pinned_revision(hub, store, llama_base):
    _save_adapter(store, llama_base)
    first = push_adapter("sms-lora", "alice/sms-lora", token=WRITE_TOKEN, endpoint=hub.url)
    hub.create_repo_with_files("alice/sms-lora", {"adapter_model.safetensors": b"not safetensors"})

    pulled = pull_adapter("alice/sms-lora", revision=first.commit_id, endpoint=hub.url, base=llama_base)

    assert pulled.metadata.provenance.commit == first.commit_id
    assert pulled.metadata.provenance.revision == first.commit_id


@pytest.mark.parametrize("repo_id", ["alice/bad name", "a/b/c", "alice/x--y", "alice/.hidden", "", "-alice/x"])
def test_invalid_repo_id(hub, store, llama_base, repo_id):
    _save_adapter(store, llama_base)

    with pytest.raises(HubError, match="Invalid Hub repo id") as push_error:
        push_adapter("sms-lora", repo_id, token=WRITE_TOKEN, endpoint=hub.url)
    with pytest.raises(HubError, match="Invalid Hub repo id"):
        pull_adapter(repo_id, endpoint=hub.url, base=llama_base)

    assert repr(repo_id) in str(push_error.value)
    assert "owner/name" in str(push_error.value)
    assert hub.request_log == []


def test_server_unreachable(store, llama_base):
    _save_adapter(store, llama_base)
    with HubServer(tokens={WRITE_TOKEN: ("alice", "write")}) as stopped:
        url = stopped.url

    with pytest.raises(HubError, match=f"could not reach {url}"):
        push_adapter("sms-lora", "alice/sms-lora", token=WRITE_TOKEN, endpoint=url)
    with pytest.raises(HubError, match=f"could not reach {url}"):
        pull_adapter("alice/sms-lora", endpoint=url, base=llama_base)


def test_server_down_mid_download(hub, store, llama_base):
    _save_adapter(store, llama_base)
    push_adapter("sms-lora", "alice/sms-lora", token=WRITE_TOKEN, endpoint=hub.url)
    store.delete("sms-lora")
    scratch_before = {name for name in os.listdir(tempfile.gettempdir()) if name.startswith("lora-playground-pull-")}
    hub.go_down_after_downloads(2)

    started = time.monotonic()
    with pytest.raises(HubError, match=f"could not reach {hub.url}"):
        pull_adapter("alice/sms-lora", endpoint=hub.url, base=llama_base)

    assert hub.down
    resolved = [path.rsplit("/", 1)[-1] for method, path, _ in hub.request_log if method == "GET" and "/resolve/" in path]
    assert resolved[:3] == ["README.md", "adapter_config.json", "adapter_model.safetensors"]
    assert sorted(os.listdir(store.root)) == []
    assert store.names() == []
    scratch_after = {name for name in os.listdir(tempfile.gettempdir()) if name.startswith("lora-playground-pull-")}
    assert scratch_after == scratch_before
    # huggingface_hub retries a broken download 5 times, 1 s apart, before giving up.
    assert time.monotonic() - started < 30


def test_adapter_for_other_base_is_refused(hub, store, llama_base, wide_llama_base):
    _save_adapter(store, llama_base)
    push_adapter("sms-lora", "alice/sms-lora", token=WRITE_TOKEN, endpoint=hub.url)
    store.delete("sms-lora")

    with pytest.raises(AdapterError) as error:
        pull_adapter("alice/sms-lora", endpoint=hub.url, base=wide_llama_base)

    message = str(error.value)
    assert "does not fit the base model" in message
    assert f"trained on '{BASE_HUB_ID}', not on 'test-org/wide-llama'" in message
    assert "q_proj" in message
    assert "48" in message
    assert store.names() == []


def test_adapter_for_encoder_is_refused(hub, store, llama_base, tiny_bert_dir):
    _save_adapter(store, llama_base)
    push_adapter("sms-lora", "alice/sms-lora", token=WRITE_TOKEN, endpoint=hub.url)
    bert_base = get_shared_base(str(tiny_bert_dir))

    with pytest.raises(AdapterError, match="does not fit") as error:
        pull_adapter("alice/sms-lora", name="on-bert", endpoint=hub.url, base=bert_base)

    assert "decoder" in str(error.value)
    assert "on-bert" not in store.names()


def test_same_shapes_other_base_is_installed(hub, store, llama_base, caplog):
    _save_adapter(store, llama_base)
    push_adapter("sms-lora", "alice/sms-lora", token=WRITE_TOKEN, endpoint=hub.url)
    renamed = replace(llama_base, spec=replace(llama_base.spec, hub_id="test-org/other-llama"))

    pulled = pull_adapter("alice/sms-lora", endpoint=hub.url, base=renamed)

    assert pulled.name == "alice--sms-lora"
    assert "names base 'test-org/tiny-llama', not 'test-org/other-llama'" in caplog.text


def test_long_repo_id_needs_name(hub, llama_base):
    repo_id = "alice/" + "x" * 60

    with pytest.raises(AdapterError, match="longer than 64 characters"):
        pull_adapter(repo_id, endpoint=hub.url, base=llama_base)
    assert hub.request_log == []


def test_existing_entry_needs_force(hub, store, llama_base):
    _save_adapter(store, llama_base)
    push_adapter("sms-lora", "alice/sms-lora", token=WRITE_TOKEN, endpoint=hub.url)
    log_length = len(hub.request_log)

    with pytest.raises(AdapterError, match="already exists"):
        pull_adapter("alice/sms-lora", name="sms-lora", endpoint=hub.url, base=llama_base)
    assert len(hub.request_log) == log_length

    replaced = pull_adapter("alice/sms-lora", name="sms-lora", endpoint=hub.url, base=llama_base, force=True)
    assert replaced.metadata.provenance.source == "hub"


def test_not_a_peft_repo(hub, store, llama_base):
    hub.create_repo_with_files("alice/full-model", {"config.json": b"{}", "model.safetensors": b"x"})
    hub.create_repo_with_files("alice/empty", {"notes.txt": b"hello"})

    with pytest.raises(AdapterError, match="is a full model"):
        pull_adapter("alice/full-model", endpoint=hub.url, base=llama_base)
    with pytest.raises(AdapterError, match="no adapter_config.json"):
        pull_adapter("alice/empty", endpoint=hub.url, base=llama_base)
    assert store.names() == []


def test_non_lora_peft_type_is_refused(hub, store, llama_base):
    config = {"peft_type": "IA3", "task_type": "SEQ_CLS", "base_model_name_or_path": BASE_HUB_ID}
    hub.create_repo_with_files("alice/ia3", {"adapter_config.json": json.dumps(config).encode(), "adapter_model.safetensors": b"x"})

    with pytest.raises(AdapterError, match="contains a PEFT adapter of type IA3, but only LoRA"):
        pull_adapter("alice/ia3", endpoint=hub.url, base=llama_base)


def _pickle_only_repo(hub, entry, repo_id):
    weights = load_file(entry.path / "adapter_model.safetensors")
    pickle_path = entry.path.parent.parent / "adapter_model.bin"
    torch.save(weights, pickle_path)
    hub.create_repo_with_files(
        repo_id,
        {"adapter_config.json": (entry.path / "adapter_config.json").read_bytes(), "adapter_model.bin": pickle_path.read_bytes()},
    )
    return weights


def test_pickle_weights_refused(hub, store, llama_base):
    entry, _ = _save_adapter(store, llama_base)
    _pickle_only_repo(hub, entry, "alice/pickled")

    with pytest.raises(AdapterError, match="only pickle weights") as error:
        pull_adapter("alice/pickled", endpoint=hub.url, base=llama_base)

    assert "allow_pickle=True" in str(error.value)
    assert not [path for method, path, _ in hub.request_log if "/resolve/" in path]


def test_pickle_weights_allowed_become_safetensors(hub, store, llama_base):
    entry, original = _save_adapter(store, llama_base)
    weights = _pickle_only_repo(hub, entry, "alice/pickled")

    pulled = pull_adapter("alice/pickled", endpoint=hub.url, base=llama_base, allow_pickle=True)

    assert not (pulled.path / "adapter_model.bin").exists()
    converted = load_file(pulled.path / "adapter_model.safetensors")
    assert all(torch.equal(weights[key], converted[key]) for key in weights)
    # Without our metadata.json the labels are read from the head's size.
    assert pulled.metadata.label_names == ["LABEL_0", "LABEL_1", "LABEL_2"]
    assert pulled.metadata.extra["hub_base_model"] == BASE_HUB_ID
    reloaded = store.load(pulled.name, llama_base)
    assert torch.equal(_logits(original, llama_base), _logits(reloaded, llama_base))


def test_third_party_adapter_without_metadata(hub, store, llama_base):
    entry, _ = _save_adapter(store, llama_base)
    weights = load_file(entry.path / "adapter_model.safetensors")
    scratch = entry.path.parent.parent / "third-party.safetensors"
    save_file(weights, scratch)
    hub.create_repo_with_files(
        "bob/sms-adapter",
        {"adapter_config.json": (entry.path / "adapter_config.json").read_bytes(), "adapter_model.safetensors": scratch.read_bytes(), "README.md": b"# Bob's adapter\n"},
    )

    pulled = pull_adapter("bob/sms-adapter", endpoint=hub.url, base=llama_base)

    assert pulled.metadata.task["name"] == "sms-adapter"
    assert pulled.metadata.base_model.fingerprint == llama_base.fingerprint
    assert (pulled.path / "README.md").read_text() == "# Bob's adapter\n"


# ---- listing


def test_list_hub_adapters(hub, store, llama_base):
    _save_adapter(store, llama_base)
    push_adapter("sms-lora", "alice/sms-lora", token=WRITE_TOKEN, endpoint=hub.url)
    hub.create_repo_with_files("alice/plain-model", {"config.json": b"{}", "README.md": b"---\nlibrary_name: transformers\n---\n"})
    push_adapter("sms-lora", "bob/sms-lora", token=BOB_TOKEN, endpoint=hub.url, base_hub_id=BASE_HUB_ID)

    adapters = list_hub_adapters("alice", endpoint=hub.url)

    assert [adapter.repo_id for adapter in adapters] == ["alice/sms-lora"]
    listed = adapters[0]
    assert "peft" in listed.tags
    assert "lora" in listed.tags
    assert listed.base_model == BASE_HUB_ID
    assert listed.last_modified is not None
    assert listed.downloads == 0
    assert listed.to_dict()["repo_id"] == "alice/sms-lora"
    request = next(path for method, path, _ in hub.request_log if path == "/api/models")
    assert request == "/api/models"


def test_list_counts_downloads_and_limit(hub, store, llama_base):
    _save_adapter(store, llama_base)
    for repo in ("alice/one", "alice/two", "alice/three"):
        push_adapter("sms-lora", repo, token=WRITE_TOKEN, endpoint=hub.url)
    pull_adapter("alice/two", endpoint=hub.url, base=llama_base)

    adapters = list_hub_adapters("alice", endpoint=hub.url, limit=2)

    assert len(adapters) == 2
    downloads = {adapter.repo_id: adapter.downloads for adapter in list_hub_adapters("alice", endpoint=hub.url)}
    assert downloads == {"alice/one": 0, "alice/two": 1, "alice/three": 0}


@pytest.mark.parametrize("author", ["", "a/b", "bad name", "-x"])
def test_list_invalid_author(hub, author):
    with pytest.raises(HubError, match="Invalid Hub user or organisation name"):
        list_hub_adapters(author, endpoint=hub.url)
    assert hub.request_log == []


@pytest.mark.parametrize("limit", [0, -1, 1001, 2.5, True])
def test_list_invalid_limit(hub, limit):
    with pytest.raises(HubError, match="Invalid listing limit"):
        list_hub_adapters("alice", endpoint=hub.url, limit=limit)


def test_invalid_endpoint():
    with pytest.raises(HubError, match="Invalid Hub endpoint 'ftp://example.org'"):
        list_hub_adapters("alice", endpoint="ftp://example.org")
