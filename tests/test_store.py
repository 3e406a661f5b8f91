"""The adapter store: save/reload fidelity, plain PEFT loading, atomic writes, names, broken and unsafe entries."""

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import load_file, save_file
from transformers import AutoModelForSequenceClassification

from lora_playground.adapters import AdapterMetadata, AdapterStore, store as store_module
from lora_playground.errors import AdapterError
from lora_playground.models import get_shared_base
from lora_playground.models.gguf_cache import MARKER_FILE
from lora_helpers import LABELS, TEXTS, logits, metadata_for, perturbed_lora_model


@pytest.fixture
def llama_base(tiny_llama_dir):
    return get_shared_base(tiny_llama_dir)


@pytest.fixture
def bert_base(tiny_bert_dir):
    return get_shared_base(tiny_bert_dir)


@pytest.fixture
def saved_entry(llama_base):
    """A store holding one LoRA entry "spam-lora", and the in-memory model it was saved from."""
    store = AdapterStore()
    model = perturbed_lora_model(llama_base)
    store.save_lora("spam-lora", model, metadata_for(llama_base))
    return store, model


def _hidden(root: Path) -> list[str]:
    return sorted(path.name for path in root.iterdir() if path.name.startswith("."))


# Save and reload ------------------------------------------------------------------------------------


@pytest.mark.parametrize("base_fixture", ["llama_base", "bert_base"])
def test_reload_reproduces_predictions(base_fixture, request):
    base = request.getfixturevalue(base_fixture)
    store = AdapterStore()
    model = perturbed_lora_model(base)
    expected = logits(model, base.tokenizer)

    store.save_lora("reload-check", model, metadata_for(base))
    reloaded = store.load("reload-check", base)

    assert isinstance(reloaded, PeftModel)
    assert not reloaded.training
    assert torch.equal(logits(reloaded, base.tokenizer), expected)


def test_reload_keeps_trained_head(saved_entry, llama_base):
    store, model = saved_entry
    reloaded = store.load("spam-lora", llama_base)
    saved_head = model.base_model.model.score.modules_to_save["default"].weight
    loaded_head = reloaded.base_model.model.score.modules_to_save["default"].weight
    assert torch.equal(loaded_head, saved_head)
    assert not torch.equal(loaded_head, reloaded.base_model.model.score.original_module.weight)


def test_reload_shares_base_storage(saved_entry, llama_base):
    store, _ = saved_entry
    reloaded = store.load("spam-lora", llama_base)
    loaded_q = reloaded.base_model.model.model.layers[0].self_attn.q_proj.base_layer.weight
    assert loaded_q.data_ptr() == llama_base.body.layers[0].self_attn.q_proj.weight.data_ptr()


def test_reload_with_dora(llama_base):
    store = AdapterStore()
    model = perturbed_lora_model(llama_base, use_dora=True)
    store.save_lora("dora", model, metadata_for(llama_base))
    assert torch.equal(logits(store.load("dora", llama_base), llama_base.tokenizer), logits(model, llama_base.tokenizer))


def test_entry_is_flat_peft_folder(saved_entry, llama_base):
    store, _ = saved_entry
    folder = store.path("spam-lora")
    assert sorted(path.name for path in folder.iterdir()) == [
        "README.md",
        "adapter_config.json",
        "adapter_model.safetensors",
        "metadata.json",
    ]
    adapter_config = json.loads((folder / "adapter_config.json").read_text())
    assert adapter_config["base_model_name_or_path"] == llama_base.spec.name
    assert "score" in adapter_config["modules_to_save"]
    metadata = json.loads((folder / "metadata.json").read_text())
    assert metadata["name"] == "spam-lora"
    assert metadata["schema_version"] == 1
    assert metadata["base_model"]["fingerprint"] == llama_base.fingerprint
    assert metadata["task"]["label_names"] == LABELS
    assert "spam-lora" in (folder / "README.md").read_text()


def test_plain_peft_loads_entry(saved_entry, llama_base, tiny_llama_dir):
    store, model = saved_entry
    plain_base = AutoModelForSequenceClassification.from_pretrained(tiny_llama_dir, num_labels=len(LABELS))
    plain = PeftModel.from_pretrained(plain_base, str(store.path("spam-lora"))).eval()
    torch.testing.assert_close(logits(plain, llama_base.tokenizer), logits(model, llama_base.tokenizer))


