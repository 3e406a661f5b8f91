"""Inference latency measured over a whole prediction pass."""

from dataclasses import dataclass


@dataclass(frozen=True)
class InferenceLatency:
    """Wall time of one prediction pass over `n_examples` examples in batches of `batch_size`.

    The time covers tokenization, the forward passes (or generation) and moving results to the CPU,
    so it is what a caller waits for, not the bare model time.
    """

    n_examples: int
    batch_size: int
    wall_time_s: float

    @property
    def ms_per_example(self) -> float:
        """Milliseconds per example at this batch size (0.0 when there were no examples)."""
        return 1000.0 * self.wall_time_s / self.n_examples if self.n_examples else 0.0

    @property
    def examples_per_s(self) -> float:
        """Examples per second at this batch size (0.0 when nothing was timed)."""
        return self.n_examples / self.wall_time_s if self.wall_time_s > 0 else 0.0

    def to_dict(self) -> dict:
        """Return the figures under the cost keys used in run reports."""
        return {
            "inference_ms_per_example": self.ms_per_example,
            "inference_examples_per_s": self.examples_per_s,
            "inference_batch_size": self.batch_size,
            "inference_examples": self.n_examples,
            "inference_wall_time_s": self.wall_time_s,
        }
