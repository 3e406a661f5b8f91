"""Benchmark many LoRA adapters on one shared base against full models.

Measures, on one machine and in one process:

1. memory: resident set size (RSS) growth with N adapters loaded on the base vs N full model copies
   (N = 1, 4, 16 by default). Full copies beyond --max-full-copies are estimated from the measured
   per-copy growth and marked "estimated";
2. adapter switch latency: `AdapterPool.activate` (PEFT `set_adapter`) and switch + one-row forward;
3. mixed-adapter batches: rows/s of one forward pass with per-row adapters (PEFT `adapter_names`) vs
   the same rows run as one batch per adapter;
4. merged vs unmerged inference: one batch through the adapter kept separate (PEFT forward) vs merged
   into a full copy of the base (`merge_and_unload`), with the bare base for reference.

The adapters are sequence-classification LoRA adapters with random-initialized weights (B is not zero,
so every adapter changes the outputs). Speed and memory do not depend on trained values, so none are
trained. Run it as its own process on an idle machine: other work changes both time and RSS, and memory
freed earlier in a process is reused without growing RSS.

    python benchmarks/multi_adapter.py --output results.json            # minilm-l6, N = 1, 4, 16
    python benchmarks/multi_adapter.py --base smollm2-135m --output smollm2.json
    python benchmarks/multi_adapter.py --quick --output quick.json      # seconds, for smoke tests
"""

import argparse
import gc
import itertools
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import psutil
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lora_playground.adapters import AdapterMetadata, AdapterStore, BaseModelRef  # noqa: E402
from lora_playground.adapters.serving import AdapterPool  # noqa: E402
from lora_playground.evaluation.formatting import format_bytes  # noqa: E402
from lora_playground.models import default_target_modules, get_shared_base  # noqa: E402
from lora_playground.tasks import Task  # noqa: E402

logger = logging.getLogger("benchmarks.multi_adapter")

LABELS = ["negative", "positive"]
WORDS = "the service was quick and friendly but the food arrived cold and the bill was wrong again today".split()
ADAPTER_ORIGIN = "random-initialized LoRA weights (no training); timing and memory do not depend on trained values"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="minilm-l6", help="base model: minilm-l6 (default), smollm2-135m, or a folder")
    parser.add_argument("--counts", default=None, help="comma-separated adapter counts N (default: 1,4,16; --quick: 1,2)")
    parser.add_argument("--rank", type=int, default=8, help="LoRA rank of every adapter (default: 8)")
    parser.add_argument("--batch-size", type=int, default=None, help="rows per batch (default: 32; --quick: 4)")
    parser.add_argument("--tokens", type=int, default=32, help="words per input text (default: 32)")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats per figure (default: 10; --quick: 2)")
    parser.add_argument(
        "--max-full-copies", type=int, default=None,
        help="full copies actually made; larger N is estimated from them (default: 16 for minilm-l6, else 4; --quick: 2)",
    )
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--quick", action="store_true", help="tiny settings that finish in seconds (smoke test)")
    parser.add_argument("--output", type=Path, required=True, help="JSON file to write the results to")
    args = parser.parse_args(argv)
    args.counts = [int(value) for value in (args.counts or ("1,2" if args.quick else "1,4,16")).split(",")]
    args.batch_size = args.batch_size or (4 if args.quick else 32)
    args.repeats = args.repeats or (2 if args.quick else 10)
    if args.max_full_copies is None and args.quick:
        args.max_full_copies = 2
    elif args.max_full_copies is None:
        # 16 copies of MiniLM-L6 take about 1.5 GB; 16 of a larger base such as SmolLM2-135M about 8.6 GB.
        args.max_full_copies = 16 if args.base == "minilm-l6" else 4
    if args.quick:
        args.tokens = min(args.tokens, 8)
    return args


def rss_bytes() -> int:
    gc.collect()
    return psutil.Process(os.getpid()).memory_info().rss


def texts(count: int, words: int, offset: int = 0) -> list[str]:
    return [" ".join(WORDS[(row + position + offset) % len(WORDS)] for position in range(words)) for row in range(count)]


def timed(function, repeats: int) -> list[float]:
    """Seconds of each of `repeats` calls, after one untimed warm-up call."""
    function()
    durations = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        durations.append(time.perf_counter() - started)
    return durations


def summary(durations: list[float]) -> dict:
    ordered = sorted(durations)
    return {
        "median_s": statistics.median(ordered),
        "p90_s": ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))],
        "repeats": len(ordered),
    }


# Setup ---------------------------------------------------------------------------------------------------


