"""The Gradio app: one tab per screen, a shared job queue, and the launch with server options."""

from __future__ import annotations

import logging

import gradio as gr

from lora_playground import settings
from lora_playground.jobs import JobQueue
from lora_playground.ui.context import AppContext
from lora_playground.ui.jobs_panel import REFRESH_SECONDS
from lora_playground.ui.learn import build_learn_screen
from lora_playground.ui.server import ServerOptions

logger = logging.getLogger(__name__)

TITLE = "LoRA Playground"


def create_app_context(options: ServerOptions) -> AppContext:
    """Open the job database (closing jobs a previous process left open), register job kinds, start workers."""
    from lora_playground.ui.job_kinds import register_job_kinds

    queue = JobQueue(concurrency=options.job_workers)
    context = AppContext(bases=list(options.bases), queue=queue, limits=settings.limits(), exposed=options.is_exposed)
    register_job_kinds(queue, context)
    queue.start()
    return context


def build_app(context: AppContext) -> gr.Blocks:
    """Build the Blocks app for `context`; call `.queue(...)` and `.launch(...)` on the result."""
    from lora_playground.ui.adapters import build_adapters_screen
    from lora_playground.ui.compare import build_compare_screen
    from lora_playground.ui.data import build_data_screen
    from lora_playground.ui.hub import build_hub_screen
    from lora_playground.ui.train import build_train_screen
    from lora_playground.ui.try_models import build_try_screen

    with gr.Blocks(title=TITLE, analytics_enabled=False) as demo:
        gr.Markdown(f"# {TITLE}\nTrain, compare, try and publish LoRA adapters on one shared base model.")
        # One timer per page drives every refresh (job list, training progress), so all sessions
        # read the same job database.
        timer = gr.Timer(REFRESH_SECONDS)
        data_source = gr.State(None)
        with gr.Tabs():
            with gr.Tab("Learn", id="learn"):
                build_learn_screen(context, demo)
            with gr.Tab("Data", id="data"):
                build_data_screen(context, data_source)
            with gr.Tab("Train", id="train") as train_tab:
                build_train_screen(context, data_source, timer, train_tab)
            with gr.Tab("Compare", id="compare") as compare_tab:
                build_compare_screen(context, data_source, timer, compare_tab)
            with gr.Tab("Try", id="try") as try_tab:
                build_try_screen(context, data_source, try_tab)
            with gr.Tab("Adapters", id="adapters") as adapters_tab:
                build_adapters_screen(context, adapters_tab)
            with gr.Tab("Hub", id="hub") as hub_tab:
                build_hub_screen(context, timer, hub_tab)
    return demo


def launch(options: ServerOptions) -> None:
    """Build the app and serve it with `options`; blocks until the server stops."""
    if options.is_exposed and not options.auth:
        logger.warning(
            "Serving on %s%s without a login: anyone who can reach it can train, delete and publish adapters. "
            "Add --auth-file to require one.",
            options.host,
            " with a public share link" if options.share else "",
        )
    context = create_app_context(options)
    demo = build_app(context)
    demo.queue(default_concurrency_limit=options.concurrency_limit, max_size=options.max_queue_size)
    try:
        demo.launch(
            server_name=options.host,
            server_port=options.port,
            share=options.share,
            auth=options.auth or None,
            max_file_size=context.limits.max_upload_bytes,
            show_error=False,
            # Run history would keep inputs (Hub tokens included) in the browser; monitoring and MCP
            # would open endpoints a shared server does not need.
            run_history=False,
            enable_monitoring=False,
            mcp_server=False,
            ssr_mode=False,
            footer_links=["gradio", "settings"],
        )
    finally:
        context.queue.shutdown(cancel_running=True, timeout=10)
