"""Train screen: options with defaults, a background training job, live progress and loss plots, cancel."""

from __future__ import annotations

import re

import gradio as gr
import pandas as pd

from lora_playground.errors import ConfigError
from lora_playground.jobs import SUCCEEDED
from lora_playground.training.config import TrainConfig
from lora_playground.ui.context import AppContext
from lora_playground.ui.errors import show_errors
from lora_playground.ui.formatting import escape_markdown
from lora_playground.ui.job_watch import find_job, job_status_markdown
from lora_playground.ui.jobs_panel import build_jobs_panel
from lora_playground.ui.report_view import costs_table, format_value, metrics_table

LORA, FULL, BOTH = "LoRA", "Full finetune", "LoRA vs full finetune"
PLOT_COLUMNS = ["step", "value", "series"]
RESULT_UNITS = {
    "trainable_params": "count",
    "total_params": "count",
    "stored_bytes": "bytes",
    "peak_memory_bytes": "bytes",
    "train_wall_time_s": "seconds",
    "train_tokens_per_s": "tokens_per_s",
}


def build_config(method, rank, alpha, dropout, targets, use_dora, use_rslora, last_n_blocks, epochs, learning_rate,
                 batch_size, max_length, max_steps, eval_every_steps, seed) -> TrainConfig:
    """Build and validate a TrainConfig from the form; 0 or empty fields mean "use the default".

    For BOTH this is the LoRA config; `full_config_like` derives the baseline's config from it.
    """
    target_text = (targets or "").strip()
    if not target_text:
        target_modules = None
    elif target_text == "all-linear":
        target_modules = "all-linear"
    else:
        target_modules = [name for name in re.split(r"[,\s]+", target_text) if name]
    is_lora = method != FULL
    config = TrainConfig(
        method="lora" if is_lora else "full",
        rank=int(rank),
        alpha=float(alpha),
        dropout=float(dropout),
        target_modules=target_modules,
        use_dora=bool(use_dora) and is_lora,
        use_rslora=bool(use_rslora) and is_lora,
        last_n_blocks=int(last_n_blocks) if last_n_blocks and not is_lora else None,
        epochs=float(epochs),
        learning_rate=float(learning_rate) if learning_rate else None,
        batch_size=int(batch_size),
        max_length=int(max_length),
        max_steps=int(max_steps) if max_steps else None,
        eval_every_steps=int(eval_every_steps) if eval_every_steps else None,
        seed=int(seed),
    )
    config.validate()
    return config


def full_config_like(lora_config: TrainConfig, last_n_blocks: float | None) -> TrainConfig:
    """Derive the full-finetune baseline of a LoRA config: the same schedule, data order and seed.

    An explicit learning rate applies to LoRA only; the baseline keeps its own default (5e-5).
    """
    values = lora_config.to_dict()
    values.update(method="full", use_dora=False, use_rslora=False, learning_rate=None,
                  last_n_blocks=int(last_n_blocks) if last_n_blocks else None)
    config = TrainConfig.from_dict(values)
    config.validate()
    return config


def default_run_name(data: dict | None, config: TrainConfig, method: str = LORA) -> str:
    """Name an entry after the task, method and rank, e.g. "chatterbot-topics-lora-r8"."""
    task = (data or {}).get("task") or {}
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", task.get("name") or "run").strip("-") or "run"
    if method == BOTH:
        return f"{stem}-r{config.rank}"
    if config.method == "full":
        return f"{stem}-full"
    return f"{stem}-lora-r{config.rank}"


def data_summary(data: dict | None) -> str:
    if not data:
        return "**Data:** none chosen yet. Pick a built-in task, a file or a Hub dataset on the Data screen and press *Check data*."
    task = data.get("task") or {}
    return f"**Data:** {escape_markdown(data['label'])} (task `{escape_markdown(task.get('name', '?'))}`, {task.get('type', '?')})."


