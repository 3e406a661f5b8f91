"""`hub` command: push adapters to the Hugging Face Hub, pull them back, list a user's adapters.

The token comes from HF_TOKEN or the `hf auth login` token; there is deliberately no --token option,
because command lines end up in shell history and process lists. The endpoint follows HF_ENDPOINT.
"""

import argparse


def register(subparsers) -> None:
    hub = subparsers.add_parser("hub", help="push, pull and list adapters on the Hugging Face Hub")
    actions = hub.add_subparsers(dest="action", metavar="ACTION", required=True)

    push = actions.add_parser("push", help="upload a stored adapter with its model card in one commit")
    push.add_argument("name", help="store entry to push")
    push.add_argument("repo_id", help="target repo, e.g. alice/sms-spam-lora (created if missing)")
    push.add_argument("--private", action="store_true", help="create the repo as private")
    push.add_argument("--baseline", help="store entry of the full-finetune baseline, shown beside the metrics in the card")
    push.add_argument(
        "--base-hub-id", help="Hub id of the base model, needed when the adapter was trained on a local base folder"
    )
    push.add_argument("--endpoint", help="Hub URL (default: HF_ENDPOINT or https://huggingface.co)")
    push.set_defaults(handler=run_push)

    pull = actions.add_parser("pull", help="download an adapter, check it fits the base, and store it")
    pull.add_argument("repo_id", help="repo to pull, e.g. alice/sms-spam-lora")
    pull.add_argument("--revision", help="branch, tag or commit (default: main)")
    pull.add_argument("--name", help="store entry name (default: the repo id with '/' replaced by '--')")
    pull.add_argument("--base", help="base model to check the adapter against (default: the one it names)")
    pull.add_argument("--force", action="store_true", help="replace an existing entry of that name")
    pull.add_argument(
        "--allow-pickle",
        action="store_true",
        help="accept pickle (.bin) weights; pickle files can run code when loaded, so only for repos you trust",
    )
    pull.add_argument("--endpoint", help="Hub URL (default: HF_ENDPOINT or https://huggingface.co)")
    pull.set_defaults(handler=run_pull)

    listing = actions.add_parser("list", help="list PEFT adapters of a user or organisation")
    listing.add_argument("author", help="user or organisation name")
    listing.add_argument("--limit", type=int, default=50, help="maximum repos to list (default: 50)")
    listing.add_argument("--endpoint", help="Hub URL (default: HF_ENDPOINT or https://huggingface.co)")
    listing.set_defaults(handler=run_list)


def run_push(args: argparse.Namespace) -> int:
    from lora_playground.hub import push_adapter

    result = push_adapter(
        args.name,
        args.repo_id,
        private=args.private,
        endpoint=args.endpoint,
        baseline=args.baseline,
        base_hub_id=args.base_hub_id,
    )
    print(f"pushed {args.name} to {result.repo_url}")
    print(f"commit {result.commit_id}")
    return 0


def run_pull(args: argparse.Namespace) -> int:
    from lora_playground.hub import pull_adapter
    from lora_playground.models import get_shared_base

    base = get_shared_base(args.base) if args.base else None
    entry = pull_adapter(
        args.repo_id,
        revision=args.revision,
        name=args.name,
        endpoint=args.endpoint,
        base=base,
        force=args.force,
        allow_pickle=args.allow_pickle,
    )
    print(f"pulled {args.repo_id} into {entry.path}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    from lora_playground.hub import list_hub_adapters

    adapters = list_hub_adapters(args.author, endpoint=args.endpoint, limit=args.limit)
    if not adapters:
        print(f"No PEFT adapters found for {args.author!r}.")
    for info in adapters:
        modified = info.last_modified.isoformat() if info.last_modified else "?"
        print(f"{info.repo_id:<48} base {info.base_model or '?':<40} updated {modified}")
    return 0
