"""A tiny LoRA job under `accelerate launch` with 2 CPU processes: both ranks train together (DDP over
gloo) and the first one saves a complete adapter."""

import json
import os
import random
import subprocess
import sys
from pathlib import Path

from peft import PeftModel
from safetensors import safe_open

from lora_playground.models import get_shared_base
from lora_playground.training.distributed_job import adapter_digest

REPO_ROOT = Path(__file__).resolve().parents[1]
MAX_STEPS = 4


def write_rows(path: Path, count: int, seed: int) -> None:
    rng = random.Random(seed)
    with path.open("w") as handle:
        for _ in range(count):
            label = rng.randint(0, 1)
            words = ["good", "great"] if label else ["bad", "awful"]
            handle.write(json.dumps({"text": " ".join(rng.choice(words) for _ in range(4)), "label": label}) + "\n")


def test_accelerate_launch_two_cpu_processes(tiny_bert_dir, tmp_path):
    write_rows(tmp_path / "train.jsonl", 64, seed=1)
    write_rows(tmp_path / "validation.jsonl", 16, seed=2)
    output = tmp_path / "adapter"
    reports = tmp_path / "reports"

    # --multi_gpu makes accelerate start the processes through torch's elastic launcher. Without GPUs
    # they run on CPU with the gloo backend, while `--cpu` alone would start a single process.
    command = [
        sys.executable, "-m", "accelerate.commands.launch",
        "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0",
        "-m", "lora_playground.training.distributed_job",
        "--base", str(tiny_bert_dir),
        "--train", str(tmp_path / "train.jsonl"),
        "--validation", str(tmp_path / "validation.jsonl"),
        "--labels", "negative,positive",
        "--output", str(output),
        "--report-dir", str(reports),
        "--max-steps", str(MAX_STEPS),
        "--batch-size", "4",
        "--rank", "4",
    ]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]))
    env["OMP_NUM_THREADS"] = "1"
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    ranks = [json.loads(path.read_text()) for path in sorted(reports.glob("rank-*.json"))]
    assert [report["rank"] for report in ranks] == [0, 1]
    assert [report["world_size"] for report in ranks] == [2, 2]
    assert [report["is_main_process"] for report in ranks] == [True, False]
    assert [report["steps"] for report in ranks] == [MAX_STEPS, MAX_STEPS]
    # DDP averaged the gradients, so both processes end with the same adapter weights.
    assert ranks[0]["adapter_sha256"] == ranks[1]["adapter_sha256"]

    assert (output / "adapter_config.json").is_file()
    with safe_open(output / "adapter_model.safetensors", framework="pt") as saved:
        keys = list(saved.keys())
    assert any("query" in key and "lora_A" in key for key in keys)
    assert any("value" in key and "lora_B" in key for key in keys)
    assert any(key.endswith("classifier.weight") for key in keys)

    base = get_shared_base(str(tiny_bert_dir))
    loaded = PeftModel.from_pretrained(base.classification_model(2), str(output))
    assert adapter_digest(loaded, "default") == ranks[0]["adapter_sha256"]


def test_job_runs_in_one_process(tiny_bert_dir, tmp_path):
    """The same entry point without a launcher trains in one process (world size 1)."""
    from lora_playground.training.distributed_job import main

    write_rows(tmp_path / "train.jsonl", 16, seed=3)
    main(
        [
            "--base", str(tiny_bert_dir),
            "--train", str(tmp_path / "train.jsonl"),
            "--labels", "negative,positive",
            "--output", str(tmp_path / "adapter"),
            "--report-dir", str(tmp_path / "reports"),
            "--max-steps", "2",
        ]
    )  # fmt: skip
    report = json.loads((tmp_path / "reports" / "rank-0.json").read_text())
    assert report["world_size"] == 1
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()
