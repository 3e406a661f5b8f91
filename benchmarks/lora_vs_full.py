"""LoRA (default configuration) against full finetuning on one base, the same task and the same batches.

Each method trains in its own fresh process through the product pipeline (train, evaluate on the test
split, save) with the same seed, data order, batch size, epochs and schedule. The validation split is
left out so the training time contains training steps only. Reported side by side: training throughput
(non-padding tokens per second), peak memory, stored size and test accuracy, and their ratios.

    python -m benchmarks.lora_vs_full                      # smollm2-135m on the SMS spam split
    python -m benchmarks.lora_vs_full --max-steps 30       # bounded time: throughput and memory only
    python -m benchmarks.lora_vs_full --lora-variant nodropout:dropout=0
"""

import argparse
import json
import sys

from benchmarks.isolation import run_isolated
from benchmarks.options import base_parser, script_main
from benchmarks.report import BenchmarkReport, format_ratio, mib, ratio

NAME = "lora_vs_full"
QUICK_ROWS = {"train": 24, "test": 12}
WORKER = "benchmarks.training_runs:measure_training"


def parse_variant(text: str) -> tuple[str, dict]:
    """Parse "NAME:field=value,field=value" into (NAME, TrainConfig overrides); values are read as JSON when they can be."""
    from lora_playground.training.config import TrainConfig

    name, separator, assignments = text.partition(":")
    if not separator or not name or not assignments:
        raise argparse.ArgumentTypeError(f"Invalid variant {text!r}: write NAME:field=value[,field=value].")
    overrides = {}
    for assignment in assignments.split(","):
        field, equals, value = assignment.partition("=")
        field = field.strip()
        if not equals or field not in TrainConfig.__dataclass_fields__:
            raise argparse.ArgumentTypeError(
                f"Invalid assignment {assignment!r} in variant {name!r}: use field=value with a TrainConfig field "
                f"({', '.join(sorted(TrainConfig.__dataclass_fields__))})."
            )
        try:
            overrides[field] = json.loads(value)
        except json.JSONDecodeError:
            overrides[field] = value
    return name, overrides


def build_parser():
    parser = base_parser(NAME, __doc__.split("\n\n")[0], default_base="smollm2-135m")
    parser.add_argument("--epochs", type=float, default=1.0, help="training epochs of every run (default: 1)")
    parser.add_argument(
        "--max-steps", type=int, help="stop every run after this many optimizer steps (bounds the time; overrides epochs)"
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=8,
        help="examples per step (default: 8, the batch size of the book's chapter 6; activation memory grows with "
        "it and is needed by both methods, so larger batches bring the memory ratio closer to 1)",
    )
    parser.add_argument("--max-length", type=int, default=128, help="max tokens per example (default: 128)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--bf16", action="store_true", help="train every run under bfloat16 autocast")
    parser.add_argument(
        "--lora-variant",
        action="append",
        default=[],
        type=parse_variant,
        metavar="NAME:FIELD=VALUE[,FIELD=VALUE]",
        help="also train a LoRA run with these TrainConfig changes, for example nodropout:dropout=0 (repeatable); "
        "the targets use the default LoRA run",
    )
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds allowed per run (default: 3600)")
    return parser


def run(args) -> dict:
    shared = {
        "epochs": args.epochs,
        "max_steps": 2 if args.quick else args.max_steps,
        "batch_size": 4 if args.quick else args.batch_size,
        "max_length": 32 if args.quick else args.max_length,
        "seed": args.seed,
        "bf16": args.bf16,
    }
    payload = {
        "base": args.base,
        "data": args.data,
        "max_rows": QUICK_ROWS if args.quick else None,
        "drop_splits": ["validation"],
        "store": True,
        "name": NAME,
    }
    configs = {"lora": {"method": "lora"}, "full": {"method": "full"}}
    for name, overrides in args.lora_variant:
        configs[f"lora {name}"] = {**overrides, "method": "lora"}
    options = {**vars(args), "lora_variant": [f"{name}: {overrides}" for name, overrides in args.lora_variant]}
    report = BenchmarkReport(NAME, options=options, quick=args.quick)

    runs = {}
    for name, config in configs.items():
        runs[name] = run_isolated(
            WORKER, {**payload, "config": {**shared, **config}}, isolate=not args.no_isolation, timeout_s=args.timeout
        )
    report.results = runs
    lora, full = runs["lora"], runs["full"]

    figures = report.table(
        f"LoRA vs full finetuning on {args.base}, task {lora['task']} ({lora['rows']['train']:,} training rows)",
        [
            "run",
            "trainable params",
            "steps",
            "train tokens",
            "train time (s)",
            "tokens/s",
            "process peak RSS (MiB)",
            "peak above loaded base (MiB)",
            "stored weights (MiB)",
            "test accuracy",
            "test macro-F1",
        ],
        note="Train time covers the Trainer loop only (no validation). Process peak RSS is the whole process's "
        "high-water mark (base model, Python and libraries included). 'Above loaded base' is the peak while "
        "building, training, evaluating and saving, minus the RSS with the data loaded and the base weights resident.",
    )
    for name, result in runs.items():
        figures.add(
            name,
            result["trainable_params"],
            result["steps"],
            result["train_tokens"],
            result["train_wall_time_s"],
            result["train_tokens_per_s"],
            mib(result["process_peak_rss_bytes"]),
            mib(result["peak_above_setup_bytes"]),
            mib(result["stored_bytes"]),
            result["accuracy"],
            result["macro_f1"],
        )

    ratios = report.table(
        "Ratios to the full finetune (measured in this run)",
        ["run", "throughput (tokens/s)", "process peak RSS", "peak above loaded base", "stored weights",
         "test accuracy minus full (points)"],
        note="Targets for the default LoRA run: throughput >= 2x, process peak RSS <= 0.5x, stored weights <= 0.01x.",
    )
    for name, result in runs.items():
        if name == "full":
            continue
        accuracy_gap = None
        if result["accuracy"] is not None and full["accuracy"] is not None:
            accuracy_gap = f"{100 * (result['accuracy'] - full['accuracy']):+.2f}"
        ratios.add(
            name,
            format_ratio(ratio(result["train_tokens_per_s"], full["train_tokens_per_s"])),
            format_ratio(ratio(result["process_peak_rss_bytes"], full["process_peak_rss_bytes"])),
            format_ratio(ratio(result["peak_above_setup_bytes"], full["peak_above_setup_bytes"])),
            format_ratio(ratio(result["stored_bytes"], full["stored_bytes"])),
            accuracy_gap or "n/a",
        )

    report.target("training throughput LoRA / full", ratio(lora["train_tokens_per_s"], full["train_tokens_per_s"]), 2.0)
    report.target("process peak RSS LoRA / full", ratio(lora["process_peak_rss_bytes"], full["process_peak_rss_bytes"]),
                  0.5, "at_most")
    report.target("stored weights LoRA / full", ratio(lora["stored_bytes"], full["stored_bytes"]), 0.01, "at_most")
    report.notes.append(
        f"Same seed ({args.seed}), data order, batch size and schedule for every run; learning rates are the "
        "method defaults (LoRA 5e-4, full 5e-5). Each run started in a fresh process."
    )
    return report.finish(args.output)


main = script_main(build_parser, run)


if __name__ == "__main__":
    sys.exit(main())
