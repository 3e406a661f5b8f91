"""Train one LoRA adapter from normalized JSONL files, in one process or under a distributed launcher.

    accelerate launch --multi_gpu --num_processes 2 -m lora_playground.training.distributed_job \\
        --base minilm-l6 --train train.jsonl --validation validation.jsonl --labels ham,spam --output adapter/

Each process trains on its shard of every batch and DDP averages the gradients (gloo on CPU, NCCL on
GPUs). Only the first process saves the PEFT adapter folder. With `--report-dir`, every process writes
`rank-<N>.json` with its rank, the world size it saw and a sha256 of its trained adapter tensors, which
shows the processes really ran together and ended with identical weights.

Launchers, as checked with accelerate 1.16 and torch 2.13 on a CPU-only machine:
`accelerate launch --multi_gpu --num_processes N` starts N processes through torch's elastic launcher
(the same as `torchrun --nproc_per_node N`), and they train on CPU with the gloo backend.
`accelerate launch --cpu --num_processes N` starts a single process unless MPI's `mpirun` is installed.

Input files hold normalized classification rows: {"text": ..., "label": <class index>} (and an optional
"text_pair"). The label names are given in index order with `--labels`.
"""

import argparse
import hashlib
import json
import logging
from pathlib import Path

import datasets

from lora_playground.tasks.task import Task, TaskData
from lora_playground.training.config import TrainConfig

logger = logging.getLogger(__name__)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="base model: registry name, local folder or Hub id")
    parser.add_argument("--train", required=True, type=Path, help="JSONL file of training rows")
    parser.add_argument("--validation", type=Path, help="JSONL file of validation rows (optional)")
    parser.add_argument("--labels", required=True, help="comma-separated label names in class-index order")
    parser.add_argument("--output", required=True, type=Path, help="folder for the saved PEFT adapter")
    parser.add_argument("--report-dir", type=Path, help="folder for one rank-<N>.json report per process")
    parser.add_argument("--rank", type=int, default=8, help="LoRA rank r (default 8)")
    parser.add_argument("--epochs", type=float, default=1.0, help="training epochs (default 1)")
    parser.add_argument("--max-steps", type=int, help="stop after this many optimizer steps")
    parser.add_argument("--batch-size", type=int, default=8, help="rows per process per step (default 8)")
    parser.add_argument("--learning-rate", type=float, help="peak learning rate (default 5e-4 for LoRA)")
    parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    return parser.parse_args(argv)


def load_task(args: argparse.Namespace) -> TaskData:
    """Build TaskData from the normalized JSONL files; the fingerprint hashes the files' bytes."""
    files = {"train": str(args.train)}
    if args.validation is not None:
        files["validation"] = str(args.validation)
    splits = datasets.load_dataset("json", data_files=files, keep_in_memory=True)
    digest = hashlib.sha256()
    for path in files.values():
        digest.update(Path(path).read_bytes())
    task = Task(name=args.train.stem, type="classification", label_names=args.labels.split(","))
    return TaskData(task=task, splits=splits, fingerprint=digest.hexdigest())


def adapter_digest(model, adapter_name: str) -> str:
    """Return a sha256 over the adapter's tensors (names and values), to compare processes."""
    from peft import get_peft_model_state_dict

    digest = hashlib.sha256()
    state = get_peft_model_state_dict(model, adapter_name=adapter_name, save_embedding_layers=False)
    for name in sorted(state):
        digest.update(name.encode())
        digest.update(state[name].detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def main(argv: list[str] | None = None) -> None:
    from lora_playground.models import get_shared_base
    from lora_playground.training.trainer import train

    args = parse_args(argv)
    base = get_shared_base(args.base)
    config = TrainConfig(
        method="lora",
        rank=args.rank,
        epochs=args.epochs,
        max_steps=args.max_steps,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        seed=args.seed,
    )
    run = train(base, load_task(args), config)

    if args.report_dir is not None:
        import torch.distributed as dist

        rank = dist.get_rank() if dist.is_initialized() else 0
        args.report_dir.mkdir(parents=True, exist_ok=True)
        report = {
            "rank": rank,
            "world_size": run.world_size,
            "is_main_process": run.is_main_process,
            "adapter_sha256": adapter_digest(run.model, run.adapter_name),
            "train_tokens": run.cost.train_tokens,
            "steps": run.history[-1].get("step") if run.history else 0,
        }
        (args.report_dir / f"rank-{rank}.json").write_text(json.dumps(report))

    if run.is_main_process:
        run.model.save_pretrained(str(args.output))
        logger.info("Saved adapter %r to %s", run.adapter_name, args.output)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    main()
