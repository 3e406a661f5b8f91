"""Smoke test of benchmarks/multi_adapter.py in its --quick mode on the tiny BERT base."""

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "multi_adapter.py"


def load_script():
    spec = importlib.util.spec_from_file_location("multi_adapter_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_benchmark_writes_results(tiny_bert_dir, tmp_path, capsys):
    output = tmp_path / "results.json"

    load_script().main(
        ["--quick", "--base", str(tiny_bert_dir), "--counts", "1,3", "--max-full-copies", "2", "--output", str(output)]
    )

    printed = capsys.readouterr().out
    results = json.loads(output.read_text())
    assert results["quick"] is True
    assert results["counts"] == [1, 3]
    assert "random-initialized LoRA weights" in results["adapter_origin"]
    memory = results["memory"]
    assert set(memory["adapters_rss_growth_bytes"]) == {"1", "3"}
    assert memory["adapter_weight_bytes"]["3"] == 3 * memory["adapter_weight_bytes"]["1"] > 0
    # Two copies are made; the third is extrapolated from their measured growth.
    assert memory["full_copies_made"] == 2
    assert memory["full_copies"]["1"]["estimated"] is False
    assert memory["full_copies"]["3"]["estimated"] is True
    # RSS growth itself is not checked: inside pytest, memory freed by earlier tests is reused.
    assert isinstance(memory["full_copies"]["3"]["rss_growth_bytes"], int)
    assert memory["full_copy_weight_bytes"] > memory["adapter_weight_bytes"]["1"]
    assert results["mixed_batch"]["strategy"] == {"classification/2": "mixed"}
    assert results["mixed_batch"]["mixed_rows_per_s"] > 0
    assert results["switch"]["set_adapter"]["median_s"] > 0
    assert results["merged"]["max_logit_difference"] < 1e-4
    assert "| N | adapter weights |" in printed
    assert "Mixed batch:" in printed
