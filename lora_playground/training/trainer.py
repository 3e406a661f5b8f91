"""The training entry point: one function that trains a LoRA adapter or the full-finetune baseline.

Training runs on transformers' `Trainer`, so the same call distributes across processes when the
script is started with `torchrun` or `accelerate launch` (data parallel, gradients averaged). LoRA and
full finetuning share the data order, seed and schedule: only the trainable weights differ.
"""

import logging
import math
import os
import shutil
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
from peft import PeftModel, get_peft_model_state_dict
from transformers import EarlyStoppingCallback, PreTrainedModel, Trainer, TrainingArguments, set_seed
from transformers.trainer_callback import ProgressCallback
from transformers.trainer_pt_utils import LengthGroupedSampler

from lora_playground.errors import ConfigError, DataError
from lora_playground.models.registry import BaseModelSpec
from lora_playground.tasks.task import Task, TaskData
from lora_playground.training.callbacks import ProgressBars, ProgressFn, ProgressReporter
from lora_playground.training.collate import collator_for
from lora_playground.training.config import TrainConfig
from lora_playground.training.cost import (
    CostReport,
    count_parameters,
    estimate_train_flops,
    measure_peak_rss,
    tensor_bytes,
)
from lora_playground.training.full import prepare_full_finetune
from lora_playground.training.lora import apply_lora
from lora_playground.training.tokenize import (
    TOKENIZATION_CACHE,
    TokenizedSplit,
    pack_chats,
    tokenize_split,
)

logger = logging.getLogger(__name__)

TRAIN_SPLIT = "train"
VALIDATION_SPLIT = "validation"

# Validation metric that early stopping and best-model selection watch, and whether higher is better.
_SELECTION_METRIC = {"classification": ("accuracy", True), "generation": ("loss", False)}

# Trainer bookkeeping keys left out of TrainedRun.val_metrics.
_EVAL_TIMING_KEYS = {"runtime", "samples_per_second", "steps_per_second"}


@dataclass
class TrainedRun:
    """The result of `train`: the trained model in eval mode, what it was trained on, and what it cost.

    `model` is a `PeftModel` holding the adapter `adapter_name` for `config.method == "lora"` (its base
    weights are the shared frozen tensors) and an independent `PreTrainedModel` for "full".
    `history` is the Trainer's log history (training losses and validation metrics by step).
    `val_metrics` are the validation metrics of the returned model without the "eval_" prefix. With
    early stopping they come from the best evaluation, and they are empty without a validation split.
    """

    model: PreTrainedModel | PeftModel
    task: Task
    config: TrainConfig
    base_spec: BaseModelSpec
    base_fingerprint: str
    data_fingerprint: str
    history: list[dict]
    val_metrics: dict
    cost: CostReport
    adapter_name: str = "default"
    notes: list[str] = field(default_factory=list)
    world_size: int = 1
    is_main_process: bool = True
    """False on every process but the first in a distributed job; only the main process should save."""


