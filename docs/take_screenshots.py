"""Take the README screenshot (docs/screenshot.png) of a real app process in headless Chromium.

Usage: python docs/take_screenshots.py [--base minilm-l6] [--steps 30] [--all]

It starts `python app.py` on a free 127.0.0.1 port with a temporary adapter store, trains LoRA and the
full finetune on the built-in chatterbot-topics task for a few steps, compares them, and saves the
Compare screen. `--all` also saves every screen as docs/screen-<name>.png, for reviewing the layout.
"""

import argparse
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from browser_helpers import chromium_browser, running_app  # noqa: E402

TRAIN_TIMEOUT_MS = 900_000


def shoot(page, path: Path) -> None:
    page.wait_for_timeout(1500)
    page.screenshot(path=str(path), full_page=True)
    print(f"saved {path}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="minilm-l6", help="base model to serve (default minilm-l6)")
    parser.add_argument("--steps", type=int, default=30, help="training steps per run (default 30)")
    parser.add_argument("--all", action="store_true", help="also save every screen as docs/screen-<name>.png")
    args = parser.parse_args()

    docs = ROOT / "docs"
    with tempfile.TemporaryDirectory(prefix="lora-playground-screenshot-") as workdir, running_app(
        args.base, Path(workdir)
    ) as (url, _process, _log), chromium_browser() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(120_000)
        page.goto(url)
        page.locator("#lora-calculator").get_by_text("trainable parameters").wait_for()
        if args.all:
            shoot(page, docs / "screen-learn.png")

        page.get_by_role("tab", name="Data", exact=True).click()
        page.get_by_role("button", name="Check data", exact=True).click()
        page.locator("#data-result").get_by_text("Ready:").wait_for()
        if args.all:
            shoot(page, docs / "screen-data.png")

        page.get_by_role("tab", name="Train", exact=True).click()
        page.get_by_label("LoRA vs full finetune", exact=True).check()
        page.get_by_text("More options").click()
        page.get_by_label("Max steps (0: run all epochs)").fill(str(args.steps))
        page.get_by_label("Store as (empty: task-method-rank; LoRA vs full adds -lora and -full)").fill("topics")
        page.get_by_role("button", name="Start training", exact=True).click()
        page.locator("#train-status").get_by_text("finished").wait_for(timeout=TRAIN_TIMEOUT_MS)
        if args.all:
            shoot(page, docs / "screen-train.png")

        page.get_by_role("tab", name="Compare", exact=True).click()
        runs = page.get_by_label("Runs to compare", exact=True)
        for name in ("topics-lora", "topics-full"):
            runs.click()
            page.get_by_role("option", name=re.compile(re.escape(name))).first.click()
        page.keyboard.press("Escape")
        page.get_by_role("button", name="Compare", exact=True).click()
        page.locator("#compare-metrics").get_by_text("topics-full").wait_for(timeout=TRAIN_TIMEOUT_MS)
        shoot(page, docs / "screenshot.png")

        if args.all:
            page.get_by_role("tab", name="Try", exact=True).click()
            runs = page.get_by_label("Runs", exact=True)
            runs.click()
            page.get_by_role("option", name=re.compile("topics-lora")).first.click()
            page.keyboard.press("Escape")
            page.get_by_label("Input text").fill("can you write a fizzbuzz in Python?")
            page.get_by_role("button", name="Run", exact=True).click()
            page.locator("#try-results").get_by_text("topics-full").wait_for()
            shoot(page, docs / "screen-try.png")
            for tab in ("Adapters", "Hub"):
                page.get_by_role("tab", name=tab, exact=True).click()
                shoot(page, docs / f"screen-{tab.lower()}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
