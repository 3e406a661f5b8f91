"""Merging stored LoRA adapters with PEFT's weighted merging, its refusals, and the merged-vs-sources table."""

import csv
import json

import pytest
import torch
from peft import LoraConfig, TaskType, get_peft_model
from peft.tuners.lora import LoraLayer

from lora_playground.adapters import AdapterStore
from lora_playground.adapters.merging import MergeOptions, merge_adapters
from lora_playground.adapters.serving import AdapterPool
from lora_playground.errors import AdapterError, ConfigError
from lora_playground.models import default_target_modules, get_shared_base
from lora_playground.models.fingerprint import state_dict_fingerprint
from lora_playground.pipeline.merge_evaluation import evaluate_merge
from lora_helpers import LABELS, TEXTS, logits, metadata_for
from serving_helpers import run_extra_cli, store_classifier, store_full_classifier, store_generator


@pytest.fixture
def bert_base(tiny_bert_dir):
    return get_shared_base(tiny_bert_dir)


@pytest.fixture
def llama_base(tiny_llama_dir):
    return get_shared_base(tiny_llama_dir)


def lora_deltas(model) -> dict[str, torch.Tensor]:
    """The update W' - W of every adapted layer of a single-adapter PeftModel, by module name."""
    return {
        name: module.get_delta_weight(module.active_adapters[0]).detach()
        for name, module in model.named_modules()
        if isinstance(module, LoraLayer)
    }


def store_classifier_with(base, name: str, *, seed: int, **lora_options):
    torch.manual_seed(seed)
    config = LoraConfig(task_type=TaskType.SEQ_CLS, target_modules=default_target_modules(base.model_type), **lora_options)
    model = get_peft_model(base.classification_model(len(LABELS), LABELS), config)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.requires_grad:
                parameter.add_(torch.randn_like(parameter) * 0.2)
    return AdapterStore().save_lora(name, model.eval(), metadata_for(base))


def test_cat_with_zero_weight_reproduces_source(bert_base):
    store = AdapterStore()
    store_classifier(bert_base, "alpha", seed=1)
    store_classifier(bert_base, "beta", seed=2)
    expected = logits(store.load("alpha", bert_base), bert_base.tokenizer)

    entry = merge_adapters(["alpha", "beta"], [1.0, 0.0], "only-alpha", options=MergeOptions(method="cat"))

    assert torch.allclose(logits(store.load(entry.name, bert_base), bert_base.tokenizer), expected, atol=1e-5)


def test_cat_update_is_weighted_sum(bert_base):
    store = AdapterStore()
    store_classifier(bert_base, "alpha", seed=1)
    store_classifier(bert_base, "beta", seed=2)
    alpha, beta = lora_deltas(store.load("alpha", bert_base)), lora_deltas(store.load("beta", bert_base))

    merge_adapters(["alpha", "beta"], [0.3, 0.7], "blend", options=MergeOptions(method="cat"))
    merged_model = store.load("blend", bert_base)

    merged = lora_deltas(merged_model)
    assert set(merged) == set(alpha)
    for name in merged:
        assert torch.allclose(merged[name], 0.3 * alpha[name] + 0.7 * beta[name], atol=1e-6), name
    head = "base_model.model.classifier.modules_to_save.default.weight"
    heads = [dict(store.load(source, bert_base).named_parameters())[head] for source in ("alpha", "beta")]
    merged_head = dict(merged_model.named_parameters())[head]
    assert torch.allclose(merged_head, 0.3 * heads[0] + 0.7 * heads[1], atol=1e-6)


def test_rslora_source_keeps_its_scale(bert_base):
    store = AdapterStore()
    store_classifier_with(bert_base, "stable", seed=1, r=4, lora_alpha=8, use_rslora=True)
    store_classifier(bert_base, "plain", seed=2)
    expected = logits(store.load("stable", bert_base), bert_base.tokenizer)

    merge_adapters(["stable", "plain"], [1.0, 0.0], "stable-copy", options=MergeOptions(method="cat"))

    assert torch.allclose(logits(store.load("stable-copy", bert_base), bert_base.tokenizer), expected, atol=1e-5)


@pytest.mark.parametrize(
    "method, density", [("linear", None), ("ties", 0.5), ("dare_linear", 0.7), ("dare_ties", 0.5), ("svd", None),
                        ("magnitude_prune", 0.5), ("ties_svd", 0.5)]
)
def test_methods_save_loadable_entry_with_record(method, density, bert_base):
    store = AdapterStore()
    store_classifier(bert_base, "alpha", seed=1)
    store_classifier(bert_base, "beta", seed=2)
    fingerprint = state_dict_fingerprint(bert_base.model.state_dict())

    entry = merge_adapters(["alpha", "beta"], [0.6, 0.4], f"merged-{method}", options=MergeOptions(method=method, density=density))

    record = entry.metadata.extra["merge"]
    assert record["sources"] == ["alpha", "beta"]
    assert record["weights"] == [0.6, 0.4]
    assert record["method"] == method
    assert record["density"] == density
    assert record["rank"] == 4
    assert entry.metadata.label_names == LABELS
    assert entry.metadata.kind == "lora"
    merged_logits = logits(store.load(entry.name, bert_base), bert_base.tokenizer)
    assert torch.isfinite(merged_logits).all()
    for source in ("alpha", "beta"):
        assert not torch.allclose(merged_logits, logits(store.load(source, bert_base), bert_base.tokenizer), atol=1e-4)
    assert state_dict_fingerprint(bert_base.model.state_dict()) == fingerprint


