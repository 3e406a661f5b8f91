"""Many adapters on one base: loading, switching, unloading, limits, mixed batches and side-by-side answers."""

import json
import threading

import pytest
import torch

from lora_playground.adapters import AdapterStore
from lora_playground.adapters.serving import BASE_ADAPTER, AdapterPool, get_pool, peft_adapter_name
from lora_playground.errors import AdapterError, ConfigError, DataError, LimitError
from lora_playground.models import get_shared_base
from lora_playground.models.fingerprint import state_dict_fingerprint
from lora_playground.pipeline.inference import (
    NO_BASE_CLASSIFIER,
    answer_side_by_side,
    stream_side_by_side,
)
from lora_helpers import LABELS, TEXTS, logits
from serving_helpers import PROMPT, run_extra_cli, store_classifier, store_full_classifier, store_generator


@pytest.fixture
def llama_base(tiny_llama_dir):
    return get_shared_base(tiny_llama_dir)


@pytest.fixture
def bert_base(tiny_bert_dir):
    return get_shared_base(tiny_bert_dir)


def base_head_logits(base, num_labels: int, texts=TEXTS) -> torch.Tensor:
    """Logits of the untrained base with the head a pool builds for "__base__" rows (seed 0)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = base.classification_model(num_labels)
    return logits(model, base.tokenizer, texts)


# Loading, switching, unloading -------------------------------------------------------------------------


def test_adapter_names_that_clash_in_peft(llama_base):
    # "classifier" and "score" are module names, and "spam" is contained in "spam-2".
    store = AdapterStore()
    names = ["classifier", "score", "spam", "spam-2"]
    for seed, name in enumerate(names):
        store_classifier(llama_base, name, seed=seed)
    expected = {name: logits(store.load(name, llama_base), llama_base.tokenizer) for name in names}
    pool = AdapterPool(llama_base)

    pool.ensure_loaded(names)
    for name in names:
        with pool.use(name) as model:
            assert torch.allclose(logits(model, llama_base.tokenizer), expected[name], atol=1e-5), name
    texts = [TEXTS[0]] * len(names)
    mixed = pool.classify_mixed(texts, names)
    for index, name in enumerate(names):
        assert torch.allclose(mixed.rows[index].logits, expected[name][0], atol=1e-5), name


def test_pool_loads_adapters_under_store_names(llama_base):
    store_classifier(llama_base, "spam.a", seed=1)
    store_classifier(llama_base, "spam-b", seed=2)
    pool = AdapterPool(llama_base)

    pool.ensure_loaded(["spam.a", "spam-b"])

    assert pool.loaded_names() == ["spam-b", "spam.a"]
    group_model = pool.group_model("spam.a")
    assert group_model is pool.group_model("spam-b")
    assert set(group_model.peft_config) == {"~spam:a~", "~spam-b~"}
    assert peft_adapter_name("spam.a") == "~spam:a~"


@pytest.mark.parametrize("base_fixture", ["llama_base", "bert_base"])
def test_switching_matches_loading_alone(base_fixture, request):
    base = request.getfixturevalue(base_fixture)
    store = AdapterStore()
    for seed, name in enumerate(["first", "second", "third"]):
        store_classifier(base, name, seed=seed)
    expected = {name: logits(store.load(name, base), base.tokenizer) for name in ["first", "second", "third"]}
    pool = AdapterPool(base)

    # Switch back and forth: every answer must be the adapter's own, whatever was active before.
    for name in ["second", "first", "third", "second", "first"]:
        with pool.use(name) as model:
            got = logits(model, base.tokenizer)
        assert torch.allclose(got, expected[name], atol=1e-5), name
    probabilities = pool.classify("third", TEXTS).probabilities
    assert torch.allclose(torch.from_numpy(probabilities), torch.softmax(expected["third"], dim=-1), atol=1e-5)


def test_adapters_share_base_tensors(llama_base):
    store_classifier(llama_base, "first", seed=1)
    store_classifier(llama_base, "other-labels", seed=2, labels=["yes", "no"])
    pool = AdapterPool(llama_base)
    pool.ensure_loaded(["first", "other-labels"])

    base_pointers = {parameter.data_ptr() for parameter in llama_base.model.parameters()}
    for name in ["first", "other-labels"]:
        body = pool.group_model(name).get_base_model().model
        body_weights = [(key, value) for key, value in body.named_parameters() if "lora_" not in key]
        assert len(body_weights) > 10
        not_shared = [key for key, value in body_weights if value.data_ptr() not in base_pointers]
        assert not_shared == []
    assert pool.group_model("first") is not pool.group_model("other-labels")


def test_unload_deletes_adapter_and_empty_group(llama_base):
    store_classifier(llama_base, "first", seed=1)
    store_classifier(llama_base, "second", seed=2)
    pool = AdapterPool(llama_base)
    pool.ensure_loaded(["first", "second"])
    group_model = pool.group_model("first")

    pool.unload("first")

    assert pool.loaded_names() == ["second"]
    assert list(group_model.peft_config) == ["~second~"]
    assert not any("first" in name for name, _ in group_model.named_parameters())
    pool.unload("second")
    assert pool.loaded_names() == []
    assert pool._groups == {}
    with pytest.raises(AdapterError, match="not loaded"):
        pool.unload("second")


def test_limit_names_environment_variable(llama_base, monkeypatch):
    monkeypatch.setenv("LORA_PLAYGROUND_MAX_LOADED_ADAPTERS", "2")
    for seed, name in enumerate(["one", "two", "three"]):
        store_classifier(llama_base, name, seed=seed)
    pool = AdapterPool(llama_base)
    pool.load("one")
    pool.load("two")

    with pytest.raises(LimitError, match="LORA_PLAYGROUND_MAX_LOADED_ADAPTERS=2"):
        pool.load("three")
    with pytest.raises(LimitError, match="needs 3 models"):
        pool.ensure_loaded(["one", "two", "three"])
    assert pool.loaded_names() == ["one", "two"]

    pool.classify("one", TEXTS[:1])  # "one" is now the most recently used
    pool.ensure_loaded(["three"], evict=True)
    assert pool.loaded_names() == ["one", "three"]


def test_full_entries_count_against_limit(llama_base, monkeypatch):
    monkeypatch.setenv("LORA_PLAYGROUND_MAX_LOADED_ADAPTERS", "1")
    store_classifier(llama_base, "lora-one", seed=1)
    store_full_classifier(llama_base, "full-one")
    pool = AdapterPool(llama_base)
    pool.load("full-one")

    assert pool.info("full-one").kind == "full"
    with pytest.raises(LimitError):
        pool.load("lora-one")


def test_incompatible_adapter_rejected_before_loading(llama_base, bert_base):
    store_classifier(bert_base, "bert-adapter")
    pool = AdapterPool(llama_base)

    with pytest.raises(AdapterError, match="bert-adapter") as raised:
        pool.load("bert-adapter")

    assert "trained on a encoder" in str(raised.value) or "bert" in str(raised.value)
    assert pool.loaded_names() == []
    assert pool._groups == {}


def test_replaced_entry_is_loaded_again(llama_base):
    store = AdapterStore()
    store_classifier(llama_base, "changing", seed=1)
    pool = AdapterPool(llama_base)
    before = pool.classify("changing", TEXTS).probabilities

    store.delete("changing")
    store_classifier(llama_base, "changing", seed=7)
    # created_at has one-second resolution, so make the replacement visibly newer.
    store.update_metadata("changing", {"created_at": "2099-01-01T00:00:00+00:00"})
    pool.ensure_loaded(["changing"])
    after = pool.classify("changing", TEXTS).probabilities

    expected = torch.softmax(logits(store.load("changing", llama_base), llama_base.tokenizer), dim=-1)
    assert not torch.allclose(torch.from_numpy(before), torch.from_numpy(after))
    assert torch.allclose(torch.from_numpy(after), expected, atol=1e-5)


def test_deleted_entry_is_unloaded(llama_base):
    store_classifier(llama_base, "short-lived", seed=1)
    pool = AdapterPool(llama_base)
    pool.load("short-lived")

    AdapterStore().delete("short-lived")

    with pytest.raises(AdapterError, match="No adapter named 'short-lived'"):
        pool.ensure_loaded(["short-lived"])
    assert pool.loaded_names() == []


def test_pool_leaves_base_weights_unchanged(llama_base):
    fingerprint = state_dict_fingerprint(llama_base.model.state_dict())
    store_classifier(llama_base, "first", seed=1)
    store_generator(llama_base, "writer", seed=2)
    pool = AdapterPool(llama_base)
    pool.classify_mixed(TEXTS, ["first", BASE_ADAPTER, "first"])
    pool.generate_mixed([PROMPT, PROMPT], ["writer", BASE_ADAPTER], max_new_tokens=4)
    pool.unload_all()

    assert state_dict_fingerprint(llama_base.model.state_dict()) == fingerprint


def test_get_pool_is_per_base_and_store(llama_base, bert_base, tmp_path):
    assert get_pool(llama_base) is get_pool(llama_base)
    assert get_pool(llama_base) is not get_pool(bert_base)
    assert get_pool(llama_base) is not get_pool(llama_base, AdapterStore(tmp_path / "other-store"))


def test_concurrent_requests_get_their_own_adapter(llama_base):
    store = AdapterStore()
    names = ["first", "second", "third"]
    for seed, name in enumerate(names):
        store_classifier(llama_base, name, seed=seed)
    expected = {name: torch.softmax(logits(store.load(name, llama_base), llama_base.tokenizer), -1) for name in names}
    pool = AdapterPool(llama_base)
    failures = []

    def worker(offset: int) -> None:
        for step in range(12):
            name = names[(step + offset) % len(names)]
            got = torch.from_numpy(pool.classify(name, TEXTS).probabilities)
            if not torch.allclose(got, expected[name], atol=1e-5):
                failures.append((offset, step, name))

    threads = [threading.Thread(target=worker, args=(offset,)) for offset in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


# Mixed-adapter batches -----------------------------------------------------------------------------------


@pytest.mark.parametrize("base_fixture", ["llama_base", "bert_base"])
def test_mixed_classification_rows_match_single(base_fixture, request):
    base = request.getfixturevalue(base_fixture)
    store = AdapterStore()
    store_classifier(base, "alpha", seed=1)
    store_classifier(base, "beta", seed=2)
    texts = [TEXTS[0], TEXTS[1], TEXTS[2], TEXTS[2]]
    row_adapters = ["beta", "alpha", BASE_ADAPTER, "beta"]
    singles = {name: logits(store.load(name, base), base.tokenizer, texts) for name in ["alpha", "beta"]}
    singles[BASE_ADAPTER] = base_head_logits(base, len(LABELS), texts)
    pool = AdapterPool(base)

    result = pool.classify_mixed(texts, row_adapters)

    assert result.strategies == {"classification/3": "mixed"}
    assert result.forward_passes == 1
    for index, name in enumerate(row_adapters):
        row = result.rows[index]
        assert row.adapter == name
        assert torch.allclose(row.logits, singles[name][index], atol=1e-5), (index, name)
        assert row.label == LABELS[int(singles[name][index].argmax())]
    assert not torch.allclose(result.rows[0].logits, singles["alpha"][0], atol=1e-3)


def test_mixed_classification_across_label_counts(llama_base):
    store = AdapterStore()
    store_classifier(llama_base, "three-way", seed=1)
    store_classifier(llama_base, "two-way", seed=2, labels=["yes", "no"])
    pool = AdapterPool(llama_base)

    result = pool.classify_mixed(TEXTS, ["two-way", "three-way", "two-way"])

    assert result.strategies == {"classification/2": "mixed", "classification/3": "mixed"}
    assert result.forward_passes == 2
    assert set(result.rows[0].probabilities) == {"yes", "no"}
    assert set(result.rows[1].probabilities) == set(LABELS)
    for index, name in [(0, "two-way"), (1, "three-way"), (2, "two-way")]:
        expected = logits(store.load(name, llama_base), llama_base.tokenizer)[index]
        assert torch.allclose(result.rows[index].logits, expected, atol=1e-5)
    with pytest.raises(ConfigError, match="exactly one label count"):
        pool.classify_mixed(TEXTS, ["two-way", "three-way", BASE_ADAPTER])


def test_mixed_dora_runs_per_adapter(llama_base):
    store = AdapterStore()
    store_classifier(llama_base, "plain", seed=1)
    store_classifier(llama_base, "dora", seed=2, use_dora=True)
    pool = AdapterPool(llama_base)

    result = pool.classify_mixed(TEXTS, ["dora", "plain", BASE_ADAPTER])

    assert result.strategies == {"classification/3": "per-adapter"}
    assert "DoRA" in result.reasons["classification/3"]
    assert result.forward_passes == 3
    for index, name in [(0, "dora"), (1, "plain")]:
        expected = logits(store.load(name, llama_base), llama_base.tokenizer)[index]
        assert torch.allclose(result.rows[index].logits, expected, atol=1e-5)
    assert torch.allclose(result.rows[2].logits, base_head_logits(llama_base, 3)[2], atol=1e-5)


def test_mixed_generation_rows_match_single(llama_base):
    store_generator(llama_base, "writer-a", seed=1)
    store_generator(llama_base, "writer-b", seed=2)
    pool = AdapterPool(llama_base)
    row_adapters = ["writer-b", BASE_ADAPTER, "writer-a"]

    mixed = pool.generate_mixed([PROMPT] * 3, row_adapters, max_new_tokens=8)

    assert mixed.strategy == "mixed"
    for index, name in enumerate(row_adapters):
        alone = pool.generate_mixed([PROMPT], [name], max_new_tokens=8)
        assert mixed.token_ids[index] == alone.token_ids[0], name
        assert mixed.replies[index] == pool.generate(name, [PROMPT], max_new_tokens=8)[0]
    assert len({tuple(ids) for ids in mixed.token_ids}) == 3


def test_mixed_generation_with_padding_matches_single(llama_base):
    store_generator(llama_base, "writer-a", seed=1)
    store_generator(llama_base, "writer-b", seed=2)
    pool = AdapterPool(llama_base)
    prompts = [PROMPT, [{"role": "user", "content": "Tell me a much longer story about a lighthouse keeper."}], PROMPT]
    row_adapters = ["writer-a", "writer-b", BASE_ADAPTER]

    mixed = pool.generate_mixed(prompts, row_adapters, max_new_tokens=6)

    # The reference runs the same padded batch with one adapter for every row.
    for index, name in enumerate(row_adapters):
        same_adapter = pool.generate_mixed(prompts, [name] * 3, max_new_tokens=6)
        assert mixed.token_ids[index] == same_adapter.token_ids[index], name


def test_mixed_batch_rejects_full_and_wrong_task(llama_base):
    store_classifier(llama_base, "classifier", seed=1)
    store_generator(llama_base, "writer", seed=2)
    store_full_classifier(llama_base, "full-model")
    pool = AdapterPool(llama_base)

    with pytest.raises(ConfigError, match="full-finetune"):
        pool.classify_mixed(TEXTS[:1], ["full-model"])
    with pytest.raises(ConfigError, match="generation adapter"):
        pool.classify_mixed(TEXTS[:2], ["classifier", "writer"])
    with pytest.raises(DataError, match="2 adapter names for 3 inputs"):
        pool.classify_mixed(TEXTS, ["classifier", "classifier"])


# Side-by-side answers ------------------------------------------------------------------------------------


def test_side_by_side_classification(llama_base):
    store = AdapterStore()
    store_classifier(llama_base, "alpha", seed=1)
    store_full_classifier(llama_base, "alpha-full")
    expected = torch.softmax(logits(store.load("alpha", llama_base), llama_base.tokenizer, [TEXTS[0]])[0], -1)
    expected_full = torch.softmax(logits(store.load("alpha-full", llama_base), llama_base.tokenizer, [TEXTS[0]])[0], -1)

    answers = answer_side_by_side(None, ["alpha"], TEXTS[0], include_base=True, include_full_names=True)

    assert [(answer["name"], answer["kind"]) for answer in answers] == [
        ("base", "base"), ("alpha", "lora"), ("alpha-full", "full")
    ]
    assert answers[0]["note"] == NO_BASE_CLASSIFIER
    assert answers[0]["latency_ms"] is None
    for answer, probabilities in [(answers[1], expected), (answers[2], expected_full)]:
        assert answer["task_type"] == "classification"
        assert answer["output"] == LABELS[int(probabilities.argmax())]
        assert list(answer["probabilities"]) == LABELS
        assert torch.allclose(torch.tensor(list(answer["probabilities"].values())), probabilities, atol=1e-5)
        assert answer["latency_ms"] > 0
        assert answer["done"] is True


def test_side_by_side_generation_and_streaming(llama_base):
    store_generator(llama_base, "writer-a", seed=1)
    store_generator(llama_base, "writer-b", seed=2)
    pool = get_pool(llama_base)
    options = {"max_new_tokens": 8, "temperature": 0.9, "top_p": 0.9, "seed": 3}

    answers = answer_side_by_side(str(llama_base.source), ["writer-a", "writer-b"], PROMPT, include_base=True, **options)
    snapshots = list(stream_side_by_side(None, ["writer-a", "writer-b"], PROMPT, include_base=True, **options))

    assert [answer["name"] for answer in answers] == ["base", "writer-a", "writer-b"]
    for answer, name in zip(answers, [BASE_ADAPTER, "writer-a", "writer-b"]):
        assert answer["task_type"] == "generation"
        assert answer["output"] == pool.generate(name, [PROMPT], **options)[0]
        assert answer["probabilities"] == {}
        assert answer["latency_ms"] > 0
    assert [answer["done"] for answer in snapshots[0]] == [False, False, False]
    assert [answer["output"] for answer in snapshots[-1]] == [answer["output"] for answer in answers]
    partial = [snapshot[1]["output"] for snapshot in snapshots if not snapshot[1]["done"] and snapshot[1]["output"]]
    assert partial, "the reply of writer-a never arrived in pieces"
    assert len(snapshots) > 4


def test_stream_closed_early_releases_pool(llama_base):
    store_generator(llama_base, "writer-a", seed=1)
    pool = get_pool(llama_base)
    stream = stream_side_by_side(None, ["writer-a"], PROMPT, max_new_tokens=200)
    next(stream)
    next(stream)
    stream.close()

    acquired = pool.lock.acquire(timeout=30)
    assert acquired
    pool.lock.release()


def test_side_by_side_rejects_bad_requests(llama_base, bert_base):
    store_classifier(llama_base, "llama-adapter", seed=1)
    store_classifier(bert_base, "bert-adapter", seed=1)
    store_classifier(llama_base, "not-full", seed=2)

    with pytest.raises(ConfigError, match="No models are selected"):
        answer_side_by_side(None, [], "hello")
    with pytest.raises(AdapterError, match="different bases"):
        answer_side_by_side(None, ["llama-adapter", "bert-adapter"], "hello")
    with pytest.raises(DataError, match="empty"):
        answer_side_by_side(None, ["llama-adapter"], "   ")
    with pytest.raises(ConfigError, match="not full-finetune entries"):
        answer_side_by_side(None, ["llama-adapter"], "hello", include_full_names=["not-full"])
    with pytest.raises(ConfigError, match="temperature"):
        answer_side_by_side(None, ["llama-adapter"], "hello", temperature=-1.0)


def test_try_command_prints_table(llama_base, capsys):
    store_classifier(llama_base, "alpha", seed=1)
    store_full_classifier(llama_base, "alpha-full")
    expected = answer_side_by_side(None, ["alpha"], TEXTS[0])[0]

    code = run_extra_cli(["try", "--adapters", "alpha", "--with-full", "--base-model", "--text", TEXTS[0]])

    lines = capsys.readouterr().out.splitlines()
    assert code == 0
    assert lines[0] == "| model | kind | answer | latency (ms) |"
    assert lines[2].startswith("| base | base | (The untrained base has no trained classification head")
    assert lines[3].startswith(f"| alpha | lora | {expected['output']} (")
    assert lines[4].startswith("| alpha-full | full | ")
    assert len(lines) == 5


def test_try_command_json(llama_base, capsys):
    store_generator(llama_base, "writer", seed=1)

    run_extra_cli(["try", "--adapters", "writer", "--text", "Name a prime number.", "--max-new-tokens", "4", "--json"])

    answers = json.loads(capsys.readouterr().out)
    assert [answer["name"] for answer in answers] == ["writer"]
    assert answers[0]["output"] == get_pool(llama_base).generate("writer", [PROMPT], max_new_tokens=4)[0]