def train(
    base,
    task_data: TaskData,
    config: TrainConfig,
    *,
    adapter_name: str = "default",
    progress: ProgressFn | None = None,
    cancel_event: threading.Event | None = None,
) -> TrainedRun:
    """Train `config.method` ("lora" or "full") on `task_data`'s train split and return the TrainedRun.

    `base` is a `models.SharedBase`. LoRA wraps a model that shares the base's frozen weights, and
    "full" trains an independent copy. The validation split, when present, is evaluated every epoch,
    or every `config.eval_every_steps` steps. With `config.early_stopping_patience` set, training stops
    after that many evaluations without improvement of validation accuracy (classification) or loss
    (generation), and the best model is restored. Its checkpoint lives in a temporary folder that is
    removed afterwards. Nothing else is written to disk.

    `progress` receives dicts described in `ProgressReporter`. Setting `cancel_event` stops training
    within one batch and raises CancelledError. Raises ConfigError for invalid or conflicting options
    and DataError for unusable data.
    """
    config.validate()
    task = task_data.task
    _check_compatible(base, task_data, config)

    # Seed before building the model: the LoRA A matrices and a new classification head draw from it.
    set_seed(config.seed)
    model = _build_model(base, task, config, adapter_name)
    use_cache = model.config.use_cache
    train_split, validation_split, notes = _prepare_splits(base, task_data, config)

    selection_metric, _ = _SELECTION_METRIC[task.type]
    work_dir = _work_dir(config)
    try:
        trainer = _build_trainer(model, base, task, config, train_split, validation_split, work_dir)
        trainer.add_callback(ProgressReporter(progress, cancel_event))
        logger.info(
            "Training %s on task %r (%d train rows, world size %d, adapter %r)",
            config.method,
            task.name,
            len(train_split.dataset),
            trainer.args.world_size,
            adapter_name,
        )
        with _torch_threads(config.num_threads), measure_peak_rss() as memory:
            start = time.perf_counter()
            trainer.train()
            wall_time = time.perf_counter() - start
        val_metrics = _final_validation_metrics(trainer, validation_split is not None)
    finally:
        _remove_work_dir(work_dir)

    state = trainer.state
    if config.early_stopping_patience is not None and state.global_step < state.max_steps:
        notes.append(
            f"early stopping after step {state.global_step} of {state.max_steps}; "
            f"kept the model of step {state.best_global_step} ({selection_metric} {state.best_metric:.4f})"
        )

    trained_model = trainer.model
    trained_model.eval()
    # Trainer turns the KV cache off for training; generation after training needs it back.
    trained_model.config.use_cache = use_cache
    cost = _cost_report(trained_model, config, adapter_name, state.num_input_tokens_seen, wall_time, memory)
    logger.info(
        "Trained %s in %.1f s: %d tokens (%.0f tokens/s), %d of %d parameters trainable, peak RSS +%.1f MiB",
        config.method,
        cost.train_wall_time_s,
        cost.train_tokens,
        cost.train_tokens_per_s,
        cost.trainable_params,
        cost.total_params,
        cost.peak_memory_bytes / 2**20,
    )
    return TrainedRun(
        model=trained_model,
        task=task,
        config=config,
        base_spec=base.spec,
        base_fingerprint=base.fingerprint,
        data_fingerprint=task_data.fingerprint,
        history=list(state.log_history),
        val_metrics=val_metrics,
        cost=cost,
        adapter_name=adapter_name,
        notes=notes,
        world_size=trainer.args.world_size,
        is_main_process=trainer.args.process_index == 0,
    )


def _build_trainer(
    model,
    base,
    task: Task,
    config: TrainConfig,
    train_split: TokenizedSplit,
    validation_split: TokenizedSplit | None,
    work_dir: str,
) -> "_PlaygroundTrainer":
    args = _training_arguments(config, work_dir, has_validation=validation_split is not None, task=task)
    args.logging_steps = _logging_interval(len(train_split.dataset), config, args.world_size)
    classification = task.type == "classification"

    trainer = _PlaygroundTrainer(
        model=model,
        args=args,
        train_dataset=train_split.dataset,
        eval_dataset=validation_split.dataset if validation_split is not None else None,
        processing_class=base.tokenizer,
        data_collator=collator_for(task.type, base.tokenizer),
        compute_metrics=_accuracy if classification else None,
        preprocess_logits_for_metrics=_argmax_logits if classification else None,
        train_lengths=train_split.lengths,
        eval_lengths=validation_split.lengths if validation_split is not None else None,
    )
    if config.early_stopping_patience is not None:
        trainer.add_callback(EarlyStoppingCallback(early_stopping_patience=config.early_stopping_patience))
    if trainer.pop_callback(ProgressCallback) is not None:
        trainer.add_callback(ProgressBars)
    return trainer


class _PlaygroundTrainer(Trainer):
    """Trainer whose length-grouped samplers reuse the lengths computed at tokenization and a seeded
    generator, so batches depend on the seed only (not on how much of the global RNG the model drew)."""

    def __init__(self, *args, train_lengths: list[int], eval_lengths: list[int] | None, **kwargs):
        super().__init__(*args, **kwargs)
        self._train_lengths = train_lengths
        self._eval_lengths = eval_lengths

    def _length_grouped_sampler(self, lengths: list[int], batch_size: int) -> LengthGroupedSampler:
        seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
        return LengthGroupedSampler(batch_size, lengths=lengths, generator=torch.Generator().manual_seed(seed))

    def _get_train_sampler(self, train_dataset=None):
        if self.args.train_sampling_strategy == "group_by_length":
            batch_size = self.args.train_batch_size * self.args.gradient_accumulation_steps
            return self._length_grouped_sampler(self._train_lengths, batch_size)
        return super()._get_train_sampler(train_dataset)

    def _get_eval_sampler(self, eval_dataset):
        if self.args.train_sampling_strategy == "group_by_length" and self._eval_lengths is not None:
            return self._length_grouped_sampler(self._eval_lengths, self.args.eval_batch_size)
        return super()._get_eval_sampler(eval_dataset)