def test_plain_peft_loads_bert_entry(bert_base, tiny_bert_dir):
    store = AdapterStore()
    model = perturbed_lora_model(bert_base)
    store.save_lora("bert-lora", model, metadata_for(bert_base))
    plain_base = AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir, num_labels=len(LABELS))
    plain = PeftModel.from_pretrained(plain_base, str(store.path("bert-lora"))).eval()
    torch.testing.assert_close(logits(plain, bert_base.tokenizer), logits(model, bert_base.tokenizer))


def test_hub_id_recorded_as_base(llama_base):
    store = AdapterStore()
    metadata = metadata_for(llama_base)
    metadata.base_model.hub_id = "example-org/tiny-llama"
    store.save_lora("hub-base", perturbed_lora_model(llama_base), metadata)
    adapter_config = json.loads((store.path("hub-base") / "adapter_config.json").read_text())
    assert adapter_config["base_model_name_or_path"] == "example-org/tiny-llama"


def test_named_adapter_saved_flat(llama_base):
    store = AdapterStore()
    model = perturbed_lora_model(llama_base, adapter_name="experiment")
    store.save_lora("named", model, metadata_for(llama_base), adapter_name="experiment")
    folder = store.path("named")
    assert not [path for path in folder.iterdir() if path.is_dir()]
    assert (folder / "adapter_model.safetensors").is_file()
    assert torch.equal(logits(store.load("named", llama_base), llama_base.tokenizer), logits(model, llama_base.tokenizer))


def test_unknown_adapter_name_rejected(llama_base):
    store = AdapterStore()
    with pytest.raises(AdapterError, match="'missing'.*Available adapters: default"):
        store.save_lora("x", perturbed_lora_model(llama_base), metadata_for(llama_base), adapter_name="missing")


def test_head_outside_modules_to_save_rejected(llama_base):
    store = AdapterStore()
    model = get_peft_model(llama_base.classification_model(3), LoraConfig(r=2, target_modules=["q_proj"]))
    with pytest.raises(AdapterError, match=r"\['score'\].*modules_to_save"):
        store.save_lora("headless", model, metadata_for(llama_base))
    assert store.names() == []


def test_full_checkpoint_roundtrip(bert_base):
    store = AdapterStore()
    torch.manual_seed(3)
    model = bert_base.full_copy("classification", len(LABELS), LABELS).eval()
    with torch.no_grad():
        model.bert.encoder.layer[0].attention.self.query.weight.add_(0.5)
    store.save_full("bert-full", model, bert_base.tokenizer, metadata_for(bert_base, kind="full"))

    folder = store.path("bert-full")
    assert (folder / "model.safetensors").is_file()
    assert not list(folder.glob("*.bin"))
    reloaded = store.load("bert-full", bert_base)
    assert torch.equal(logits(reloaded, bert_base.tokenizer), logits(model, bert_base.tokenizer))
    assert store.get("bert-full").kind == "full"


def test_save_kind_mismatch_rejected(bert_base):
    store = AdapterStore()
    with pytest.raises(AdapterError, match="save_full"):
        store.save_lora("x", perturbed_lora_model(bert_base), metadata_for(bert_base, kind="full"))
    with pytest.raises(AdapterError, match="PEFT model"):
        store.save_full("x", perturbed_lora_model(bert_base), None, metadata_for(bert_base, kind="full"))


# Overwrite and atomic writes ----------------------------------------------------------------------


def test_existing_name_needs_force(saved_entry, llama_base):
    store, _ = saved_entry
    before = (store.path("spam-lora") / "adapter_model.safetensors").read_bytes()
    with pytest.raises(AdapterError) as caught:
        store.save_lora("spam-lora", perturbed_lora_model(llama_base, seed=5), metadata_for(llama_base))
    assert "'spam-lora'" in str(caught.value)
    assert "--force" in str(caught.value)
    assert (store.path("spam-lora") / "adapter_model.safetensors").read_bytes() == before
    assert _hidden(store.root) == []


def test_force_replaces_entry(saved_entry, llama_base):
    store, _ = saved_entry
    replacement = perturbed_lora_model(llama_base, seed=5)
    store.save_lora("spam-lora", replacement, metadata_for(llama_base), force=True)
    assert torch.equal(
        logits(store.load("spam-lora", llama_base), llama_base.tokenizer), logits(replacement, llama_base.tokenizer)
    )
    assert store.names() == ["spam-lora"]
    assert _hidden(store.root) == []


