"""Serve LoRA Playground in the browser: `python app.py` (see `python app.py --help` for the options).

Binds to 127.0.0.1:7860 unless --host/--port (or their environment variables) say otherwise. Hugging
Face Spaces runs this file as it is.
"""

import os
import sys

# Gradio reads this when it is imported, so it must be set first: the app reaches no analytics server.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from lora_playground.ui.server import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