def create_adapters(base, store: AdapterStore, count: int, rank: int) -> list[str]:
    """Save `count` random-initialized classification adapters; return their names."""
    from peft import LoraConfig, TaskType, get_peft_model

    metadata = AdapterMetadata(
        name="unnamed",
        kind="lora",
        task=Task(name="benchmark", type="classification", label_names=LABELS).to_dict(),
        base_model=BaseModelRef.from_shared_base(base),
    )
    names = []
    for index in range(count):
        torch.manual_seed(index)
        config = LoraConfig(
            task_type=TaskType.SEQ_CLS, r=rank, lora_alpha=2 * rank, target_modules=default_target_modules(base.model_type)
        )
        model = get_peft_model(base.classification_model(len(LABELS), LABELS), config)
        with torch.no_grad():
            for name, parameter in model.named_parameters():
                if "lora_B" in name:
                    parameter.normal_(0.0, 0.02)
        names.append(f"bench-{index:02d}")
        store.save_lora(names[-1], model, metadata)
    return names


# Measurements --------------------------------------------------------------------------------------------


def adapter_weight_bytes(pool: AdapterPool) -> int:
    """Bytes of the LoRA matrices and task heads of every loaded adapter (what the adapters add to the base)."""
    group_models = {id(pool.group_model(info.name)): pool.group_model(info.name) for info in pool.loaded()}
    return sum(
        parameter.numel() * parameter.element_size()
        for model in group_models.values()
        for name, parameter in model.named_parameters()
        if "lora_" in name or "modules_to_save" in name
    )


def measure_memory(base, pool: AdapterPool, names: list[str], counts: list[int], max_full_copies: int) -> dict:
    """RSS growth with N adapters loaded, then with N full copies (the adapters stay loaded meanwhile).

    Growth is measured cumulatively (load up to 1, then up to 4, ...), so memory freed earlier cannot
    hide new allocations. At most `max_full_copies` copies are made, and never more than half of the
    available memory; larger N is extrapolated from the measured growth per copy.
    """
    start = rss_bytes()
    adapters = {}
    adapter_bytes = {}
    for count in counts:
        pool.ensure_loaded(names[:count], evict=False)
        adapters[count] = rss_bytes() - start
        adapter_bytes[count] = adapter_weight_bytes(pool)

    base_bytes = sum(parameter.numel() * parameter.element_size() for parameter in base.model.parameters())
    affordable = int(0.5 * psutil.virtual_memory().available / base_bytes)
    limit = max(1, min(max_full_copies, affordable))
    copies = []
    start = rss_bytes()
    full = {}
    for count in counts:
        while len(copies) < min(count, limit):
            copies.append(base.full_copy("classification", len(LABELS), LABELS).eval())
        growth = rss_bytes() - start
        if len(copies) == count:
            full[count] = {"rss_growth_bytes": growth, "estimated": False}
        else:
            full[count] = {"rss_growth_bytes": int(growth / len(copies) * count), "estimated": True}
    copy_bytes = sum(parameter.numel() * parameter.element_size() for parameter in copies[0].parameters())
    del copies
    gc.collect()
    return {
        "adapters_rss_growth_bytes": adapters,
        "adapter_weight_bytes": adapter_bytes,
        "full_copies": full,
        "full_copies_made": limit,
        "full_copy_weight_bytes": copy_bytes,
        "base_weight_bytes": base_bytes,
    }


def measure_switch(pool: AdapterPool, names: list[str], repeats: int) -> dict:
    switches = [names[index % len(names)] for index in range(max(20, repeats * len(names)))]
    durations = [pool.activate(name) for name in switches]
    one_row = texts(1, 8)
    rotation = itertools.cycle(names)

    def switch_and_forward():
        pool.classify(next(rotation), one_row, batch_size=1)

    def same_adapter_forward():
        pool.classify(names[0], one_row, batch_size=1)

    return {
        "set_adapter": summary(durations),
        "switch_then_forward_1_row": summary(timed(switch_and_forward, repeats)),
        "same_adapter_forward_1_row": summary(timed(same_adapter_forward, repeats)),
    }


def measure_mixed(pool: AdapterPool, names: list[str], batch_size: int, words: int, repeats: int) -> dict:
    rows = texts(batch_size, words)
    row_adapters = [names[index % len(names)] for index in range(batch_size)]

    def mixed():
        pool.classify_mixed(rows, row_adapters)

    def separate():
        for name in dict.fromkeys(row_adapters):
            subset = [row for row, row_adapter in zip(rows, row_adapters) if row_adapter == name]
            pool.classify(name, subset, batch_size=len(subset))

    mixed_time, separate_time = summary(timed(mixed, repeats)), summary(timed(separate, repeats))
    return {
        "adapters_in_batch": len(set(row_adapters)),
        "batch_size": batch_size,
        "mixed_rows_per_s": batch_size / mixed_time["median_s"],
        "separate_rows_per_s": batch_size / separate_time["median_s"],
        "mixed": mixed_time,
        "separate": separate_time,
        "strategy": pool.classify_mixed(rows, row_adapters).strategies,
    }


