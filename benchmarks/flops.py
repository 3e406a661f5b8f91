"""How close training comes to this machine's matrix-multiply peak.

First the peak: `torch.matmul` of square matrices of several sizes, float32 and bfloat16, best of
several repeats, in GFLOP/s (2·n³ floating-point operations per product). Then a LoRA run and a full
finetuning run, each in a fresh process for a fixed number of steps without validation, report their
achieved training FLOP/s. That is the product's estimate of the training FLOPs
(`CostReport.train_flops_estimate`, which counts the linear layers only) divided by the training wall time.
The fraction of the peak shows how much room is left for kernel-level work. The rest of the time goes to
attention, element-wise operations, the optimizer, Python and data handling.

    python -m benchmarks.flops                                # smollm2-135m, 20 steps per run
    python -m benchmarks.flops --base minilm-l6 --steps 40
"""

import sys
import time

from benchmarks.isolation import run_isolated
from benchmarks.machine import cpu_flags
from benchmarks.options import base_parser, script_main
from benchmarks.report import BenchmarkReport, ratio

NAME = "flops"
DEFAULT_SIZES = (256, 512, 1024, 2048)
QUICK_SIZES = (64, 128)
QUICK_ROWS = {"train": 24, "test": 8}
WORKER = "benchmarks.training_runs:measure_training"
# Each timed repeat multiplies until at least this long has passed, so small sizes are not timer noise.
MIN_REPEAT_S = 0.05


def matmul_gflops(size: int, dtype_name: str, repeats: int) -> float:
    """Return the best GFLOP/s of `torch.matmul` on two size x size matrices of `dtype_name` over `repeats`."""
    import torch

    dtype = getattr(torch, dtype_name)
    generator = torch.Generator().manual_seed(0)
    left = torch.randn(size, size, generator=generator).to(dtype)
    right = torch.randn(size, size, generator=generator).to(dtype)
    torch.matmul(left, right)  # warm-up: first-call kernel selection and allocation

    best = 0.0
    for _ in range(repeats):
        count = 0
        started = time.perf_counter()
        while True:
            torch.matmul(left, right)
            count += 1
            elapsed = time.perf_counter() - started
            if elapsed >= MIN_REPEAT_S:
                break
        best = max(best, 2.0 * size**3 * count / elapsed / 1e9)
    return best


def build_parser():
    parser = base_parser(NAME, __doc__.split("\n\n")[0], default_base="smollm2-135m")
    parser.add_argument(
        "--sizes", default=",".join(map(str, DEFAULT_SIZES)), help="square matrix sizes (default: 256,512,1024,2048)"
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per size; the best counts (default: 5)")
    parser.add_argument("--steps", type=int, default=20, help="training steps per run (default: 20)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds allowed per training run")
    return parser


def run(args) -> dict:
    report = BenchmarkReport(NAME, options=vars(args), quick=args.quick)
    sizes = QUICK_SIZES if args.quick else tuple(int(size) for size in args.sizes.split(","))
    repeats = 2 if args.quick else args.repeats
    precisions = ["float32", "bfloat16"]

    peaks: dict[str, dict[int, float]] = {dtype: {} for dtype in precisions}
    for dtype in precisions:
        for size in sizes:
            peaks[dtype][size] = matmul_gflops(size, dtype, repeats)
    peak = {dtype: max(values.values()) for dtype, values in peaks.items()}
    report.results["matmul_gflops"] = {dtype: {str(size): value for size, value in values.items()} for dtype, values in peaks.items()}
    report.results["matmul_peak_gflops"] = peak
    table = report.table(
        f"torch.matmul throughput (GFLOP/s, best of {repeats})",
        ["matrix size", *precisions, "bfloat16 / float32"],
    )
    for size in sizes:
        table.add(f"{size} x {size}", peaks["float32"][size], peaks["bfloat16"][size],
                  ratio(peaks["bfloat16"][size], peaks["float32"][size]))
    table.add("peak", peak["float32"], peak["bfloat16"], ratio(peak["bfloat16"], peak["float32"]))

    bf16_native = bool({"avx512_bf16", "amx_bf16"} & set(cpu_flags()))
    runs = {}
    for method in ("lora", "full"):
        for bf16 in (False, True):
            config = {
                "method": method,
                "max_steps": 2 if args.quick else args.steps,
                "batch_size": 4 if args.quick else args.batch_size,
                "bf16": bf16,
            }
            payload = {
                "base": args.base,
                "data": args.data,
                "config": config,
                "max_rows": QUICK_ROWS if args.quick else None,
                "drop_splits": ["validation"],
                "store": False,
            }
            runs[f"{method} {'bf16 autocast' if bf16 else 'float32'}"] = run_isolated(
                WORKER, payload, isolate=not args.no_isolation, timeout_s=args.timeout
            )
    report.results["training"] = runs
    table = report.table(
        f"Achieved training FLOP/s on {args.base} ({'2' if args.quick else args.steps} steps per run)",
        [
            "run",
            "estimated train GFLOP",
            "train time (s)",
            "achieved GFLOP/s",
            "fraction of float32 peak",
            "fraction of bfloat16 peak",
        ],
        note="Estimated FLOPs count the linear layers only (forward 2N, input gradients 2N, weight gradients 2 x "
        "trainable N per token; attention scores and element-wise work are left out), so the fractions are lower "
        "bounds. Train time is the whole Trainer loop: data collation, optimizer and Python included.",
    )
    for name, result in runs.items():
        achieved = ratio(result["train_flops_estimate"], result["train_wall_time_s"])
        gflops = None if achieved is None else achieved / 1e9
        result["achieved_gflops"] = gflops
        table.add(
            name,
            result["train_flops_estimate"] / 1e9,
            result["train_wall_time_s"],
            gflops,
            ratio(gflops, peak["float32"]),
            ratio(gflops, peak["bfloat16"]),
        )
    if not bf16_native:
        report.notes.append("This CPU has no native bfloat16 instructions, so bfloat16 matmuls are emulated.")
    return report.finish(args.output)


main = script_main(build_parser, run)


if __name__ == "__main__":
    sys.exit(main())
