"""Argument groups shared by several commands: where the data comes from, and training options."""

import argparse

from lora_playground.training.config import TrainConfig


def comma_list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def add_base_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--base",
        default="minilm-l6",
        help="base model: a registry name (smollm2-135m, minilm-l6), a local model folder or a Hub model id "
        "(default: minilm-l6)",
    )
    parser.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="allow a Hub model to run its own Python code (off by default; only for models you trust)",
    )


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("data")
    source = group.add_mutually_exclusive_group(required=True)
    source.add_argument("--task", help="a built-in task name (see `python -m lora_playground tasks`)")
    source.add_argument(
        "--data",
        help="a CSV/TSV/JSON/JSONL/Parquet file, a folder with train/validation/test files, or a Hub dataset id",
    )
    group.add_argument("--task-type", choices=["classification", "generation"], default="classification")
    group.add_argument("--name-of-task", dest="task_name", help="task name recorded in metadata (default: from the data)")
    group.add_argument(
        "--text-column", action="append", dest="text_columns", help="input text column; give twice for text pairs"
    )
    group.add_argument("--label-column", help="label column (classification)")
    group.add_argument("--label-names", type=comma_list, help="comma-separated class names in index order")
    group.add_argument(
        "--format",
        dest="data_format",
        choices=["alpaca", "chat", "prompt_completion"],
        help="generation record format (default: detected from the columns)",
    )
    group.add_argument("--no-header", action="store_true", help="the CSV/TSV file has no header row")
    group.add_argument(
        "--column-names", type=comma_list, help="comma-separated names for the columns of a file without a header"
    )
    group.add_argument(
        "--quoting",
        choices=["auto", "minimal", "none"],
        default="auto",
        help="CSV/TSV quote handling: auto (minimal for CSV, none for TSV), minimal, or none",
    )
    group.add_argument(
        "--file-format",
        choices=["csv", "tsv", "json", "jsonl", "parquet"],
        help="read the file as this format whatever its suffix says",
    )
    group.add_argument("--hub-config", help="Hub dataset configuration name (with a Hub dataset id)")
    group.add_argument("--encoding", default="utf-8", help="text encoding of the data files (default: utf-8)")
    group.add_argument("--revision", dest="hub_revision", help="Hub dataset revision (with a Hub dataset id)")
    group.add_argument(
        "--validation-fraction", type=float, default=0.1, help="share carved out for validation when missing"
    )
    group.add_argument("--test-fraction", type=float, default=0.1, help="share carved out for testing when missing")
    group.add_argument(
        "--ordered-split",
        action="store_true",
        help="split a single file in file order (train, then test, then validation) instead of at random",
    )


def data_options_from_args(args: argparse.Namespace) -> dict:
    """The keyword arguments for data.load_task_data (`source` first), as the user gave them."""
    return {
        "source": args.task or args.data,
        "task_type": args.task_type,
        "name": args.task_name,
        "text_columns": args.text_columns,
        "label_column": args.label_column,
        "label_names": args.label_names,
        "data_format": args.data_format,
        "has_header": not args.no_header,
        "column_names": args.column_names,
        "quoting": args.quoting,
        "file_format": args.file_format,
        "hub_config": args.hub_config,
        "encoding": args.encoding,
        "hub_revision": args.hub_revision,
        "validation_fraction": args.validation_fraction,
        "test_fraction": args.test_fraction,
        "ordered_split": args.ordered_split,
        "seed": args.seed,
    }


