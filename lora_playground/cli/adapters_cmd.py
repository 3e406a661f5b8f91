"""`adapters` command: list, show and delete entries of the local adapter store."""

import argparse
import json

from lora_playground.evaluation.formatting import format_bytes


def register(subparsers) -> None:
    adapters = subparsers.add_parser("adapters", help="list, show and delete stored adapters")
    actions = adapters.add_subparsers(dest="action", metavar="ACTION", required=True)

    listing = actions.add_parser("list", help="list stored adapters and full checkpoints")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=list_entries)

    show = actions.add_parser("show", help="print an entry's metadata and model card")
    show.add_argument("name")
    show.set_defaults(handler=show_entry)

    delete = actions.add_parser("delete", help="delete an entry")
    delete.add_argument("name")
    delete.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    delete.set_defaults(handler=delete_entry)


def list_entries(args: argparse.Namespace) -> int:
    from lora_playground.adapters.store import AdapterStore

    store = AdapterStore()
    entries = store.list()
    if args.json:
        rows = [
            {"name": entry.name, "ok": entry.ok, "problem": entry.problem,
             "metadata": entry.metadata.to_dict() if entry.metadata else None}
            for entry in entries
        ]
        print(json.dumps(rows, indent=2))
        return 0
    if not entries:
        print(f"No adapters in {store.root}. Train one with `python -m lora_playground train ...`.")
        return 0
    for entry in entries:
        if not entry.ok:
            print(f"{entry.name:<28} BROKEN: {entry.problem}")
            continue
        metadata = entry.metadata
        headline = metadata.metrics.get("accuracy", metadata.metrics.get("rouge_l"))
        score = f"{headline:.4f}" if isinstance(headline, float) else "n/a"
        print(
            f"{entry.name:<28} {metadata.kind:<5} {metadata.base_model.name:<14} {metadata.task.get('name', '?'):<20} "
            f"score {score}  {format_bytes(entry.size_bytes)}  {metadata.created_at}"
        )
    return 0


def show_entry(args: argparse.Namespace) -> int:
    from lora_playground.adapters.store import AdapterStore

    entry = AdapterStore().get(args.name)
    print(json.dumps(entry.metadata.to_dict(), indent=2))
    card = entry.path / "README.md"
    if card.exists():
        print()
        print(card.read_text(encoding="utf-8"))
    return 0


def delete_entry(args: argparse.Namespace) -> int:
    from lora_playground.adapters.store import AdapterStore

    store = AdapterStore()
    if not store.path(args.name).exists():  # path() rejects invalid names
        store.get(args.name)  # raises the "no adapter named ..." error listing existing entries
    if not args.yes:
        answer = input(f"Delete adapter {args.name!r} from {store.root}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("kept")
            return 1
    store.delete(args.name)
    print(f"deleted {args.name}")
    return 0