def test_dare_repeats_with_seed(bert_base):
    store = AdapterStore()
    store_classifier(bert_base, "alpha", seed=1)
    store_classifier(bert_base, "beta", seed=2)
    options = MergeOptions(method="dare_linear", density=0.5, seed=11)

    merge_adapters(["alpha", "beta"], [0.5, 0.5], "dare-one", options=options)
    merge_adapters(["alpha", "beta"], [0.5, 0.5], "dare-two", options=options)
    merge_adapters(["alpha", "beta"], [0.5, 0.5], "dare-other-seed", options=MergeOptions("dare_linear", 0.5, seed=12))

    one, two, other = (logits(store.load(name, bert_base), bert_base.tokenizer) for name in ("dare-one", "dare-two", "dare-other-seed"))
    assert torch.equal(one, two)
    assert not torch.equal(one, other)


def test_different_ranks_need_cat_or_svd(bert_base):
    store_classifier_with(bert_base, "rank-four", seed=1, r=4, lora_alpha=8)
    store_classifier_with(bert_base, "rank-eight", seed=2, r=8, lora_alpha=16)

    with pytest.raises(AdapterError, match=r"'linear' needs equal ranks, but rank-four r=4, rank-eight r=8; use 'cat'"):
        merge_adapters(["rank-four", "rank-eight"], [0.5, 0.5], "nope")
    entry = merge_adapters(["rank-four", "rank-eight"], [0.5, 0.5], "stacked", options=MergeOptions(method="cat"))
    assert entry.metadata.extra["merge"]["rank"] == 12
    svd = merge_adapters(["rank-four", "rank-eight"], [0.5, 0.5], "refactored", options=MergeOptions(method="svd", svd_rank=6))
    assert svd.metadata.extra["merge"]["rank"] == 6
    assert not AdapterStore().path("nope").exists()


def test_heads_with_other_labels_are_refused(bert_base):
    store_classifier(bert_base, "three-labels", seed=1)
    store_classifier(bert_base, "reordered", seed=2, labels=["spam", "ham", "other"])
    store_classifier(bert_base, "two-labels", seed=3, labels=["yes", "no"])
    store_classifier(bert_base, "three-again", seed=4)

    with pytest.raises(AdapterError, match="different labels") as raised:
        merge_adapters(["three-labels", "reordered", "two-labels"], [1, 1, 1], "nope", options=MergeOptions(method="cat"))
    assert "same label names in the same order" in str(raised.value)
    with pytest.raises(AdapterError, match="positive sum"):
        merge_adapters(["three-labels", "three-again"], [1, -1], "nope")


def test_unsupported_sources_are_refused_together(llama_base):
    store_classifier(llama_base, "plain", seed=1)
    store_classifier(llama_base, "dora", seed=2, use_dora=True)
    store_full_classifier(llama_base, "full-model")
    store_generator(llama_base, "writer", seed=3)

    with pytest.raises(AdapterError) as raised:
        merge_adapters(["plain", "dora"], [0.5, 0.5], "nope")
    assert "dora is a DoRA adapter" in str(raised.value)
    with pytest.raises(AdapterError, match="full-model is a full-finetune checkpoint"):
        merge_adapters(["plain", "full-model"], [0.5, 0.5], "nope")
    with pytest.raises(AdapterError, match="mix classification and generation"):
        merge_adapters(["plain", "writer"], [0.5, 0.5], "nope", options=MergeOptions(method="cat"))


@pytest.mark.parametrize(
    "sources, weights, name, options, message",
    [
        (["alpha"], [1.0], "merged", MergeOptions(), "at least 2 are needed"),
        (["alpha", "beta"], [1.0], "merged", MergeOptions(), "1 weights were given for 2 sources"),
        (["alpha", "beta"], [0.5, 0.5], "alpha", MergeOptions(), "cannot replace its source 'alpha'"),
        (["alpha", "beta"], [0.5, 0.5], "merged", MergeOptions(method="ties"), "needs a density"),
        (["alpha", "beta"], [0.5, 0.5], "merged", MergeOptions(method="linear", density=0.5), "density applies to"),
        (["alpha", "beta"], [0.5, 0.5], "merged", MergeOptions(method="dare_ties", density=1.5), r"density=1.5 is not in \(0, 1\]"),
        (["alpha", "beta"], [0.5, 0.5], "merged", MergeOptions(method="average"), "method 'average' is unknown"),
        (["alpha", "beta"], [0.5, float("nan")], "merged", MergeOptions(), "must be finite"),
    ],
)
def test_invalid_requests_are_refused(sources, weights, name, options, message, bert_base):
    store_classifier(bert_base, "alpha", seed=1)
    store_classifier(bert_base, "beta", seed=2)

    with pytest.raises(ConfigError, match=message):
        merge_adapters(sources, weights, name, options=options)


