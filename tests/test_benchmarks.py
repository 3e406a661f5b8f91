"""Smoke tests of the benchmark scripts' --quick modes on tiny random-weight models, plus their helpers.

The scripts run in this process (--no-isolation) to keep the tests fast; one test starts a real
measurement process to check the isolation path. Figures of quick runs mean nothing, so the tests
check structure and exact counts (steps, tokens, rows), not speed.
"""

import json
import math

import pytest

from benchmarks import cold_start, flops, inference, lora_vs_full, pipeline_vs_reference, scaling
from benchmarks.isolation import IsolatedRunError, run_isolated
from benchmarks.machine import describe_machine
from benchmarks.report import BenchmarkReport, Target, format_value
from benchmarks.workloads import load_workload, reshape_splits


def run_script(module, tmp_path, *arguments) -> dict:
    output = tmp_path / f"{module.NAME}.json"
    assert module.main(["--quick", "--no-isolation", "--output", str(output), *map(str, arguments)]) == 0
    return json.loads(output.read_text(encoding="utf-8"))


def test_lora_vs_full_same_batches(tiny_llama_dir, tmp_path, capsys):
    record = run_script(lora_vs_full, tmp_path, "--base", tiny_llama_dir)
    lora, full = record["results"]["lora"], record["results"]["full"]
    assert lora["steps"] == full["steps"] == 2
    # Same seed and data order: both runs see exactly the same tokens.
    assert lora["train_tokens"] == full["train_tokens"] > 0
    assert lora["trainable_params"] < full["trainable_params"] == full["total_params"]
    assert 0 < lora["stored_bytes"] < full["stored_bytes"]
    assert 0.0 <= lora["accuracy"] <= 1.0
    assert 0.0 <= full["accuracy"] <= 1.0
    storage = next(target for target in record["targets"] if target["name"].startswith("stored weights"))
    assert storage["measured"] == pytest.approx(lora["stored_bytes"] / full["stored_bytes"])
    assert record["machine"]["cpu_model"]
    printed = capsys.readouterr().out
    assert "LoRA vs full finetuning" in printed
    assert "training throughput" in printed


def test_pipeline_vs_reference_with_ablation(tiny_bert_dir, tmp_path):
    record = run_script(pipeline_vs_reference, tmp_path, "--base", tiny_bert_dir)
    runs = record["results"]["comparison"]
    reference = runs["reference"]
    assert set(runs) == {"reference", "product (defaults)", "product (tuned)"}
    assert all(run["steps"] == 2 for run in runs.values())
    assert all(0.0 <= run["accuracy"] <= 1.0 for run in runs.values())
    # The reference pads to the longest of the 24 training rows, which the tiny BERT tokenizer counts again here.
    rows = load_workload(None, max_rows=pipeline_vs_reference.QUICK_ROWS).splits["train"]
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    assert reference["padded_length"] == max(len(ids) for ids in tokenizer(list(rows["text"]))["input_ids"])
    ablation = record["results"]["ablation"]
    assert "reference + dynamic padding" in ablation
    assert "product, 1 torch thread" in ablation
    assert all(result["steps"] == 2 for result in ablation.values())
    optimizer = record["results"]["optimizer_steps"]
    assert optimizer["lora"]["params"] < optimizer["full"]["params"]
    assert all(optimizer[kind][name] > 0 for kind in ("lora", "full") for name in ("for-loop", "foreach", "fused"))


def test_flops_peak_and_training_fractions(tiny_llama_dir, tmp_path):
    record = run_script(flops, tmp_path, "--base", tiny_llama_dir)
    peak = record["results"]["matmul_peak_gflops"]
    assert peak["float32"] > 0
    assert peak["bfloat16"] > 0
    runs = record["results"]["training"]
    assert set(runs) == {"lora float32", "lora bf16 autocast", "full float32", "full bf16 autocast"}
    for result in runs.values():
        expected = result["train_flops_estimate"] / result["train_wall_time_s"] / 1e9
        assert result["achieved_gflops"] == pytest.approx(expected)
    # Full finetuning also computes weight gradients, so its FLOPs estimate per token is larger.
    lora, full = runs["lora float32"], runs["full float32"]
    assert full["train_flops_estimate"] / full["train_tokens"] > lora["train_flops_estimate"] / lora["train_tokens"]


def test_matmul_gflops_positive_finite():
    value = flops.matmul_gflops(32, "float32", repeats=1)
    assert 0 < value < math.inf


