"""Hub screen: push a stored adapter, pull one by repo id, and list a user's or organisation's adapters."""

from __future__ import annotations

import gradio as gr
import pandas as pd

from lora_playground.errors import HubError
from lora_playground.ui.adapter_choices import adapter_choices
from lora_playground.ui.context import AppContext
from lora_playground.ui.errors import show_errors
from lora_playground.ui.job_watch import find_job, job_status_markdown

HUB_COLUMNS = ["repo_id", "base_model", "last_modified", "downloads", "private"]


def token_for_request(typed: str | None, context: AppContext, action: str) -> str | None:
    """Return the token to use for a Hub request made from the app (None: the server's own login).

    A typed token always wins. Without one, a local app (loopback address, no share link) uses the
    server's login (HF_TOKEN or `hf auth login`). An exposed app never lends that login to visitors,
    so it raises HubError instead.
    """
    if typed and typed.strip():
        return typed.strip()
    if not context.exposed:
        return None
    # NOTE: anonymous requests need `hub` to accept token=False (huggingface_hub's "no token"); until
    # then a shared server requires a token from every visitor, even to list or pull public adapters.
    raise HubError(
        f"{action} needs your Hugging Face token on this shared server.",
        "Paste a token into the token field (read access is enough to list and pull, pushing needs write access).",
    )


def list_table(author: str, token: str, context: AppContext) -> pd.DataFrame:
    from lora_playground.hub.listing import list_hub_adapters

    adapters = list_hub_adapters(author, token=token_for_request(token, context, "Listing adapters"))
    rows = [
        {
            "repo_id": adapter.repo_id,
            "base_model": adapter.base_model or "",
            "last_modified": adapter.last_modified.strftime("%Y-%m-%d") if adapter.last_modified else "",
            "downloads": adapter.downloads,
            "private": adapter.private,
        }
        for adapter in adapters
    ]
    return pd.DataFrame(rows, columns=HUB_COLUMNS)


def build_hub_screen(context: AppContext, timer: gr.Timer, tab: gr.Tab) -> None:
    gr.Markdown(
        "Publish adapters to the Hugging Face Hub and pull other people's adapters onto the shared base. "
        "The token stays in memory for the request only: it is never written to disk, the logs or the job list."
    )
    token = gr.Textbox(label="Hugging Face token", type="password", placeholder="hf_...")
    watched_job = gr.State(None)

    with gr.Row():
        with gr.Column():
            gr.Markdown("### Push")
            push_adapter = gr.Dropdown(label="Local adapter", choices=adapter_choices(kinds=("lora",)))
            push_repo = gr.Textbox(label="Repo id", placeholder="your-name/adapter-name")
            push_private = gr.Checkbox(True, label="Private repository")
            push_baseline = gr.Dropdown(label="Full-finetune baseline shown in the card (optional)", choices=adapter_choices(kinds=("full",)))
            push_base_id = gr.Textbox(label="Base model Hub id (only for a base loaded from a local folder)")
            push_button = gr.Button("Push to Hub", variant="primary")
        with gr.Column():
            gr.Markdown("### Pull")
            pull_repo = gr.Textbox(label="Repo id to pull", placeholder="owner/adapter-name")
            pull_revision = gr.Textbox(label="Revision (branch, tag or commit; empty: main)")
            pull_name = gr.Textbox(label="Store as (empty: owner--name)")
            pull_base = gr.Dropdown(context.bases, value=context.default_base, label="Base model the adapter must fit")
            pull_button = gr.Button("Pull from Hub", variant="primary")
    hub_status = gr.Markdown(elem_id="hub-status")

    gr.Markdown("### Adapters on the Hub")
    with gr.Row():
        author = gr.Textbox(label="User or organisation", scale=3)
        list_button = gr.Button("List adapters", scale=1)
    listing = gr.Dataframe(headers=HUB_COLUMNS, interactive=False, label="PEFT adapters", elem_id="hub-listing")

    @show_errors
    def push(name, repo_id, private, baseline, base_hub_id, typed_token):
        if not name:
            raise HubError("No adapter is selected.", "Pick a local adapter to push.")
        secret = token_for_request(typed_token, context, "Pushing")
        params = {
            "name": name,
            "repo_id": (repo_id or "").strip(),
            "private": bool(private),
            "baseline": baseline or None,
            "base_hub_id": (base_hub_id or "").strip() or None,
        }
        job = context.queue.submit("hub_push", params, secrets={"token": secret} if secret else None)
        return job.id, f"Push queued as job #{job.id}."

    @show_errors
    def pull(repo_id, revision, name, base_name, typed_token):
        secret = token_for_request(typed_token, context, "Pulling")
        params = {
            "repo_id": (repo_id or "").strip(),
            "revision": (revision or "").strip() or None,
            "name": (name or "").strip() or None,
            "base": context.check_base(base_name),
        }
        job = context.queue.submit("hub_pull", params, secrets={"token": secret} if secret else None)
        return job.id, f"Pull queued as job #{job.id}."

    def follow(job_id):
        job = find_job(context.queue, job_id)
        return gr.update() if job is None else job_status_markdown(context.queue, job)

    push_button.click(
        push, inputs=[push_adapter, push_repo, push_private, push_baseline, push_base_id, token], outputs=[watched_job, hub_status]
    )
    pull_button.click(pull, inputs=[pull_repo, pull_revision, pull_name, pull_base, token], outputs=[watched_job, hub_status])
    list_button.click(show_errors(lambda name, typed: list_table(name, typed, context)), inputs=[author, token], outputs=listing)
    timer.tick(follow, inputs=watched_job, outputs=hub_status, show_progress="hidden", concurrency_limit=None)
    tab.select(
        lambda: (gr.update(choices=adapter_choices(kinds=("lora",))), gr.update(choices=adapter_choices(kinds=("full",)))),
        outputs=[push_adapter, push_baseline],
    )
