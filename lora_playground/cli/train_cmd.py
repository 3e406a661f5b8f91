"""`train`, `compare` and `evaluate` commands."""

import argparse
from pathlib import Path

from lora_playground.cli.options import (
    add_base_argument,
    add_data_arguments,
    add_training_arguments,
    data_options_from_args,
    train_config_from_args,
)
from lora_playground.evaluation.formatting import format_bytes


def register(subparsers) -> None:
    train = subparsers.add_parser("train", help="train one LoRA adapter or a full finetune and store it")
    add_base_argument(train)
    add_data_arguments(train)
    add_training_arguments(train, with_method=True)
    train.add_argument("--name", required=True, help="name of the store entry to create")
    train.add_argument("--force", action="store_true", help="replace an existing entry of that name")
    train.set_defaults(handler=run_train)

    compare = subparsers.add_parser(
        "compare", help="train LoRA and a full finetune on the same data and schedule and compare them"
    )
    add_base_argument(compare)
    add_data_arguments(compare)
    add_training_arguments(compare, with_method=False)
    compare.add_argument("--name", required=True, help="run name; entries NAME-lora and NAME-full are created")
    compare.add_argument("--output", type=Path, help="folder for comparison.json and comparison.md")
    compare.add_argument("--force", action="store_true", help="replace existing entries of those names")
    compare.set_defaults(handler=run_compare)

    evaluate = subparsers.add_parser("evaluate", help="compare stored adapters on the test split of a task")
    add_data_arguments(evaluate)
    evaluate.add_argument("names", nargs="+", help="store entries to evaluate side by side")
    evaluate.add_argument("--seed", type=int, default=42, help="seed of the splits made when one is missing")
    evaluate.add_argument("--output", type=Path, help="folder for comparison.json and comparison.md")
    evaluate.set_defaults(handler=run_evaluate)


def run_train(args: argparse.Namespace) -> int:
    from lora_playground.data import load_task_data
    from lora_playground.pipeline import train_and_store

    config = train_config_from_args(args)
    task_data = load_task_data(**data_options_from_args(args))
    _print_notes(task_data.notes)
    run = train_and_store(
        args.base, task_data, config, args.name, force=args.force, trust_remote_code=args.trust_remote_code
    )
    print(_run_summary(run.name, run.entry.metadata.kind, run.result.metrics, run.result.cost))
    print(f"saved to {run.entry.path}")
    return 0


def run_compare(args: argparse.Namespace) -> int:
    from lora_playground.data import load_task_data
    from lora_playground.pipeline import compare

    lora_config = train_config_from_args(args, method="lora")
    full_config = train_config_from_args(args, method="full")
    task_data = load_task_data(**data_options_from_args(args))
    _print_notes(task_data.notes)
    outcome = compare(
        args.base,
        task_data,
        lora_config,
        full_config,
        lora_name=f"{args.name}-lora",
        full_name=f"{args.name}-full",
        output_dir=args.output,
        force=args.force,
    )
    print(outcome.report.to_markdown())
    print(f"report: {outcome.markdown_path} and {outcome.json_path}")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from lora_playground.data import load_task_data
    from lora_playground.pipeline import compare_stored

    task_data = load_task_data(**data_options_from_args(args))
    _print_notes(task_data.notes)
    report, json_path, markdown_path = compare_stored(args.names, task_data, output_dir=args.output)
    print(report.to_markdown())
    print(f"report: {markdown_path} and {json_path}")
    return 0


def _print_notes(notes: list[str]) -> None:
    for note in notes:
        print(f"note: {note}")


def _run_summary(name: str, kind: str, metrics: dict, cost: dict) -> str:
    headline = {key: value for key, value in metrics.items() if isinstance(value, float)}
    lines = [f"{name} ({kind})"]
    lines.append("  " + ", ".join(f"{key} {value:.4f}" for key, value in headline.items()))
    lines.append(
        "  trainable {trainable:,} of {total:,} parameters, stored {stored}, peak memory {peak}, "
        "{time:.1f} s, {tps:,.0f} tokens/s".format(
            trainable=cost.get("trainable_params", 0),
            total=cost.get("total_params", 0),
            stored=format_bytes(cost.get("stored_bytes", 0)),
            peak=format_bytes(cost.get("peak_memory_bytes", 0)),
            time=cost.get("train_wall_time_s", 0.0),
            tps=cost.get("train_tokens_per_s", 0.0),
        )
    )
    return "\n".join(lines)