def measure_merged(base, pool: AdapterPool, name: str, batch_size: int, words: int, repeats: int) -> dict:
    from peft import PeftModel

    tokenizer = base.tokenizer
    inputs = tokenizer(texts(batch_size, words), padding=True, return_tensors="pt")
    merged = PeftModel.from_pretrained(
        base.full_copy("classification", len(LABELS), LABELS), str(pool.store.path(name))
    ).merge_and_unload().eval()
    plain = base.classification_model(len(LABELS), LABELS)

    def run(model):
        with torch.inference_mode():
            model(**inputs)

    def unmerged():
        with pool.use(name) as model:
            run(model)

    figures = {
        "unmerged_adapter": summary(timed(unmerged, repeats)),
        "merged_full_copy": summary(timed(lambda: run(merged), repeats)),
        "bare_base": summary(timed(lambda: run(plain), repeats)),
        "batch_size": batch_size,
    }
    with pool.use(name) as model:
        with torch.inference_mode():
            difference = (model(**inputs).logits - merged(**inputs).logits).abs().max().item()
    figures["max_logit_difference"] = difference
    return figures


# Report --------------------------------------------------------------------------------------------------


def size(value: float) -> str:
    # RSS can shrink between two readings when the allocator returns memory, hence the sign.
    return format_bytes(value) if value >= 0 else "-" + format_bytes(-value)


def report(results: dict) -> str:
    memory = results["memory"]
    lines = [
        f"Base {results['base']} ({size(memory['base_weight_bytes'])} of weights), LoRA rank {results['rank']}, "
        f"{results['adapter_origin']}.",
        "",
        "| N | adapter weights | RSS growth, N adapters | RSS growth, N full models | full / adapters (RSS) |",
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    for count in results["counts"]:
        adapters = memory["adapters_rss_growth_bytes"][count]
        full = memory["full_copies"][count]
        note = " (estimated)" if full["estimated"] else ""
        # RSS moves in pages and allocator arenas, so a ratio over less than 1 MiB of growth means nothing.
        ratio = f"{full['rss_growth_bytes'] / adapters:,.0f}x" if adapters >= 2**20 else "n/a"
        lines.append(
            f"| {count} | {size(memory['adapter_weight_bytes'][count])} | {size(adapters)} | "
            f"{size(full['rss_growth_bytes'])}{note} | {ratio} |"
        )
    switch = results["switch"]
    mixed = results["mixed_batch"]
    merged = results["merged"]
    lines += [
        "",
        "| measurement | median | p90 |",
        "| --- | ---: | ---: |",
        _timing_row("set_adapter (switch only)", switch["set_adapter"], 1e6, "us"),
        _timing_row("switch + 1-row forward", switch["switch_then_forward_1_row"], 1e3, "ms"),
        _timing_row("same adapter, 1-row forward", switch["same_adapter_forward_1_row"], 1e3, "ms"),
        _timing_row(f"mixed batch of {mixed['batch_size']} ({mixed['adapters_in_batch']} adapters)", mixed["mixed"], 1e3, "ms"),
        _timing_row("same rows, one batch per adapter", mixed["separate"], 1e3, "ms"),
        _timing_row(f"unmerged adapter, batch of {merged['batch_size']}", merged["unmerged_adapter"], 1e3, "ms"),
        _timing_row("merged into a full copy", merged["merged_full_copy"], 1e3, "ms"),
        _timing_row("bare base (no adapter)", merged["bare_base"], 1e3, "ms"),
        "",
        f"Mixed batch: {mixed['mixed_rows_per_s']:,.1f} rows/s vs {mixed['separate_rows_per_s']:,.1f} rows/s "
        f"separately (strategy {mixed['strategy']}). Merged vs unmerged max logit difference "
        f"{merged['max_logit_difference']:.1e}.",
    ]
    return "\n".join(lines)


def _timing_row(label: str, figures: dict, scale: float, unit: str) -> str:
    return f"| {label} | {figures['median_s'] * scale:,.2f} {unit} | {figures['p90_s'] * scale:,.2f} {unit} |"


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)
    base = get_shared_base(args.base)
    counts = sorted(set(args.counts))

    with tempfile.TemporaryDirectory(prefix="lora-playground-bench-") as folder:
        store = AdapterStore(Path(folder) / "adapters")
        names = create_adapters(base, store, max(counts), args.rank)
        pool = AdapterPool(base, store, max_loaded=max(counts))
        results = {
            "base": base.spec.name,
            "rank": args.rank,
            "counts": counts,
            "adapter_origin": ADAPTER_ORIGIN,
            "quick": args.quick,
            "memory": measure_memory(base, pool, names, counts, args.max_full_copies),
            "switch": measure_switch(pool, names, args.repeats),
            "mixed_batch": measure_mixed(pool, names[: max(counts)], args.batch_size, args.tokens, args.repeats),
            "merged": measure_merged(base, pool, names[0], args.batch_size, args.tokens, args.repeats),
            "machine": {
                "cpu": platform.processor() or platform.machine(),
                "logical_cpus": os.cpu_count(),
                "torch_threads": torch.get_num_threads(),
                "memory_bytes": psutil.virtual_memory().total,
                "torch": torch.__version__,
                "python": platform.python_version(),
            },
            "measured_at": datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
        }
        pool.unload_all()

    print(report(results))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"\nresults: {args.output}")
    return results


if __name__ == "__main__":
    main()
