"""`try`, `merge` and `export` commands: side-by-side answers, weighted merging, and merged model folders."""

import argparse
import json
from pathlib import Path

from lora_playground.cli.options import comma_list
from lora_playground.errors import ConfigError


def register(subparsers) -> None:
    try_models = subparsers.add_parser("try", help="answer one input with several stored adapters side by side")
    try_models.add_argument("--adapters", type=comma_list, default=[], help="comma-separated store entries (LoRA or full)")
    try_models.add_argument("--text", required=True, help="the input text (generation models get it as a user message)")
    try_models.add_argument("--base", help="base model (default: the base the adapters were trained on)")
    try_models.add_argument(
        "--base-model", "--include-base", dest="include_base", action="store_true",
        help="also run the untrained base model (generation only; for classification a note says why not)",
    )
    full = try_models.add_mutually_exclusive_group()
    full.add_argument(
        "--with-full", action="store_true",
        help="also run the full-finetune entries trained on the same data as a selected adapter",
    )
    full.add_argument("--full", type=comma_list, help="comma-separated full-finetune entries to add")
    try_models.add_argument("--max-new-tokens", type=int, default=64, help="generation: max new tokens (default: 64)")
    try_models.add_argument("--temperature", type=float, default=0.0, help="generation: 0 is greedy (default: 0)")
    try_models.add_argument("--top-p", type=float, default=1.0, help="generation: nucleus share kept (default: 1.0)")
    try_models.add_argument("--seed", type=int, default=0, help="generation: sampling seed (default: 0)")
    try_models.add_argument("--json", action="store_true", help="print the answers as JSON")
    try_models.set_defaults(handler=run_try)

    merge = subparsers.add_parser("merge", help="combine stored LoRA adapters into a new one (PEFT weighted merging)")
    merge.add_argument("--sources", type=comma_list, required=True, help="comma-separated LoRA entries to merge")
    merge.add_argument("--weights", type=_float_list, help="comma-separated weights, one per source (default: equal, summing to 1)")
    merge.add_argument("--method", default="linear", help="linear, cat, svd, ties, dare_linear, dare_ties, magnitude_prune, "
                       "or an *_svd variant (default: linear)")
    merge.add_argument("--density", type=float, help="share of each update kept, 0-1 (ties, dare_*, magnitude_prune*)")
    merge.add_argument("--majority-sign", choices=["total", "frequency"], default="total", help="TIES sign election")
    merge.add_argument("--svd-rank", type=int, help="rank of the result for *_svd methods (default: largest source rank)")
    merge.add_argument("--seed", type=int, default=0, help="seed of the random drops of dare_* methods (default: 0)")
    merge.add_argument("--name", required=True, help="name of the new store entry")
    merge.add_argument("--force", action="store_true", help="replace an existing entry of that name")
    merge.add_argument(
        "--data", action="append", default=[], metavar="SOURCE=PATH",
        help="data of a source's task for the comparison (needed unless the task is built in); repeatable",
    )
    merge.add_argument("--no-evaluate", action="store_true", help="skip scoring the merge on the source tasks")
    merge.add_argument("--max-examples", type=int, help="score only the first N rows of each test split")
    merge.add_argument("--output", type=Path, help="also write the comparison as JSON to this file")
    merge.set_defaults(handler=run_merge)

    export = subparsers.add_parser("export", help="merge a LoRA adapter into its base and save a plain transformers model")
    export.add_argument("name", help="the LoRA store entry")
    export.add_argument("--output", type=Path, required=True, help="folder to write (must be new or empty)")
    export.add_argument("--force", action="store_true", help="replace a non-empty output folder")
    export.add_argument("--no-verify", action="store_true", help="skip reloading the folder and comparing its logits")
    export.set_defaults(handler=run_export)


def _float_list(value: str) -> list[float]:
    try:
        return [float(item) for item in comma_list(value)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a comma-separated list of numbers") from None


def run_try(args: argparse.Namespace) -> int:
    from lora_playground.pipeline.inference import answer_side_by_side

    answers = answer_side_by_side(
        args.base,
        args.adapters,
        args.text,
        include_base=args.include_base,
        include_full_names=args.full or args.with_full,
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        top_p=args.top_p,
        seed=args.seed,
    )
    if args.json:
        print(json.dumps(answers, indent=2, ensure_ascii=False))
    else:
        print(side_by_side_table(answers))
    return 0


def side_by_side_table(answers: list[dict]) -> str:
    """Return a Markdown table: model, kind, answer (label and top probabilities, or reply), latency."""
    lines = ["| model | kind | answer | latency (ms) |", "| --- | --- | --- | ---: |"]
    for answer in answers:
        if answer["note"]:
            text = f"({answer['note']})"
        elif answer["probabilities"]:
            top = sorted(answer["probabilities"].items(), key=lambda item: item[1], reverse=True)[:3]
            text = f"{answer['output']} (" + ", ".join(f"{label} {value:.0%}" for label, value in top) + ")"
        else:
            text = answer["output"] or "(empty reply)"
        text = " ".join(text.split()).replace("|", "\\|")
        latency = f"{answer['latency_ms']:.1f}" if answer["latency_ms"] is not None else "-"
        lines.append(f"| {answer['name']} | {answer['kind']} | {text} | {latency} |")
    return "\n".join(lines)


def run_merge(args: argparse.Namespace) -> int:
    from lora_playground.adapters.merging import MergeOptions, merge_adapters
    from lora_playground.pipeline.merge_evaluation import evaluate_merge

    weights = args.weights or [1.0 / len(args.sources)] * len(args.sources)
    data_sources = _data_sources(args.data)
    options = MergeOptions(
        method=args.method,
        density=args.density,
        majority_sign_method=args.majority_sign,
        svd_rank=args.svd_rank,
        seed=args.seed,
    )
    entry = merge_adapters(args.sources, weights, args.name, options=options, force=args.force)
    record = entry.metadata.extra["merge"]
    print(f"saved merged adapter {entry.name} (method {record['method']}, rank {record['rank']}) to {entry.path}")
    if args.no_evaluate:
        return 0
    comparison = evaluate_merge(entry.name, data_sources=data_sources, max_examples=args.max_examples)
    print(comparison.to_markdown())
    if args.output:
        args.output.write_text(json.dumps(comparison.to_dict(), indent=2) + "\n", encoding="utf-8")
        print(f"comparison: {args.output}")
    return 0


def _data_sources(values: list[str]) -> dict[str, str]:
    sources = {}
    for value in values:
        name, separator, path = value.partition("=")
        if not separator or not name or not path:
            raise ConfigError(f"--data {value!r} is not SOURCE=PATH.", "Write the source adapter's name, '=', then the data path.")
        sources[name] = path
    return sources


def run_export(args: argparse.Namespace) -> int:
    from lora_playground.adapters.export import export_merged

    result = export_merged(args.name, args.output, force=args.force, verify=not args.no_verify)
    print(f"exported {args.name} merged into its base to {result.path}")
    print(f"load it with transformers.{result.auto_class}.from_pretrained({str(result.path)!r})")
    if result.max_abs_difference is not None:
        print(f"max logit difference vs the unmerged adapter: {result.max_abs_difference:.2e}")
    return 0