def _check_compatible(base, task_data: TaskData, config: TrainConfig) -> None:
    task = task_data.task
    problems = []
    if task.type not in _SELECTION_METRIC:
        problems.append(f"task type {task.type!r} is not supported; use 'classification' or 'generation'")
    if task.type == "generation" and base.spec.architecture != "decoder":
        problems.append(
            f"generation needs a decoder base, but {base.spec.name!r} is an {base.spec.architecture}; "
            "pick a decoder such as smollm2-135m"
        )
    if config.packing and task.type != "generation":
        problems.append("packing applies to generation tasks only; turn it off for classification")
    if task.type == "classification" and len(task.label_names) < 2:
        problems.append(f"classification needs at least 2 label names, got {task.label_names!r}")
    if TRAIN_SPLIT not in task_data.splits:
        problems.append(f"the data has no {TRAIN_SPLIT!r} split (splits: {sorted(task_data.splits)})")
    has_validation = VALIDATION_SPLIT in task_data.splits and len(task_data.splits[VALIDATION_SPLIT]) > 0
    if config.early_stopping_patience is not None and not has_validation:
        problems.append("early_stopping_patience needs a validation split; add one or drop early stopping")
    if problems:
        raise ConfigError("Cannot train with these options: " + "; ".join(problems) + ".")


def _build_model(base, task: Task, config: TrainConfig, adapter_name: str):
    classification = task.type == "classification"
    if config.method == "lora":
        if classification:
            model = base.classification_model(len(task.label_names), task.label_names)
        else:
            model = base.causal_lm_model()
        return apply_lora(model, config, task.type, adapter_name=adapter_name)

    if classification:
        model = base.full_copy("classification", len(task.label_names), task.label_names)
    else:
        model = base.full_copy("causal_lm")
    return prepare_full_finetune(model, config)


def _prepare_splits(
    base, task_data: TaskData, config: TrainConfig
) -> tuple[TokenizedSplit, TokenizedSplit | None, list[str]]:
    """Tokenize train and validation once (cached per process); pack the train split when asked."""
    task_type = task_data.task.type
    notes: list[str] = []
    tokenized: dict[str, TokenizedSplit | None] = {}
    for name in (TRAIN_SPLIT, VALIDATION_SPLIT):
        if name not in task_data.splits or len(task_data.splits[name]) == 0:
            tokenized[name] = None
            continue
        key = (task_data.fingerprint, name, base.fingerprint, config.max_length)
        split = TOKENIZATION_CACHE.get(key)
        if split is None:
            split = tokenize_split(task_data.splits[name], base.tokenizer, task_type, config.max_length, name)
            TOKENIZATION_CACHE.put(key, split)
        tokenized[name] = split

    train_split = tokenized[TRAIN_SPLIT]
    if len(train_split.dataset) == 0:
        raise DataError("The train split is empty.", "Provide at least one training row.")
    # Validation stays unpacked, so its loss is comparable between packed and unpacked runs.
    if config.packing:
        train_split = pack_chats(train_split, config.max_length)
    for split in (train_split, tokenized[VALIDATION_SPLIT]):
        if split is not None:
            notes.extend(split.notes)
    return train_split, tokenized[VALIDATION_SPLIT], notes


def _training_arguments(config: TrainConfig, work_dir: str, has_validation: bool, task: Task) -> TrainingArguments:
    early_stopping = config.early_stopping_patience is not None
    if not has_validation:
        eval_strategy = "no"
    elif config.eval_every_steps is not None:
        eval_strategy = "steps"
    else:
        eval_strategy = "epoch"
    selection_metric, greater_is_better = _SELECTION_METRIC[task.type]

    return TrainingArguments(
        output_dir=work_dir,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps if config.max_steps else -1,
        learning_rate=config.effective_learning_rate,
        weight_decay=config.weight_decay,
        warmup_steps=config.warmup_ratio,
        lr_scheduler_type=config.lr_scheduler,
        seed=config.seed,
        data_seed=config.seed,
        bf16=config.bf16,
        activation_checkpointing=config.activation_checkpointing,
        # Non-reentrant checkpointing works with frozen embeddings, so LoRA needs no input-gradient hook.
        activation_checkpointing_kwargs={"use_reentrant": False} if config.activation_checkpointing else None,
        use_cpu=not torch.accelerator.is_available(),
        eval_strategy=eval_strategy,
        eval_steps=config.eval_every_steps,
        # A checkpoint is written only when early stopping has to restore the best model.
        save_strategy="best" if early_stopping else "no",
        save_only_model=True,
        save_total_limit=1,
        load_best_model_at_end=early_stopping,
        metric_for_best_model=selection_metric if has_validation else None,
        greater_is_better=greater_is_better,
        prediction_loss_only=task.type == "generation",
        train_sampling_strategy="group_by_length" if config.group_by_length else "random",
        label_names=["labels"],
        # NOTE: packed batches carry no attention mask, so Trainer counts the tokens that differ from the
        # pad token, which also skips real tokens equal to it (SmolLM2's end-of-turn token).
        include_num_input_tokens_seen="non_padding",
        logging_strategy="steps",
        report_to="none",
        dataloader_num_workers=0,
        # DDP on CPU: LoRA on a subset of layers leaves no trainable parameter unused, and the full
        # baseline uses every parameter, so the costly unused-parameter search stays off.
        ddp_find_unused_parameters=False,
    )


