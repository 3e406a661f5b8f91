"""Cost figures of a training run: parameters, stored bytes, peak memory, time and tokens."""

import ctypes
import gc
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import psutil
import torch
from torch import nn

logger = logging.getLogger(__name__)

RSS_SAMPLE_INTERVAL_S = 0.02


@dataclass
class CostReport:
    """Cost figures of one training run, in the units named by each field.

    `peak_memory_bytes` is the peak resident set size (RSS) of the whole process above its RSS when
    training started, sampled every 20 ms by a background thread. It therefore includes everything the
    process allocated during training (activations, gradients, optimizer state, data loader buffers),
    misses peaks shorter than the sampling interval, and on GPU it does not see device memory.
    Memory that an earlier run in the same process freed is reused without raising the RSS, so compare
    runs that each start in a fresh process.
    """

    trainable_params: int
    total_params: int
    stored_bytes: int
    """Bytes of the tensors that must be stored to reload the result: the adapter weights plus the
    classification head for LoRA, the whole state dict for full finetuning. The adapter store may replace
    it with the size of the saved files."""
    peak_memory_bytes: int
    train_wall_time_s: float
    """Seconds spent inside the training loop, evaluation on the validation split included."""
    train_tokens: int
    """Non-padding input tokens seen in training steps, summed over all processes."""
    train_tokens_per_s: float
    train_flops_estimate: float | None = None
    """Estimate of floating-point operations in training steps: (4 x matmul params + 2 x trainable matmul
    params) per token, which ignores attention scores and element-wise work."""

    @property
    def trainable_fraction(self) -> float:
        return self.trainable_params / self.total_params if self.total_params else 0.0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "CostReport":
        known = {key: value for key, value in values.items() if key in cls.__dataclass_fields__}
        return cls(**known)


class PeakRssMonitor:
    """Result of `measure_peak_rss`: the process RSS at start and the highest RSS sampled since, in bytes."""

    def __init__(self) -> None:
        release_free_memory()
        self._process = psutil.Process()
        self.start_bytes = self._process.memory_info().rss
        self.max_bytes = self.start_bytes
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="peak-rss-monitor", daemon=True)

    @property
    def peak_bytes(self) -> int:
        """Peak RSS above the RSS at start, in bytes (0 when memory only shrank)."""
        return max(0, self.max_bytes - self.start_bytes)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._record()

    def _sample(self) -> None:
        while not self._stop.wait(RSS_SAMPLE_INTERVAL_S):
            self._record()

    def _record(self) -> None:
        rss = self._process.memory_info().rss
        if rss > self.max_bytes:
            self.max_bytes = rss


def release_free_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS, so the next RSS measurement starts clean.

    Without this, a run measured after another one in the same process reuses the heap that the first
    run freed, and its RSS peak looks smaller than it is. `malloc_trim` exists in glibc only; elsewhere
    only the garbage collection happens.
    """
    gc.collect()
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    libc.malloc_trim(0)


@contextmanager
def measure_peak_rss() -> Iterator[PeakRssMonitor]:
    """Sample the RSS of this whole process every 20 ms while the block runs.

    Yields a `PeakRssMonitor`; read its `peak_bytes` after the block. Other threads of the process
    (for example a web server) count too, so measure in a quiet process for clean numbers.
    """
    monitor = PeakRssMonitor()
    monitor.start()
    try:
        yield monitor
    finally:
        monitor.stop()


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """Return (trainable, total) parameter counts; tied weights count once."""
    trainable = 0
    total = 0
    for parameter in model.parameters():
        total += parameter.numel()
        if parameter.requires_grad:
            trainable += parameter.numel()
    return trainable, total


def tensor_bytes(tensors: dict[str, torch.Tensor]) -> int:
    """Bytes of the distinct tensors in a state dict (tensors sharing storage count once)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for tensor in tensors.values():
        key = (tensor.untyped_storage().data_ptr(), tensor.storage_offset())
        if key in seen:
            continue
        seen.add(key)
        total += tensor.numel() * tensor.element_size()
    return total


def matmul_parameter_counts(model: nn.Module) -> tuple[int, int]:
    """Return (all, trainable) weight elements of the linear layers, counting a tied weight once per layer.

    Embedding lookups do no matrix multiply, but a language-model head tied to the embedding does, which
    is why this walks the modules rather than the unique parameters.
    """
    all_params = 0
    trainable = 0
    for module in model.modules():
        if isinstance(module, nn.Linear):
            all_params += module.weight.numel()
            if module.weight.requires_grad:
                trainable += module.weight.numel()
    return all_params, trainable


def estimate_train_flops(model: nn.Module, tokens: int) -> float:
    """Estimate training FLOPs: forward (2N) + input gradients (2N) + weight gradients (2 x trainable)."""
    all_params, trainable = matmul_parameter_counts(model)
    return float(tokens) * (4 * all_params + 2 * trainable)
