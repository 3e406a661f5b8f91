"""Growth of LoRA's cost: training time and memory against examples, sequence length and rank, and
inference memory against the number of adapters loaded on one base.

Every training point runs in a fresh process (clean memory peak) with the product's default LoRA
configuration except the swept value:
- examples: one epoch over N training rows (rows repeat when N exceeds the data);
- sequence length: a fixed number of steps on rows lengthened and truncated to exactly L tokens;
- LoRA rank: a fixed number of steps at ranks r.
For adapters, K untrained adapters (default configuration, classification head included) are saved,
then a fresh process loads them one by one onto one base with PEFT's `load_adapter`, recording the RSS.

    python -m benchmarks.scaling                           # smollm2-135m
    python -m benchmarks.scaling --base minilm-l6 --steps 5
"""

import sys
import tempfile

from benchmarks.isolation import run_isolated
from benchmarks.options import base_parser, script_main
from benchmarks.report import BenchmarkReport, mib, ratio

NAME = "scaling"
TRAIN_WORKER = "benchmarks.training_runs:measure_training"
MAKE_ADAPTERS = "benchmarks.scaling:make_adapters"
LOAD_ADAPTERS = "benchmarks.scaling:load_adapters"


def make_adapters(*, base: str, count: int, folder: str, labels: int = 2) -> dict:
    """Save `count` untrained LoRA adapters (default configuration, seeds 0..count-1) under `folder`/<i>."""
    import torch

    from lora_playground.models import get_shared_base
    from lora_playground.training import TrainConfig, apply_lora

    shared = get_shared_base(base)
    paths = []
    for index in range(count):
        torch.manual_seed(index)
        model = apply_lora(shared.classification_model(labels), TrainConfig(seed=index), "classification")
        path = f"{folder}/{index}"
        model.save_pretrained(path, save_embedding_layers=False)
        paths.append(path)
    return {"paths": paths}


def load_adapters(*, base: str, paths: list[str], labels: int = 2) -> dict:
    """Load the adapters at `paths` onto one shared base one by one, and return the RSS after each count.

    After each load the new adapter is made active and classifies one short batch, so lazily allocated
    memory is counted too. `rss_bytes[k]` is the RSS with k adapters loaded. For k = 0 the base weights
    are resident and a classification model without adapters has already classified that batch once.
    """
    import torch
    from peft import PeftModel

    from lora_playground.models import get_shared_base
    from lora_playground.training.cost import release_free_memory, tensor_bytes

    from benchmarks.training_runs import current_rss_bytes, page_in

    shared = get_shared_base(base)
    page_in(shared.model)
    inputs = shared.tokenizer(["a short message", "another one"], return_tensors="pt", padding=True)
    model = shared.classification_model(labels)
    with torch.inference_mode():
        model(**inputs)
    release_free_memory()
    rss = [current_rss_bytes()]
    for index, path in enumerate(paths):
        name = f"adapter{index}"
        if index == 0:
            model = PeftModel.from_pretrained(model, path, adapter_name=name)
        else:
            model.load_adapter(path, adapter_name=name)
        model.set_adapter(name)
        with torch.inference_mode():
            model(**inputs)
        rss.append(current_rss_bytes())
    return {"rss_bytes": rss, "base_tensor_bytes": tensor_bytes(shared.model.state_dict())}


def build_parser():
    parser = base_parser(NAME, __doc__.split("\n\n")[0], default_base="smollm2-135m")
    parser.add_argument(
        "--examples", default="64,128,256,512", help="training rows per point, one epoch each (default: 64,128,256,512)"
    )
    parser.add_argument("--lengths", default="32,64,128,256,512", help="sequence lengths in tokens (default: 32,...,512)")
    parser.add_argument("--ranks", default="2,8,32,128", help="LoRA ranks (default: 2,8,32,128)")
    parser.add_argument("--adapters", default="1,2,4,8,16,32", help="numbers of loaded adapters to report (default: 1,...,32)")
    parser.add_argument("--steps", type=int, default=5, help="training steps per length and rank point (default: 5)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds allowed per point")
    return parser