def test_failed_write_leaves_nothing(llama_base, monkeypatch):
    store = AdapterStore()

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(store_module, "render_model_card", fail)
    with pytest.raises(OSError, match="disk full"):
        store.save_lora("half", perturbed_lora_model(llama_base), metadata_for(llama_base))
    assert store.names() == []
    assert _hidden(store.root) == []


def test_failed_forced_write_keeps_old_entry(saved_entry, llama_base, monkeypatch):
    store, model = saved_entry

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(store_module, "render_model_card", fail)
    with pytest.raises(OSError):
        store.save_lora("spam-lora", perturbed_lora_model(llama_base, seed=9), metadata_for(llama_base), force=True)
    monkeypatch.undo()
    assert torch.equal(logits(store.load("spam-lora", llama_base), llama_base.tokenizer), logits(model, llama_base.tokenizer))
    assert _hidden(store.root) == []


def test_leftover_temporary_folders(saved_entry):
    store, _ = saved_entry
    dead = store.root / ".tmp-999999999-deadbeef-crashed"
    live = store.root / f".tmp-{os.getpid()}-cafebabe-writing"
    for folder in (dead, live):
        folder.mkdir()
        (folder / "adapter_config.json").write_text("{}")

    assert [entry.name for entry in store.list()] == ["spam-lora"]
    AdapterStore(store.root)
    assert not dead.exists()
    assert live.exists()


# Names ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["../evil", "a/b", "..", ".hidden", "a..b", "", "x" * 65, "/etc/passwd", "a\\b", "-dash", "spa ce", "é"],
)
def test_invalid_names_rejected(name, llama_base, tmp_path):
    store = AdapterStore()
    with pytest.raises(AdapterError) as caught:
        store.path(name)
    assert repr(name) in str(caught.value)
    with pytest.raises(AdapterError):
        store.save_lora(name, perturbed_lora_model(llama_base), metadata_for(llama_base))
    with pytest.raises(AdapterError):
        store.get(name)
    with pytest.raises(AdapterError):
        store.delete(name)
    assert list(tmp_path.iterdir()) == [store.root]
    assert list(store.root.iterdir()) == []


@pytest.mark.parametrize("name", ["a", "sms-spam_lora.v2", "A1", "x" * 64])
def test_valid_names_accepted(name):
    assert AdapterStore().path(name).name == name


# Listing and deleting -----------------------------------------------------------------------------------


def test_list_reports_broken_entry(saved_entry):
    store, _ = saved_entry
    shutil.copytree(store.path("spam-lora"), store.root / "broken")
    (store.root / "broken" / "adapter_config.json").unlink()
    (store.root / "no-metadata").mkdir()

    entries = {entry.name: entry for entry in store.list()}
    assert sorted(entries) == ["broken", "no-metadata", "spam-lora"]
    assert entries["spam-lora"].ok
    assert entries["spam-lora"].size_bytes > 0
    assert "adapter_config.json" in entries["broken"].problem
    assert entries["broken"].metadata is not None
    assert "metadata.json" in entries["no-metadata"].problem
    assert entries["no-metadata"].metadata is None


def test_delete_entry(saved_entry):
    store, _ = saved_entry
    store.delete("spam-lora")
    assert store.names() == []
    assert _hidden(store.root) == []
    with pytest.raises(AdapterError, match="No adapter named 'spam-lora'"):
        store.delete("spam-lora")


def test_get_unknown_lists_existing(saved_entry):
    store, _ = saved_entry
    with pytest.raises(AdapterError) as caught:
        store.get("nope")
    assert "'nope'" in str(caught.value)
    assert "spam-lora" in str(caught.value)


# Broken and unsafe entries -------------------------------------------------------------------------


def test_corrupted_safetensors_rejected(saved_entry, llama_base):
    store, _ = saved_entry
    weights = store.path("spam-lora") / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(AdapterError) as caught:
        store.load("spam-lora", llama_base)
    message = str(caught.value)
    assert str(weights) in message
    assert "corrupted" in message
    assert "save or pull it again" in message


def test_missing_adapter_config_rejected(saved_entry, llama_base):
    store, _ = saved_entry
    (store.path("spam-lora") / "adapter_config.json").unlink()
    with pytest.raises(AdapterError) as caught:
        store.load("spam-lora", llama_base)
    assert str(store.path("spam-lora")) in str(caught.value)
    assert "adapter_config.json" in str(caught.value)


def test_missing_metadata_rejected(saved_entry, llama_base):
    store, _ = saved_entry
    (store.path("spam-lora") / "metadata.json").unlink()
    with pytest.raises(AdapterError, match="metadata.json is missing"):
        store.load("spam-lora", llama_base)