def test_merged_adapter_serves_beside_sources(llama_base):
    store = AdapterStore()
    store_generator(llama_base, "writer-a", seed=1)
    store_generator(llama_base, "writer-b", seed=2)
    merge_adapters(["writer-a", "writer-b"], [0.5, 0.5], "writers", options=MergeOptions(method="ties", density=0.5))
    pool = AdapterPool(llama_base)
    prompt = [{"role": "user", "content": "Name a prime number."}]

    mixed = pool.generate_mixed([prompt] * 3, ["writer-a", "writers", "writer-b"], max_new_tokens=6)

    assert mixed.replies[1] == pool.generate("writers", [prompt], max_new_tokens=6)[0]
    assert store.get("writers").metadata.task_type == "generation"


# Evaluation beside the sources ---------------------------------------------------------------------------


def write_task_csv(path, seed: int, rows: int = 40):
    generator = torch.Generator().manual_seed(seed)
    words = ["prize", "lunch", "meeting", "free", "call", "tomorrow", "winner", "notes"]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        for index in range(rows):
            picks = torch.randint(len(words), (4,), generator=generator).tolist()
            writer.writerow([" ".join(words[pick] for pick in picks), LABELS[index % len(LABELS)]])
    return path


def test_evaluate_merge_scores_each_source_task(bert_base, tmp_path):
    store_classifier(bert_base, "alpha", seed=1)
    store_classifier(bert_base, "beta", seed=2)
    merge_adapters(["alpha", "beta"], [0.5, 0.5], "blend", options=MergeOptions(method="cat"))
    alpha_data = write_task_csv(tmp_path / "alpha.csv", seed=1)

    comparison = evaluate_merge("blend", data_sources={"alpha": alpha_data}, max_examples=4)

    assert [row.source for row in comparison.rows] == ["alpha", "beta"]
    alpha_row, beta_row = comparison.rows
    assert set(alpha_row.scores) == {"alpha", "beta", "blend"}
    assert all(0.0 <= value <= 1.0 for value in alpha_row.scores.values())
    assert alpha_row.metric == "accuracy"
    assert alpha_row.examples == 4
    assert "fingerprint mismatch" in alpha_row.note
    assert beta_row.scores == {}
    assert "give a data path for beta" in beta_row.note
    table = comparison.to_markdown()
    assert "| task (source) | metric | alpha | beta | blend |" in table
    assert "toy-spam (alpha) | accuracy |" in table


def test_evaluate_merge_rebuilds_builtin_task(bert_base):
    from lora_playground.tasks.builtin import load_builtin

    label_names = load_builtin("chatterbot-topics").task.label_names
    store_classifier(bert_base, "topics-a", seed=1, labels=label_names)
    store_classifier(bert_base, "topics-b", seed=2, labels=label_names)
    store = AdapterStore()
    for name in ("topics-a", "topics-b"):
        store.update_metadata(name, {"task": {"name": "chatterbot-topics"}})
    merge_adapters(["topics-a", "topics-b"], [0.5, 0.5], "topics", options=MergeOptions(method="linear"))

    comparison = evaluate_merge("topics", max_examples=3)

    assert [row.task for row in comparison.rows] == ["chatterbot-topics", "chatterbot-topics"]
    assert set(comparison.rows[0].scores) == {"topics-a", "topics-b", "topics"}
    with pytest.raises(AdapterError, match="no merge record"):
        evaluate_merge("topics-a")
    with pytest.raises(AdapterError, match="not sources of"):
        evaluate_merge("topics", data_sources={"elsewhere": "file.csv"})


def test_merge_command_prints_comparison(bert_base, tmp_path, capsys):
    store_classifier(bert_base, "alpha", seed=1)
    store_classifier(bert_base, "beta", seed=2)
    alpha_data = write_task_csv(tmp_path / "alpha.csv", seed=1)
    beta_data = write_task_csv(tmp_path / "beta.csv", seed=2)
    report = tmp_path / "comparison.json"

    code = run_extra_cli([
        "merge", "--sources", "alpha,beta", "--weights", "0.5,0.5", "--method", "ties", "--density", "0.5",
        "--name", "merged", "--data", f"alpha={alpha_data}", "--data", f"beta={beta_data}",
        "--max-examples", "3", "--output", str(report),
    ])

    output = capsys.readouterr().out
    assert code == 0
    assert "saved merged adapter merged (method ties, rank 4)" in output
    assert "| task (source) | metric | alpha | beta | merged |" in output
    saved = json.loads(report.read_text())
    assert [row["source"] for row in saved["rows"]] == ["alpha", "beta"]
    assert all(len(row["scores"]) == 3 for row in saved["rows"])
    assert AdapterStore().get("merged").metadata.extra["merge"]["density"] == 0.5


def test_merge_command_rejects_bad_data_option(bert_base):
    with pytest.raises(ConfigError, match="is not SOURCE=PATH"):
        run_extra_cli(["merge", "--sources", "alpha,beta", "--name", "merged", "--data", "alpha.csv"])
