"""`models`, `tasks` and `data` commands: what can be trained, and what a data source looks like."""

import argparse
import json

from lora_playground.cli.options import add_data_arguments, data_options_from_args


def register(subparsers) -> None:
    models = subparsers.add_parser("models", help="list the embedded base models")
    models.set_defaults(handler=list_models)

    tasks = subparsers.add_parser("tasks", help="list the built-in tasks")
    tasks.set_defaults(handler=list_tasks)

    data = subparsers.add_parser("data", help="check a data source and preview its rows and labels")
    add_data_arguments(data)
    data.add_argument("--seed", type=int, default=42, help="seed of the splits made when one is missing")
    data.add_argument("--rows", type=int, default=5, help="rows to show per split (default: 5)")
    data.add_argument("--json", action="store_true", help="print the preview as JSON")
    data.set_defaults(handler=preview_data)


def list_models(args: argparse.Namespace) -> int:
    from lora_playground.models.registry import REGISTRY

    for spec in REGISTRY.values():
        print(f"{spec.name:<14} {spec.architecture:<8} {spec.hub_id:<40} {spec.description}")
    print("Any local model folder or Hugging Face model id works too.")
    return 0


def list_tasks(args: argparse.Namespace) -> int:
    from lora_playground.tasks.builtin import BUILTIN_TASKS

    for name, info in BUILTIN_TASKS.items():
        print(f"{name:<22} {info.type:<15} {info.description}")
        print(f"{'':<22} source: {info.source} (license: {info.license})")
    return 0


def preview_data(args: argparse.Namespace) -> int:
    from lora_playground.data import preview

    options = data_options_from_args(args)
    source = options.pop("source")
    summary = preview(source, rows=args.rows, **options)
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
        return 0
    print(json.dumps(summary, indent=2, default=str, ensure_ascii=False))
    return 0