def test_pickle_weights_need_permission(saved_entry, llama_base):
    store, model = saved_entry
    folder = store.path("spam-lora")
    torch.save(load_file(folder / "adapter_model.safetensors"), folder / "adapter_model.bin")
    (folder / "adapter_model.safetensors").unlink()

    with pytest.raises(AdapterError) as caught:
        store.load("spam-lora", llama_base)
    assert "adapter_model.bin" in str(caught.value)
    assert "allow_pickle=True" in str(caught.value)
    assert "arbitrary code" in str(caught.value)
    assert not store.list()[0].ok

    allowed = store.load("spam-lora", llama_base, allow_pickle=True)
    assert torch.equal(logits(allowed, llama_base.tokenizer), logits(model, llama_base.tokenizer))


def test_missing_tensor_rejected(saved_entry, llama_base):
    store, _ = saved_entry
    weights = store.path("spam-lora") / "adapter_model.safetensors"
    tensors = load_file(weights)
    dropped = next(key for key in tensors if "lora_B" in key)
    del tensors[dropped]
    save_file(tensors, weights)
    with pytest.raises(AdapterError, match="missing weights for 1 tensors"):
        store.load("spam-lora", llama_base)


def test_symlinked_entry_rejected(saved_entry, tmp_path):
    store, _ = saved_entry
    outside = tmp_path / "outside"
    shutil.copytree(store.path("spam-lora"), outside)
    (store.root / "linked").symlink_to(outside)
    with pytest.raises(AdapterError, match="symbolic link"):
        store.get("linked")


# Installing downloaded folders --------------------------------------------------------------------------


def test_install_from_folder(saved_entry, llama_base, tmp_path):
    store, model = saved_entry
    download = tmp_path / "download"
    shutil.copytree(store.path("spam-lora"), download)
    (download / "training_args.bin").write_bytes(b"pickle")
    (download / ".gitattributes").write_text("*.safetensors filter=lfs")
    provenance = {"source": "hub", "repo_id": "someone/spam-lora", "revision": "main", "commit": "a" * 40}

    entry = store.install_from_folder(download, "pulled", {"provenance": provenance})

    assert entry.metadata.provenance.repo_id == "someone/spam-lora"
    assert entry.metadata.name == "pulled"
    assert sorted(path.name for path in entry.path.iterdir()) == [
        "README.md",
        "adapter_config.json",
        "adapter_model.safetensors",
        "metadata.json",
    ]
    assert torch.equal(logits(store.load("pulled", llama_base), llama_base.tokenizer), logits(model, llama_base.tokenizer))


def test_install_without_metadata_rejected(saved_entry, tmp_path):
    store, _ = saved_entry
    download = tmp_path / "download"
    shutil.copytree(store.path("spam-lora"), download)
    (download / "metadata.json").unlink()
    with pytest.raises(AdapterError, match="no metadata.json"):
        store.install_from_folder(download, "pulled")
    assert store.names() == ["spam-lora"]
    assert _hidden(store.root) == []


def test_install_pickle_only_rejected(saved_entry, tmp_path):
    store, _ = saved_entry
    download = tmp_path / "download"
    shutil.copytree(store.path("spam-lora"), download)
    torch.save(load_file(download / "adapter_model.safetensors"), download / "adapter_model.bin")
    (download / "adapter_model.safetensors").unlink()
    with pytest.raises(AdapterError, match="pickle"):
        store.install_from_folder(download, "pulled")
    assert store.names() == ["spam-lora"]


# Metadata -------------------------------------------------------------------------------------------------


def test_metadata_roundtrip_keeps_unknown_fields(llama_base, tmp_path):
    metadata = metadata_for(llama_base)
    values = metadata.to_dict()
    values["future_field"] = {"x": 1}
    parsed = AdapterMetadata.from_dict(values)
    assert parsed.extra == {"future_field": {"x": 1}}
    assert parsed.to_dict() == values
    parsed.save(tmp_path / "metadata.json")
    assert AdapterMetadata.load(tmp_path / "metadata.json").to_dict() == values


