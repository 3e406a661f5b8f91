"""Adapters screen: the local store, each entry's model card and metadata, and deletion with confirmation."""

from __future__ import annotations

import json

import gradio as gr
import pandas as pd

from lora_playground.adapters import AdapterStore
from lora_playground.errors import AdapterError
from lora_playground.ui.adapter_choices import adapter_choices, store_entries
from lora_playground.ui.context import AppContext
from lora_playground.ui.errors import error_markdown, show_errors
from lora_playground.ui.formatting import escape_markdown, format_bytes, format_count
from lora_playground.ui.report_view import format_value

STORE_COLUMNS = ["name", "kind", "task", "type", "base", "setup", "test metric", "trainable", "stored", "created", "source"]
PRIMARY_METRIC = {"classification": "accuracy", "generation": "rouge_l"}


def describe_setup(metadata) -> str:
    config = metadata.train_config or {}
    if metadata.kind == "full":
        blocks = config.get("last_n_blocks")
        return "full finetune" + (f", last {blocks} blocks" if blocks else "")
    variants = [name for flag, name in (("use_dora", "DoRA"), ("use_rslora", "rsLoRA")) if config.get(flag)]
    text = f"LoRA r={config.get('rank', '?')}, alpha={config.get('alpha', '?')}"
    return text + (f" ({', '.join(variants)})" if variants else "")


def store_table() -> pd.DataFrame:
    rows = []
    for entry in store_entries():
        metadata = entry.metadata
        if not entry.ok or metadata is None:
            rows.append({column: "" for column in STORE_COLUMNS} | {"name": entry.name, "kind": "broken", "setup": entry.problem or ""})
            continue
        metric = PRIMARY_METRIC.get(metadata.task_type, "accuracy")
        value = metadata.metrics.get(metric)
        rows.append(
            {
                "name": metadata.name,
                "kind": metadata.kind,
                "task": metadata.task.get("name", ""),
                "type": metadata.task_type,
                "base": metadata.base_model.name,
                "setup": describe_setup(metadata),
                "test metric": f"{metric} {format_value(value, 'fraction' if metric != 'perplexity' else 'number')}"
                if value is not None
                else "",
                "trainable": format_count(metadata.cost.get("trainable_params")),
                "stored": format_bytes(metadata.cost.get("stored_bytes")),
                "created": metadata.created_at.replace("T", " ").removesuffix("+00:00") + " UTC",
                "source": metadata.provenance.repo_id or metadata.provenance.source,
            }
        )
    return pd.DataFrame(rows, columns=STORE_COLUMNS)


def strip_front_matter(card: str) -> tuple[str, str]:
    """Split a model card into its YAML front matter (without the --- lines) and its Markdown body."""
    if card.startswith("---\n"):
        end = card.find("\n---", 4)
        if end != -1:
            return card[4:end], card[end + 4 :].lstrip("\n")
    return "", card


def entry_details(name: str | None):
    """Return the model card body, its YAML header and the metadata JSON of a stored entry."""
    if not name:
        return "Pick an entry to see its model card.", "", ""
    store = AdapterStore()
    try:
        entry = store.get(name)
    except AdapterError as error:
        # A broken entry still shows why it is broken, so people can decide to delete it.
        return error_markdown(error), "", ""
    card_path = entry.path / "README.md"
    card = card_path.read_text(encoding="utf-8") if card_path.is_file() else "This entry has no model card."
    header, body = strip_front_matter(card)
    return body, header, json.dumps(entry.metadata.to_dict(), indent=2, ensure_ascii=False)


def build_adapters_screen(context: AppContext, tab: gr.Tab) -> None:
    gr.Markdown("Everything stored on this server: LoRA adapters and full-finetune checkpoints.")
    table = gr.Dataframe(value=store_table, label="Stored runs", interactive=False, wrap=True, elem_id="store-table")
    refresh_button = gr.Button("Refresh list", size="sm")
    selected = gr.Dropdown(label="Entry", choices=adapter_choices(include_broken=True))
    with gr.Row():
        with gr.Column(scale=3):
            card = gr.Markdown(label="Model card")
        with gr.Column(scale=2):
            card_header = gr.Code(label="Model card metadata (YAML front matter)", language="yaml")
            metadata = gr.Code(label="metadata.json", language="json", elem_id="entry-metadata")
    with gr.Accordion("Delete this entry", open=False):
        confirmation = gr.Textbox(label="Type the entry name to confirm")
        delete_button = gr.Button("Delete entry", variant="stop")
    delete_status = gr.Markdown()

    def refresh():
        return store_table(), gr.update(choices=adapter_choices(include_broken=True))

    @show_errors
    def delete(name, typed):
        if not name:
            raise AdapterError("No entry is selected.", "Pick the entry to delete first.")
        if (typed or "").strip() != name:
            raise AdapterError(
                f"The confirmation {typed!r} does not match the entry name {name!r}.",
                "Type the exact name to delete it.",
            )
        AdapterStore().delete(name)
        choices = adapter_choices(include_broken=True)
        return (
            store_table(),
            gr.update(choices=choices, value=None),
            "",
            f"Deleted {escape_markdown(name)}.",
        )

    selected.change(show_errors(entry_details), inputs=selected, outputs=[card, card_header, metadata])
    delete_button.click(delete, inputs=[selected, confirmation], outputs=[table, selected, confirmation, delete_status])
    refresh_button.click(refresh, outputs=[table, selected])
    tab.select(refresh, outputs=[table, selected])