def test_inference_unmerged_merged_full(tiny_llama_dir, tmp_path):
    record = run_script(inference, tmp_path, "--base", tiny_llama_dir)
    throughput = record["results"]["predictions_per_s"]
    assert set(throughput) == {"LoRA unmerged", "LoRA merged", "full model"}
    assert all(set(figures) == {"1", "4"} and min(figures.values()) > 0 for figures in throughput.values())
    # Merging changes no prediction beyond float rounding.
    assert record["results"]["merge_max_probability_difference"] < 1e-4


def test_scaling_all_sweeps(tiny_llama_dir, tmp_path):
    record = run_script(scaling, tmp_path, "--base", tiny_llama_dir)
    results = record["results"]
    # One epoch at batch 4: 8 rows take 2 steps and 16 rows (the split repeated as needed) take 4.
    assert {n: r["steps"] for n, r in results["examples"].items()} == {"8": 2, "16": 4}
    # Rows are lengthened and cut to exactly L tokens: one step of 4 rows trains on 4 * L tokens.
    assert {n: r["train_tokens"] for n, r in results["lengths"].items()} == {"16": 64, "32": 128}
    ranks = results["ranks"]
    assert ranks["2"]["trainable_params"] < ranks["4"]["trainable_params"]
    assert len(results["adapters"]["rss_bytes"]) == 3  # base only, then 1 and 2 adapters


def test_cold_start_app_and_base_load(tiny_bert_dir, tmp_path):
    record = run_script(cold_start, tmp_path, "--base", tiny_bert_dir)
    (ready,) = record["results"]["app_ready_s"]
    assert 0 < ready < 300
    load = record["results"]["base_loads"]["user cache as it is"]
    assert load["parameters"] > 0
    assert load["load_s"] > 0


def test_isolated_run_fresh_process_env(tiny_bert_dir, tmp_path):
    empty_cache = tmp_path / "cache"
    result = run_isolated(
        "benchmarks.cold_start:time_base_load",
        {"base": str(tiny_bert_dir)},
        env={"LORA_PLAYGROUND_CACHE": str(empty_cache)},
    )
    assert result["cache_was_filled"] is False
    assert result["process_peak_rss_bytes"] > 50 * 2**20  # torch alone needs more than that
    assert result["process_wall_s"] >= result["imports_s"] + result["load_s"]


def test_isolated_run_failing_target():
    with pytest.raises(IsolatedRunError, match="exit code 1"):
        run_isolated("benchmarks.no_such_module:missing", {})


def test_reshape_splits_sample_repeat_lengthen():
    task_data = load_workload(None)
    reshaped = reshape_splits(task_data, {"train": 5, "test": len(task_data.splits["test"]) + 3}, ("validation",), 40)
    assert set(reshaped.splits) == {"train", "test"}
    assert len(reshaped.splits["train"]) == 5
    test = reshaped.splits["test"]
    assert len(test) == len(task_data.splits["test"]) + 3
    assert test[len(test) - 1]["label"] == test[2]["label"]  # repeated rows wrap around
    assert min(len(text.split()) for text in reshaped.splits["train"]["text"]) >= 40
    assert reshaped.fingerprint != task_data.fingerprint


def test_target_met_and_missed():
    assert Target("speed", 3.0, 2.0).describe().endswith("-> met")
    missed = Target("memory", 0.8, 0.5, "at_most").describe()
    assert "missed" in missed
    assert "a factor of 1.60" in missed
    assert Target("x", None, 1.0).met is None


def test_report_table_and_json(tmp_path, capsys):
    report = BenchmarkReport("demo", options={"quick": True})
    table = report.table("Figures", ["name", "value"])
    table.add("alpha", 1234.4)
    table.add("b", 0.000123)
    record = report.finish(tmp_path / "out" / "demo.json")
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("|")]
    assert len({len(line) for line in lines}) == 1  # every row has the same width
    assert "1,234" in lines[2]
    assert json.loads((tmp_path / "out" / "demo.json").read_text())["tables"][0]["rows"] == record["tables"][0]["rows"]
    assert format_value(None) == "n/a"
    assert format_value(0.5) == "0.5"


def test_machine_description_fields():
    machine = describe_machine()
    assert machine["torch_threads"] >= 1
    assert machine["libraries"]["torch"] != "missing"
    assert machine["logical_cpus"] >= 1