@pytest.mark.parametrize(
    "field, value, expected",
    [
        ("kind", "qlora", "'kind'"),
        ("schema_version", 0, "'schema_version'"),
        ("created_at", "yesterday", "'created_at'"),
        ("task", {"name": "t", "type": "classification", "label_names": ["only"]}, "'task.label_names'"),
        ("base_model", {"name": "b", "fingerprint": "f", "architecture": "seq2seq"}, "'base_model.architecture'"),
        ("provenance", {"source": "ftp"}, "'provenance.source'"),
        ("metrics", [0.9], "'metrics'"),
    ],
)
def test_metadata_invalid_field_named(llama_base, tmp_path, field, value, expected):
    values = metadata_for(llama_base).to_dict()
    values[field] = value
    path = tmp_path / "metadata.json"
    path.write_text(json.dumps(values))
    with pytest.raises(AdapterError) as caught:
        AdapterMetadata.load(path)
    assert str(path) in str(caught.value)
    assert expected in str(caught.value)


def test_metadata_newer_schema_rejected(llama_base):
    values = metadata_for(llama_base).to_dict()
    values["schema_version"] = 2
    with pytest.raises(AdapterError, match="Upgrade lora_playground"):
        AdapterMetadata.from_dict(values)


def test_metadata_invalid_json_named(tmp_path):
    path = tmp_path / "metadata.json"
    path.write_text('{"name": ')
    with pytest.raises(AdapterError, match="line 1"):
        AdapterMetadata.load(path)


def test_base_ref_records_gguf_origin(llama_base, tmp_path):
    from dataclasses import replace

    from lora_playground.adapters import BaseModelRef

    folder = tmp_path / "converted"
    folder.mkdir()
    (folder / MARKER_FILE).write_text("SmolLM2-135M-Instruct.Q4_1.gguf\n/some/path\n")
    assert BaseModelRef.from_shared_base(llama_base).gguf_file is None
    assert BaseModelRef.from_shared_base(replace(llama_base, source=str(folder))).gguf_file == (
        "SmolLM2-135M-Instruct.Q4_1.gguf"
    )


def test_concurrent_load_and_delete(saved_entry, llama_base):
    """Loads racing with deletes and forced rewrites either succeed or raise AdapterError, nothing else."""
    import threading

    store, model = saved_entry
    expected = logits(model, llama_base.tokenizer)
    unexpected = []
    loaded = []

    def load_repeatedly():
        for _ in range(6):
            try:
                loaded.append(logits(store.load("spam-lora", llama_base), llama_base.tokenizer))
            except AdapterError:
                pass
            except Exception as error:  # noqa: BLE001 - any other exception is the failure this test looks for
                unexpected.append(error)

    def rewrite_repeatedly():
        for round_index in range(6):
            try:
                if round_index % 2 == 0:
                    store.delete("spam-lora")
                else:
                    store.save_lora("spam-lora", model, metadata_for(llama_base), force=True)
            except AdapterError:
                pass
            except Exception as error:  # noqa: BLE001
                unexpected.append(error)

    threads = [threading.Thread(target=load_repeatedly) for _ in range(3)] + [threading.Thread(target=rewrite_repeatedly)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert unexpected == []
    for result in loaded:
        assert torch.equal(result, expected)
    assert _hidden(store.root) == []


def test_update_metadata_merges_and_rerenders(saved_entry, llama_base):
    store, _ = saved_entry
    entry = store.update_metadata("spam-lora", {"cost": {"stored_bytes": 1234}, "metrics": {"accuracy": 0.875}})

    assert entry.metadata.cost == {"stored_bytes": 1234}
    assert entry.metadata.metrics == {"accuracy": 0.875}
    reread = store.get("spam-lora").metadata
    assert reread.cost == {"stored_bytes": 1234}
    assert reread.base_model.fingerprint == llama_base.fingerprint
    assert "0.875" in (store.path("spam-lora") / "README.md").read_text()
    assert sorted(path.name for path in store.path("spam-lora").iterdir() if path.name.startswith(".")) == []


def test_update_metadata_rejects_invalid(saved_entry):
    store, _ = saved_entry
    before = (store.path("spam-lora") / "metadata.json").read_text()
    with pytest.raises(AdapterError, match="'kind'"):
        store.update_metadata("spam-lora", {"kind": "qlora"})
    assert (store.path("spam-lora") / "metadata.json").read_text() == before


@pytest.mark.integration
def test_embedded_minilm_entry_reloads_exactly():
    base = get_shared_base("minilm-l6")
    store = AdapterStore()
    model = perturbed_lora_model(base)
    store.save_lora("minilm-lora", model, metadata_for(base))

    adapter_config = json.loads((store.path("minilm-lora") / "adapter_config.json").read_text())
    assert adapter_config["base_model_name_or_path"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert torch.equal(logits(store.load("minilm-lora", base), base.tokenizer), logits(model, base.tokenizer))
