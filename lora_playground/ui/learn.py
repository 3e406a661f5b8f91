"""Learn, the landing screen: what LoRA is, when full finetuning is the better choice, and a live calculator."""

from __future__ import annotations

import logging

import gradio as gr

from lora_playground.errors import PlaygroundError
from lora_playground.models import get_shared_base, linear_layer_names
from lora_playground.training.config import TrainConfig
from lora_playground.training.estimate import estimate_lora
from lora_playground.ui.context import AppContext
from lora_playground.ui.errors import error_markdown
from lora_playground.ui.formatting import escape_markdown, format_bytes, format_count, format_percent

logger = logging.getLogger(__name__)

ALL_LINEAR = "all-linear"

INTRODUCTION = """
## What LoRA does

A pretrained model already knows a lot about language. To teach it a new task you can update every
weight (**full finetuning**) or keep the base weights frozen and learn a small correction next to
them. **LoRA** (Low-Rank Adaptation) writes the correction to a weight matrix *W* (size *d × k*) as
the product of two thin matrices, *B* (*d × r*) and *A* (*r × k*), with a small rank *r*. The layer
computes *W x + (α / r) · B A x*. Only *A* and *B* train; for classification the new output head
trains too.

Because *r* is small, an adapter has a tiny fraction of the base's parameters and is stored in a few
megabytes. Many adapters can share one base model in memory, and you can switch between them per
request. Training also needs less memory, since the optimizer keeps state only for the adapter.

## When full finetuning is still the better choice

- The task is far from what the base saw in pretraining (a new language or notation), so the change
  the model needs may not fit into a low-rank update.
- You have a lot of training data and want the best score you can get, and the memory, time and
  storage for one full copy per task are not a problem.
- The base is small enough that a full copy costs little, so the savings of LoRA matter less.

The Compare screen measures both on your task, so you can decide with numbers.
"""

DIAGRAM_SVG = """
<svg viewBox="0 0 520 210" width="520" role="img" aria-label="LoRA adds B times A next to a frozen weight W"
     xmlns="http://www.w3.org/2000/svg" style="max-width:100%;font-family:sans-serif;font-size:14px">
  <text x="10" y="110">input x</text>
  <line x1="70" y1="105" x2="120" y2="55" stroke="currentColor"/>
  <line x1="70" y1="105" x2="120" y2="155" stroke="currentColor"/>
  <rect x="120" y="30" width="180" height="50" rx="6" fill="#9ca3af" fill-opacity="0.35" stroke="currentColor"/>
  <text x="135" y="52">W  (d × k)</text>
  <text x="135" y="70" font-size="12">frozen, shared by all adapters</text>
  <rect x="120" y="130" width="70" height="50" rx="6" fill="#f97316" fill-opacity="0.35" stroke="currentColor"/>
  <text x="130" y="160">A (r × k)</text>
  <line x1="190" y1="155" x2="230" y2="155" stroke="currentColor"/>
  <rect x="230" y="130" width="70" height="50" rx="6" fill="#f97316" fill-opacity="0.35" stroke="currentColor"/>
  <text x="240" y="160">B (d × r)</text>
  <text x="150" y="200" font-size="12">trained: the LoRA adapter, scaled by α / r</text>
  <line x1="300" y1="55" x2="380" y2="100" stroke="currentColor"/>
  <line x1="300" y1="155" x2="380" y2="110" stroke="currentColor"/>
  <circle cx="390" cy="105" r="12" fill="none" stroke="currentColor"/>
  <text x="384" y="110">+</text>
  <line x1="402" y1="105" x2="440" y2="105" stroke="currentColor"/>
  <text x="445" y="110">output h</text>
</svg>
"""


def calculate(base_name: str, task_type: str, num_labels: float, rank: float, targets: list[str], use_dora: bool,
              context: AppContext) -> str:
    """Return the calculator's Markdown table, or an inline error message."""
    try:
        base = get_shared_base(context.check_base(base_name))
        target_modules: list[str] | str | None
        if not targets:
            target_modules = None
        elif ALL_LINEAR in targets:
            target_modules = ALL_LINEAR
        else:
            target_modules = list(targets)
        config = TrainConfig(rank=int(rank), target_modules=target_modules, use_dora=use_dora)
        footprint = estimate_lora(base, config, task_type, num_labels=int(num_labels or 2))
    except PlaygroundError as error:
        return error_markdown(error)
    except Exception as error:
        logger.exception("LoRA calculator failed for base %s", base_name)
        return error_markdown(error)

    targets_text = ", ".join(footprint.target_modules)
    return "\n".join(
        [
            "| | LoRA adapter | full finetune |",
            "| --- | ---: | ---: |",
            f"| trainable parameters | {format_count(footprint.trainable_params)} "
            f"| {format_count(footprint.base_params)} |",
            f"| share of the model's parameters | {format_percent(footprint.trainable_fraction, 3)} | 100% |",
            f"| stored weights (safetensors) | {format_bytes(footprint.adapter_bytes)} "
            f"| {format_bytes(footprint.full_model_bytes)} |",
            "",
            f"Adapts {footprint.adapted_layers} layers named {escape_markdown(targets_text)} with rank "
            f"{int(rank)}{' and DoRA' if use_dora else ''}. For classification the new head "
            f"({int(num_labels or 2)} classes) is trained and stored with the adapter. Training on this base "
            "reports these same counts.",
        ]
    )


def target_choices(base_name: str, context: AppContext):
    """Return a CheckboxGroup update listing the base's linear layer names and "all-linear"."""
    try:
        base = get_shared_base(context.check_base(base_name))
    except PlaygroundError as error:
        return gr.update(choices=[ALL_LINEAR], value=[]), error_markdown(error)
    names = linear_layer_names(base.model)
    return gr.update(choices=[*names, ALL_LINEAR], value=[]), ""


def build_learn_screen(context: AppContext, demo: gr.Blocks) -> None:
    with gr.Row():
        with gr.Column(scale=3):
            gr.Markdown(INTRODUCTION)
        with gr.Column(scale=2):
            gr.HTML(DIAGRAM_SVG)
            gr.Markdown("### Calculator\nWhat LoRA on the chosen base trains and stores.")
            base = gr.Dropdown(context.bases, value=context.default_base, label="Base model")
            task_type = gr.Radio(["classification", "generation"], value="classification", label="Task type")
            num_labels = gr.Number(value=2, minimum=1, precision=0, label="Classes (classification)")
            rank = gr.Slider(1, 256, value=8, step=1, label="Rank r")
            targets = gr.CheckboxGroup([], label="Target modules (none picked: the base's default)")
            use_dora = gr.Checkbox(False, label="DoRA (adds a magnitude vector per adapted layer)")
            result = gr.Markdown(elem_id="lora-calculator")

    inputs = [base, task_type, num_labels, rank, targets, use_dora]

    def update(*values):
        return calculate(*values, context=context)

    def update_targets(base_name):
        return target_choices(base_name, context)

    for component in (task_type, num_labels, rank, targets, use_dora):
        component.input(update, inputs=inputs, outputs=result, show_progress="minimal")
    # The first load of a base can take many seconds, so the layer choices update before the numbers.
    base.change(update_targets, inputs=base, outputs=[targets, result]).then(update, inputs=inputs, outputs=result)
    demo.load(update_targets, inputs=base, outputs=[targets, result]).then(update, inputs=inputs, outputs=result)