def progress_frames(events: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split progress events into (loss curve, validation metrics) tables with PLOT_COLUMNS."""
    losses, metrics = [], []
    for event in events:
        step = event.get("step")
        # Events of a run that trains several models (LoRA vs full) name the model in "run".
        prefix = f"{event['run']}: " if event.get("run") else ""
        if event.get("event") == "log" and event.get("loss") is not None:
            losses.append({"step": step, "value": event["loss"], "series": f"{prefix}train loss"})
        if event.get("event") == "evaluate":
            for key, value in (event.get("eval") or {}).items():
                if not isinstance(value, (int, float)) or key in ("runtime", "samples_per_second", "steps_per_second", "epoch"):
                    continue
                target = losses if key == "loss" else metrics
                target.append({"step": step, "value": value, "series": f"{prefix}validation {key}"})
    return pd.DataFrame(losses, columns=PLOT_COLUMNS), pd.DataFrame(metrics, columns=PLOT_COLUMNS)


def result_frame(result: dict | None) -> pd.DataFrame:
    """Tabulate the finished run's test metrics and costs in two columns (figure, value)."""
    run = (result or {}).get("run") or {}
    rows = []
    for key, value in (run.get("metrics") or {}).items():
        if isinstance(value, (int, float)):
            rows.append({"figure": f"test {key}", "value": format_value(value, "number" if key == "perplexity" else "fraction")})
    for key, value in (run.get("cost") or {}).items():
        if key in RESULT_UNITS:
            rows.append({"figure": key.replace("_", " "), "value": format_value(value, RESULT_UNITS[key])})
    return pd.DataFrame(rows, columns=["figure", "value"])


TRAIN_KINDS = ("train", "train_compare")


def train_job_choices(context: AppContext) -> list[tuple[str, int]]:
    jobs = context.queue.list(limit=30, kinds=TRAIN_KINDS)
    return [(f"#{job.id} {job.params.get('name', '')} ({job.status})", job.id) for job in jobs]


def build_train_screen(context: AppContext, data_source: gr.State, timer: gr.Timer, tab: gr.Tab) -> None:
    data_line = gr.Markdown(data_summary(None))
    with gr.Row():
        base = gr.Dropdown(context.bases, value=context.default_base, label="Base model")
        method = gr.Radio(
            [LORA, FULL, BOTH],
            value=LORA,
            label="Method",
            info="Full finetune trains every weight: the baseline LoRA is measured against. "
            "LoRA vs full trains both with one schedule and compares them.",
        )
    with gr.Group() as lora_options:
        with gr.Row():
            rank = gr.Slider(1, 128, value=8, step=1, label="Rank r", info="Inner size of B·A; trainable parameters grow linearly with it.")
            alpha = gr.Number(value=16, label="Alpha", info="The update is scaled by alpha / r (alpha / √r with rsLoRA).")
            dropout = gr.Slider(0, 0.5, value=0.05, step=0.01, label="LoRA dropout")
        with gr.Row():
            targets = gr.Textbox(label="Target modules", placeholder="empty: the base's default (query and value); or q_proj, v_proj; or all-linear")
            use_dora = gr.Checkbox(False, label="DoRA", info="Also learn a magnitude per output; slower steps.")
            use_rslora = gr.Checkbox(False, label="rsLoRA", info="Scale by alpha / √r, which suits large ranks.")
    last_n_blocks = gr.Number(value=0, precision=0, label="Train only the last N blocks (0: all)", visible=False)
    with gr.Row():
        epochs = gr.Number(value=3, label="Epochs")
        learning_rate = gr.Number(value=0, label="Learning rate (0: 5e-4 for LoRA, 5e-5 for full)")
        batch_size = gr.Number(value=16, precision=0, label="Batch size")
        max_length = gr.Number(value=128, precision=0, label="Max tokens per example")
    with gr.Accordion("More options", open=False):
        with gr.Row():
            max_steps = gr.Number(value=0, precision=0, label="Max steps (0: run all epochs)")
            eval_every_steps = gr.Number(value=0, precision=0, label="Validate every N steps (0: once per epoch)")
            seed = gr.Number(value=42, precision=0, label="Seed")
    with gr.Row():
        run_name = gr.Textbox(label="Store as (empty: task-method-rank; LoRA vs full adds -lora and -full)", scale=3)
        force = gr.Checkbox(False, label="Replace an entry with this name", scale=1)
    start_button = gr.Button("Start training", variant="primary")

    gr.Markdown("### Progress")
    with gr.Row():
        watched = gr.Dropdown(label="Training job", choices=train_job_choices(context), value=None, scale=4)
        cancel_button = gr.Button("Cancel training", variant="stop", scale=1)
    status = gr.Markdown(elem_id="train-status")
    with gr.Row():
        loss_plot = gr.LinePlot(x="step", y="value", color="series", title="Loss", height=280)
        metric_plot = gr.LinePlot(x="step", y="value", color="series", title="Validation metrics", height=280)
    results = gr.Dataframe(label="Result of the finished run", interactive=False, elem_id="train-results")
    comparison = gr.Dataframe(label="LoRA vs full finetune", interactive=False, wrap=True, visible=False, elem_id="train-comparison")
    comparison_costs = gr.Dataframe(label="Costs", interactive=False, wrap=True, visible=False)
    gr.Markdown("### All jobs")
    build_jobs_panel(context.queue, timer)
    # What the plots last showed ("job:seq:status"), so a tick redraws them only when something changed.
    shown_key = gr.State("")

    config_inputs = [method, rank, alpha, dropout, targets, use_dora, use_rslora, last_n_blocks, epochs, learning_rate,
                     batch_size, max_length, max_steps, eval_every_steps, seed]

    @show_errors
    def start(data, base_name, name, replace, *form):
        if not data:
            raise ConfigError("No training data is chosen.", "Pick data on the Data screen and press Check data first.")
        config = build_config(*form)
        method_choice = form[0]
        name = (name or "").strip() or default_run_name(data, config, method_choice)
        params = {
            "base": context.check_base(base_name),
            "source": {"source": data["source"], **data["options"]},
            "task": (data.get("task") or {}).get("name"),
            "name": name,
            "force": bool(replace),
        }
        if method_choice == BOTH:
            last_n_blocks = form[7]
            params.update(
                method="lora vs full",
                lora_name=f"{name}-lora",
                full_name=f"{name}-full",
                lora_config=config.to_dict(),
                full_config=full_config_like(config, last_n_blocks).to_dict(),
            )
            job = context.queue.submit("train_compare", params)
        else:
            params.update(method=config.method, config=config.to_dict())
            job = context.queue.submit("train", params)
        return gr.update(choices=train_job_choices(context), value=job.id), job_status_markdown(context.queue, job), ""

    def refresh(job_id, last_key):
        job = find_job(context.queue, job_id)
        unchanged = [gr.update()] * 7
        if job is None:
            return [gr.update(), *unchanged, last_key]
        events = context.queue.events(job.id)
        key = f"{job.id}:{events[-1]['seq'] if events else 0}:{job.status}"
        line = job_status_markdown(context.queue, job)
        if key == last_key:
            return [line, *unchanged, last_key]
        # The job picker's labels show each job's status, so they change when the status does.
        status_changed = last_key.rsplit(":", 1)[-1] != job.status
        picker = gr.update(choices=train_job_choices(context), value=job.id) if status_changed else gr.update()
        loss_frame, metric_frame = progress_frames(events)
        report = (job.result or {}).get("report") if job.status == SUCCEEDED else None
        if report:
            single = gr.update(visible=False)
            compared = [gr.update(value=metrics_table(report), visible=True), gr.update(value=costs_table(report), visible=True)]
        else:
            table = result_frame(job.result) if job.status == SUCCEEDED else pd.DataFrame(columns=["figure", "value"])
            single = gr.update(value=table, visible=True)
            compared = [gr.update(visible=False), gr.update(visible=False)]
        return [line, loss_frame, metric_frame, single, *compared, picker, key]

    @show_errors
    def cancel(job_id):
        if job_id is None:
            raise ConfigError("No training job is selected.", "Pick the job to cancel.")
        job = context.queue.cancel(int(job_id))
        return job_status_markdown(context.queue, job)

    method.change(
        lambda chosen: (gr.update(visible=chosen != FULL), gr.update(visible=chosen != LORA)),
        inputs=method,
        outputs=[lora_options, last_n_blocks],
    )
    data_source.change(data_summary, inputs=data_source, outputs=data_line)
    refresh_outputs = [status, loss_plot, metric_plot, results, comparison, comparison_costs, watched, shown_key]
    start_button.click(start, inputs=[data_source, base, run_name, force, *config_inputs], outputs=[watched, status, shown_key]).then(
        refresh, inputs=[watched, shown_key], outputs=refresh_outputs
    )
    watched.input(lambda job_id: refresh(job_id, ""), inputs=watched, outputs=refresh_outputs)
    cancel_button.click(cancel, inputs=watched, outputs=status)
    timer.tick(refresh, inputs=[watched, shown_key], outputs=refresh_outputs, show_progress="hidden", concurrency_limit=None)
    def pick_job(current):
        # A reloaded page has no watched job yet, so it follows the newest training job of any session.
        choices = train_job_choices(context)
        return gr.update(choices=choices, value=current if current is not None else (choices[0][1] if choices else None))

    tab.select(pick_job, inputs=watched, outputs=watched).then(refresh, inputs=[watched, shown_key], outputs=refresh_outputs)
