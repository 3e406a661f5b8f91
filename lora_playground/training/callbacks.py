"""Trainer callbacks: progress reports for the CLI and the app, and cancellation between steps."""

import logging
import threading
import time
from collections.abc import Callable

from transformers import TrainerCallback
from transformers.trainer_callback import ProgressCallback

from lora_playground.errors import CancelledError

logger = logging.getLogger(__name__)

ProgressFn = Callable[[dict], None]


class ProgressBars(ProgressCallback):
    """Trainer's tqdm bars without its habit of writing every log dict to stdout (ProgressReporter
    logs the same values through `logging`)."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        pass


class ProgressReporter(TrainerCallback):
    """Send progress dicts to `progress` and raise CancelledError once `cancel_event` is set.

    Each dict has these keys:
    - `event`: "step", "log" or "evaluate";
    - `step`, `max_steps` (optimizer steps) and `epoch` (fractional);
    - `loss`: the latest logged training loss, None before the first log;
    - `eval`: the latest validation metrics without the "eval_" prefix;
    - `tokens_seen` and `tokens_per_s`: non-padding training tokens, over all processes;
    - `elapsed_s` and `eta_s`: seconds since training started, and seconds left at the mean step time.
    Only the main process reports. Cancellation is checked before and after every
    optimizer step, after every forward/backward pass and after every evaluation batch, so it takes
    effect within one batch.
    """

    def __init__(self, progress: ProgressFn | None = None, cancel_event: threading.Event | None = None):
        self.progress = progress
        self.cancel_event = cancel_event
        self.start_time: float | None = None
        self.last_loss: float | None = None
        self.last_eval: dict = {}

    def _check_cancel(self, state) -> None:
        if self.cancel_event is not None and self.cancel_event.is_set():
            raise CancelledError(f"Training was cancelled at step {state.global_step} of {state.max_steps}.")

    def _report(self, event: str, state) -> None:
        if self.progress is None or not state.is_world_process_zero:
            return
        elapsed = time.perf_counter() - (self.start_time or time.perf_counter())
        step = state.global_step
        eta = elapsed / step * (state.max_steps - step) if step else None
        tokens = state.num_input_tokens_seen
        self.progress(
            {
                "event": event,
                "step": step,
                "max_steps": state.max_steps,
                "epoch": state.epoch,
                "loss": self.last_loss,
                "eval": dict(self.last_eval),
                "tokens_seen": tokens,
                "tokens_per_s": tokens / elapsed if elapsed > 0 else 0.0,
                "elapsed_s": elapsed,
                "eta_s": eta,
            }
        )

    def on_train_begin(self, args, state, control, **kwargs):
        self.start_time = time.perf_counter()
        self._check_cancel(state)

    def on_step_begin(self, args, state, control, **kwargs):
        self._check_cancel(state)

    def on_substep_end(self, args, state, control, **kwargs):
        self._check_cancel(state)

    def on_step_end(self, args, state, control, **kwargs):
        self._check_cancel(state)
        self._report("step", state)

    def on_prediction_step(self, args, state, control, **kwargs):
        self._check_cancel(state)

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        self.last_eval = {key.removeprefix("eval_"): value for key, value in (metrics or {}).items()}
        if state.is_world_process_zero:
            shown = {key: round(value, 4) for key, value in self.last_eval.items() if isinstance(value, float)}
            logger.info("step %d/%d: validation %s", state.global_step, state.max_steps, shown)
        self._report("evaluate", state)

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        if "loss" in logs:
            self.last_loss = logs["loss"]
            if state.is_world_process_zero:
                logger.info("step %d/%d: loss %.4f", state.global_step, state.max_steps, self.last_loss)
            self._report("log", state)