def add_training_arguments(parser: argparse.ArgumentParser, *, with_method: bool) -> None:
    defaults = TrainConfig()
    if with_method:
        parser.add_argument("--method", choices=["lora", "full"], default="lora", help="what to train (default: lora)")

    lora = parser.add_argument_group("LoRA")
    lora.add_argument("--rank", "-r", type=int, default=defaults.rank, help=f"LoRA rank r (default: {defaults.rank})")
    lora.add_argument("--alpha", type=float, default=defaults.alpha, help=f"LoRA alpha; scale is alpha/r (default: {defaults.alpha:g})")
    lora.add_argument("--dropout", type=float, default=defaults.dropout, help=f"LoRA dropout (default: {defaults.dropout})")
    lora.add_argument(
        "--target-modules",
        help="comma-separated linear layer names to adapt, or all-linear (default: per architecture, "
        "q_proj,v_proj for Llama and query,value for BERT)",
    )
    lora.add_argument("--rslora", action="store_true", help="rank-stabilized scaling alpha/sqrt(r)")
    lora.add_argument("--dora", action="store_true", help="weight-decomposed LoRA (DoRA); slower per step")
    lora.add_argument(
        "--lora-last-n-blocks",
        type=int,
        help="adapt only the last N transformer blocks; backward passes stop below them (default: every block)",
    )

    full = parser.add_argument_group("full finetuning")
    full.add_argument("--last-n-blocks", type=int, help="train only the last N transformer blocks and the head")

    schedule = parser.add_argument_group("schedule (shared by LoRA and full finetuning)")
    schedule.add_argument("--epochs", type=float, default=defaults.epochs, help=f"training epochs (default: {defaults.epochs:g})")
    schedule.add_argument("--lr", type=float, help="learning rate (default: 5e-4 for LoRA, 5e-5 for full finetuning)")
    schedule.add_argument("--full-lr", type=float, help="compare only: learning rate of the full finetune")
    schedule.add_argument("--batch-size", type=int, default=defaults.batch_size, help=f"examples per step (default: {defaults.batch_size})")
    schedule.add_argument("--grad-accum", type=int, default=defaults.grad_accum, help="gradient accumulation steps (default: 1)")
    schedule.add_argument("--max-length", type=int, default=defaults.max_length, help=f"max tokens per example (default: {defaults.max_length})")
    schedule.add_argument("--group-by-length", action="store_true", help="batch examples of similar length together")
    schedule.add_argument("--early-stopping", type=int, metavar="PATIENCE", help="stop after PATIENCE evaluations without improvement")
    schedule.add_argument("--eval-every", type=int, metavar="STEPS", help="validate every STEPS steps (default: every epoch)")
    schedule.add_argument("--max-steps", type=int, help="stop after this many optimizer steps")
    schedule.add_argument("--weight-decay", type=float, default=defaults.weight_decay)
    schedule.add_argument("--warmup-ratio", type=float, default=defaults.warmup_ratio)
    schedule.add_argument("--seed", type=int, default=defaults.seed, help=f"random seed for data order and init (default: {defaults.seed})")
    schedule.add_argument("--bf16", action="store_true", help="bfloat16 autocast (needs CPU support; check accuracy)")
    schedule.add_argument("--packing", action="store_true", help="generation: pack short examples into one sequence")
    schedule.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    schedule.add_argument(
        "--activation-checkpointing",
        action="store_true",
        help="recompute activations in the backward pass: lower peak memory, about one more forward pass per step",
    )


def train_config_from_args(args: argparse.Namespace, method: str | None = None) -> TrainConfig:
    target_modules = args.target_modules
    if target_modules and target_modules != "all-linear":
        target_modules = comma_list(target_modules)
    config = TrainConfig(
        method=method or args.method,
        rank=args.rank,
        alpha=args.alpha,
        dropout=args.dropout,
        target_modules=target_modules,
        use_rslora=args.rslora,
        use_dora=args.dora,
        epochs=args.epochs,
        learning_rate=args.lr,
        batch_size=args.batch_size,
        grad_accum=args.grad_accum,
        max_length=args.max_length,
        group_by_length=args.group_by_length,
        early_stopping_patience=args.early_stopping,
        eval_every_steps=args.eval_every,
        max_steps=args.max_steps,
        weight_decay=args.weight_decay,
        warmup_ratio=args.warmup_ratio,
        seed=args.seed,
        bf16=args.bf16,
        packing=args.packing,
        num_threads=args.threads,
        activation_checkpointing=args.activation_checkpointing,
    )
    if config.method == "lora":
        config.lora_last_n_blocks = args.lora_last_n_blocks
    if config.method == "full":
        config.last_n_blocks = args.last_n_blocks
        config.use_dora = config.use_rslora = False
        if method == "full":
            # `compare` trains both methods from one set of options: --lr is the LoRA rate there,
            # and the full finetune takes --full-lr or its own default.
            config.learning_rate = getattr(args, "full_lr", None)
    config.validate()
    return config
