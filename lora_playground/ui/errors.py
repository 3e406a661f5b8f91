"""Translation of exceptions into messages for people: readable text in the page, tracebacks in the log."""

from __future__ import annotations

import functools
import html
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import gradio as gr

from lora_playground.errors import PlaygroundError
from lora_playground.jobs.redact import redact_text

logger = logging.getLogger(__name__)

Handler = TypeVar("Handler", bound=Callable[..., Any])


def user_message(error: BaseException) -> str:
    """Return the text to show for `error`: a PlaygroundError's own message, a generic line for bugs."""
    if isinstance(error, PlaygroundError):
        return redact_text(str(error))
    return f"Unexpected error ({type(error).__name__}). The app log has the details."


def error_markdown(error: BaseException) -> str:
    """Return `error` as an inline Markdown block (escaped, since messages quote user input)."""
    return f"**Error:** {html.escape(user_message(error))}"


def show_errors(handler: Handler) -> Handler:
    """Wrap a Gradio event handler so failures reach the user as a gr.Error pop-up, never a traceback.

    PlaygroundError messages are shown as they are, HTML-escaped because gr.Error renders HTML. Any
    other exception is logged with its traceback and shown as a generic "unexpected error".
    Generator handlers (streaming outputs) are wrapped too.
    """
    import inspect

    def translate(error: Exception) -> gr.Error:
        if isinstance(error, PlaygroundError):
            logger.info("%s: %s", handler.__qualname__, redact_text(str(error)))
        else:
            logger.exception("Unexpected error in %s", handler.__qualname__)
        return gr.Error(html.escape(user_message(error)), print_exception=False)

    if inspect.isgeneratorfunction(handler):

        @functools.wraps(handler)
        def wrapped_generator(*args, **kwargs):
            try:
                yield from handler(*args, **kwargs)
            except gr.Error:
                raise
            except Exception as error:
                raise translate(error) from None

        return wrapped_generator  # type: ignore[return-value]

    @functools.wraps(handler)
    def wrapped(*args, **kwargs):
        try:
            return handler(*args, **kwargs)
        except gr.Error:
            raise
        except Exception as error:
            raise translate(error) from None

    return wrapped  # type: ignore[return-value]
