"""Predictions per second of an unmerged LoRA adapter, the same adapter merged, and a full model.

A LoRA adapter is trained for a few steps on the task, then three models classify the test texts:
- unmerged: the PEFT model on the shared frozen base (every adapted layer adds the low-rank product);
- merged: the adapter merged into an independent copy of the base (`merge_and_unload`);
- full: an independent full model of the same architecture, as a full finetune produces.
Times cover tokenization, the forward passes and the softmax (the product's `predict_classification`),
at batch size 1 and 32 by default, best of several passes after a warm-up batch.

    python -m benchmarks.inference                       # smollm2-135m
    python -m benchmarks.inference --base minilm-l6
"""

import sys
import tempfile
import time

from benchmarks.isolation import run_isolated
from benchmarks.options import base_parser, script_main
from benchmarks.report import BenchmarkReport, format_ratio, mib, ratio

NAME = "inference"
WORKER = "benchmarks.inference:measure_inference"
QUICK_ROWS = {"train": 16, "test": 8}


def measure_inference(
    *,
    base: str,
    data: str | None,
    batch_sizes: list[int],
    examples: int,
    repeats: int,
    train_steps: int,
    max_rows: dict[str, int] | None = None,
) -> dict:
    """Return predictions per second per model and batch size, extra memory per model, and a merge check."""
    import numpy as np
    from peft import PeftModel

    from lora_playground.evaluation import predict_classification
    from lora_playground.models import get_shared_base
    from lora_playground.training import TrainConfig
    from lora_playground.training.cost import release_free_memory
    from lora_playground.training.trainer import train

    from benchmarks.training_runs import current_rss_bytes, page_in
    from benchmarks.workloads import load_workload

    task_data = load_workload(data, max_rows=max_rows, drop_splits=("validation",))
    shared = get_shared_base(base)
    labels = task_data.task.label_names
    tests = list(task_data.splits["test"]["text"])
    texts = (tests * (examples // max(len(tests), 1) + 1))[:examples]

    models = {}
    extra_rss = {}

    def build(name: str, make_model) -> None:
        # Each model's memory is measured from a heap without the freed memory of earlier steps.
        release_free_memory()
        before = current_rss_bytes()
        models[name] = make_model().eval()
        extra_rss[name] = current_rss_bytes() - before

    with tempfile.TemporaryDirectory(prefix="bench-adapter-") as folder:
        trained = train(shared, task_data, TrainConfig(max_steps=train_steps, batch_size=8))
        trained.model.save_pretrained(folder, save_embedding_layers=False)
        del trained
        page_in(shared.model)
        build("LoRA unmerged", lambda: PeftModel.from_pretrained(shared.classification_model(len(labels), labels), folder))
        build(
            "LoRA merged",
            lambda: PeftModel.from_pretrained(shared.full_copy("classification", len(labels), labels), folder)
            .merge_and_unload(),
        )
    build("full model", lambda: shared.full_copy("classification", len(labels), labels))

    unmerged_probabilities = predict_classification(models["LoRA unmerged"], shared.tokenizer, tests).probabilities
    merged_probabilities = predict_classification(models["LoRA merged"], shared.tokenizer, tests).probabilities
    merge_difference = float(np.abs(unmerged_probabilities - merged_probabilities).max())

    # Passes alternate between the models, so a burst of load from elsewhere hits all of them alike.
    throughput: dict[str, dict[str, float]] = {name: {} for name in models}
    for batch_size in batch_sizes:
        count = len(texts) if batch_size > 1 else min(len(texts), max(4, examples // 4))
        for model in models.values():
            predict_classification(model, shared.tokenizer, texts[:batch_size], batch_size=batch_size)  # warm-up
        for _ in range(repeats):
            for name, model in models.items():
                started = time.perf_counter()
                predict_classification(model, shared.tokenizer, texts[:count], batch_size=batch_size)
                speed = count / (time.perf_counter() - started)
                throughput[name][str(batch_size)] = max(speed, throughput[name].get(str(batch_size), 0.0))
    return {
        "task": task_data.task.name,
        "examples": len(texts),
        "predictions_per_s": throughput,
        "extra_rss_bytes": extra_rss,
        "merge_max_probability_difference": merge_difference,
    }


def build_parser():
    parser = base_parser(NAME, __doc__.split("\n\n")[0], default_base="smollm2-135m")
    parser.add_argument("--batch-sizes", default="1,32", help="comma-separated batch sizes (default: 1,32)")
    parser.add_argument(
        "--examples", type=int, default=128, help="texts per timed pass (default: 128; batch 1 uses a quarter)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed passes; the best counts (default: 3)")
    parser.add_argument("--train-steps", type=int, default=10, help="training steps of the adapter (default: 10)")
    parser.add_argument("--timeout", type=float, default=1800.0)
    return parser


def run(args) -> dict:
    report = BenchmarkReport(NAME, options=vars(args), quick=args.quick)
    batch_sizes = [int(size) for size in args.batch_sizes.split(",")]
    payload = {
        "base": args.base,
        "data": args.data,
        "batch_sizes": [1, 4] if args.quick else batch_sizes,
        "examples": 8 if args.quick else args.examples,
        "repeats": 1 if args.quick else args.repeats,
        "train_steps": 1 if args.quick else args.train_steps,
        "max_rows": QUICK_ROWS if args.quick else None,
    }
    result = run_isolated(WORKER, payload, isolate=not args.no_isolation, timeout_s=args.timeout)
    report.results = result

    throughput = result["predictions_per_s"]
    sizes = list(next(iter(throughput.values())))
    table = report.table(
        f"Predictions per second on {args.base} (task {result['task']})",
        ["model", *[f"batch {size}" for size in sizes], *[f"vs full, batch {size}" for size in sizes], "extra RSS (MiB)"],
        note="Extra RSS is the resident memory the model added when it was built: the unmerged adapter shares the "
        "base weights, the merged and full models each hold a copy.",
    )

    full = throughput["full model"]
    for name, figures in throughput.items():
        table.add(
            name,
            *[figures[size] for size in sizes],
            *[format_ratio(ratio(figures[size], full[size])) for size in sizes],
            mib(result["extra_rss_bytes"][name]),
        )
    report.notes.append(
        "Merged and unmerged predictions differ by at most "
        f"{result['merge_max_probability_difference']:.2e} in probability (float rounding)."
    )
    return report.finish(args.output)


main = script_main(build_parser, run)


if __name__ == "__main__":
    sys.exit(main())