def _numbers(text: str) -> list[int]:
    return [int(value) for value in text.split(",") if value.strip()]


def run(args) -> dict:
    report = BenchmarkReport(NAME, options=vars(args), quick=args.quick)
    isolate = not args.no_isolation
    examples = [8, 16] if args.quick else _numbers(args.examples)
    lengths = [16, 32] if args.quick else _numbers(args.lengths)
    ranks = [2, 4] if args.quick else _numbers(args.ranks)
    adapter_counts = [1, 2] if args.quick else _numbers(args.adapters)
    steps = 1 if args.quick else args.steps
    batch_size = 4 if args.quick else args.batch_size

    def point(config: dict, **data_options) -> dict:
        payload = {
            "base": args.base,
            "data": args.data,
            "config": {"batch_size": batch_size, **config},
            "drop_splits": ["validation", "test"],
            "store": False,
            **data_options,
        }
        return run_isolated(TRAIN_WORKER, payload, isolate=isolate, timeout_s=args.timeout)

    columns = ["train time (s)", "s per step", "tokens/s", "process peak RSS (MiB)", "peak above loaded base (MiB)"]

    def figures(result: dict) -> list:
        return [
            result["train_wall_time_s"],
            result["train_wall_time_s"] / max(result["steps"], 1),
            result["train_tokens_per_s"],
            mib(result["process_peak_rss_bytes"]),
            mib(result["peak_above_setup_bytes"]),
        ]

    by_examples = {n: point({"epochs": 1.0}, max_rows={"train": n}) for n in examples}
    table = report.table(f"LoRA training on {args.base} against training rows (1 epoch, batch {batch_size})",
                         ["rows", "steps", *columns, "time per row (ms)"])
    for n, result in by_examples.items():
        table.add(n, result["steps"], *figures(result), 1000 * result["train_wall_time_s"] / n)

    by_length = {
        length: point({"max_steps": steps, "max_length": length}, min_words=length) for length in lengths
    }
    table = report.table(f"LoRA training against sequence length ({steps} steps, batch {batch_size})",
                         ["tokens per row", *columns])
    for length, result in by_length.items():
        table.add(length, *figures(result))

    by_rank = {rank: point({"max_steps": steps, "rank": rank, "alpha": 2.0 * rank}) for rank in ranks}
    table = report.table(f"LoRA training against rank ({steps} steps, batch {batch_size}, alpha = 2r)",
                         ["rank", "trainable params", "adapter + head (MiB)", *columns])
    for rank, result in by_rank.items():
        table.add(rank, result["trainable_params"], mib(result["stored_bytes"]), *figures(result))

    with tempfile.TemporaryDirectory(prefix="scaling-adapters-") as folder:
        made = run_isolated(MAKE_ADAPTERS, {"base": args.base, "count": max(adapter_counts), "folder": folder},
                            isolate=isolate, timeout_s=args.timeout)
        loaded = run_isolated(LOAD_ADAPTERS, {"base": args.base, "paths": made["paths"]}, isolate=isolate,
                              timeout_s=args.timeout)
    rss = loaded["rss_bytes"]
    table = report.table(
        f"Inference memory against adapters loaded on one {args.base} base",
        ["adapters", "RSS (MiB)", "added by adapters (MiB)", "per adapter (MiB)", "same count of full models (MiB)"],
        note="The last column is the weight memory that as many independent full models would need (base tensor "
        "bytes times the count), for comparison; it is computed, not measured.",
    )
    for count in adapter_counts:
        added = rss[count] - rss[0]
        table.add(count, mib(rss[count]), mib(added), mib(ratio(added, count)), mib(count * loaded["base_tensor_bytes"]))

    report.results = {
        "examples": by_examples,
        "lengths": by_length,
        "ranks": by_rank,
        "adapters": {"rss_bytes": rss, "base_tensor_bytes": loaded["base_tensor_bytes"]},
    }
    return report.finish(args.output)


main = script_main(build_parser, run)


if __name__ == "__main__":
    sys.exit(main())