def _logging_interval(train_rows: int, config: TrainConfig, world_size: int) -> int:
    """Log about 25 times per run (at least every step for tiny runs)."""
    rows_per_step = config.batch_size * config.grad_accum * max(world_size, 1)
    steps_per_epoch = max(1, math.ceil(train_rows / rows_per_step))
    total_steps = config.max_steps or math.ceil(steps_per_epoch * config.epochs)
    return max(1, total_steps // 25)


def _work_dir(config: TrainConfig) -> str:
    """Return a temporary folder for the Trainer; distributed processes on one machine share one."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return tempfile.mkdtemp(prefix="lora-playground-train-")
    # torchrun's default run id is "none", so the rendezvous address and port distinguish concurrent jobs.
    run_id = "-".join(os.environ.get(name, "") for name in ("TORCHELASTIC_RUN_ID", "MASTER_ADDR", "MASTER_PORT"))
    # NOTE: multi-machine jobs with early stopping need this folder on a shared file system.
    folder = os.path.join(tempfile.gettempdir(), f"lora-playground-train-{run_id}-{config.seed}")
    os.makedirs(folder, exist_ok=True)
    return folder


def _remove_work_dir(work_dir: str) -> None:
    if torch.distributed.is_initialized() and torch.distributed.get_world_size() > 1:
        # Every process may still read the best checkpoint, so the first one on each machine removes
        # the shared folder only after all have finished.
        torch.distributed.barrier()
        if int(os.environ.get("LOCAL_RANK", "0")) != 0:
            return
    shutil.rmtree(work_dir, ignore_errors=True)


@contextmanager
def _torch_threads(num_threads: int | None):
    if num_threads is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _argmax_logits(logits, labels):
    # Keep only the predicted class per row, so evaluation does not gather full logits.
    if isinstance(logits, tuple):
        logits = logits[0]
    return logits.argmax(dim=-1)


def _accuracy(eval_prediction) -> dict:
    predictions = np.asarray(eval_prediction.predictions)
    labels = np.asarray(eval_prediction.label_ids)
    return {"accuracy": float((predictions == labels).mean())}


def _final_validation_metrics(trainer: Trainer, has_validation: bool) -> dict:
    """Return validation metrics of the model `train` returns, evaluating again only when needed."""
    if not has_validation:
        return {}
    state = trainer.state
    evaluations = [entry for entry in state.log_history if any(key.startswith("eval_") for key in entry)]
    selected_step = state.best_global_step if trainer.args.load_best_model_at_end else state.global_step
    matching = [entry for entry in evaluations if entry.get("step") == selected_step]
    metrics = matching[-1] if matching else trainer.evaluate()
    return {
        key.removeprefix("eval_"): value
        for key, value in metrics.items()
        if key.startswith("eval_") and key.removeprefix("eval_") not in _EVAL_TIMING_KEYS
    }


def _cost_report(model, config: TrainConfig, adapter_name: str, tokens: int, wall_time: float, memory) -> CostReport:
    trainable, total = count_parameters(model)
    if config.method == "lora":
        # As in the adapter store: the frozen base's embeddings are never resized, so they are not stored, and
        # PEFT's default save_embedding_layers="auto" would ask the Hub for the base's config.json every time.
        state = get_peft_model_state_dict(model, adapter_name=adapter_name, save_embedding_layers=False)
        stored = tensor_bytes(state)
    else:
        stored = tensor_bytes(model.state_dict())
    return CostReport(
        trainable_params=trainable,
        total_params=total,
        stored_bytes=stored,
        peak_memory_bytes=memory.peak_bytes,
        train_wall_time_s=wall_time,
        train_tokens=int(tokens),
        train_tokens_per_s=tokens / wall_time if wall_time > 0 else 0.0,
        train_flops_estimate=estimate_train_flops(model, int(tokens)),
    )
