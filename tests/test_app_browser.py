"""The Gradio app as a real server on 127.0.0.1, driven in headless Chromium through Playwright."""

import re
import urllib.error
import urllib.request

import pytest
from playwright.sync_api import expect

from browser_helpers import chromium_browser, running_app, save_screenshot

pytestmark = pytest.mark.browser

PAGE_TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def app_server(tiny_bert_dir, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("app")
    with running_app(tiny_bert_dir, workdir) as (url, process, log_path):
        yield {"url": url, "workdir": workdir, "log": log_path, "process": process}


@pytest.fixture(scope="module")
def browser():
    with chromium_browser() as launched:
        yield launched


@pytest.fixture
def page(browser, app_server, request):
    """A fresh page on the app; a failed test leaves a screenshot in test-artifacts/."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    page.goto(app_server["url"])
    page.get_by_role("tab", name="Learn").wait_for()
    failures_before = request.session.testsfailed
    yield page
    if request.session.testsfailed > failures_before:
        save_screenshot(page, f"failed-{request.node.name}")
    context.close()


def open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name, exact=True).click()


def click_button(page, name: str) -> None:
    # Gradio 6 adds a "Use via API" button, so buttons are matched by their exact name.
    page.get_by_role("button", name=name, exact=True).click()


def test_learn_calculator_matches_estimate(page, tiny_bert_dir):
    from lora_playground.models import get_shared_base
    from lora_playground.training.config import TrainConfig
    from lora_playground.training.estimate import estimate_lora

    expected = estimate_lora(get_shared_base(tiny_bert_dir), TrainConfig(rank=8), num_labels=2)
    calculator = page.locator("#lora-calculator")
    calculator.get_by_text("trainable parameters").wait_for()
    text = calculator.inner_text()
    assert f"{expected.trainable_params:,}" in text
    assert "query, value" in text

    rank_input = page.get_by_label("number input for Rank r")
    rank_input.fill("16")
    rank_input.press("Enter")
    doubled = estimate_lora(get_shared_base(tiny_bert_dir), TrainConfig(rank=16), num_labels=2)
    page.locator("#lora-calculator").get_by_text(f"{doubled.trainable_params:,}").wait_for()


def test_builtin_task_check_shows_counts(page):
    open_tab(page, "Data")
    click_button(page, "Check data")
    result = page.locator("#data-result")
    result.get_by_text("Ready:").wait_for()
    text = result.inner_text()
    assert "chatterbot-topics" in text
    assert "Classes:" in text
    assert re.search(r"train [\d,]+", text)


def test_malformed_upload_shows_problem(page, tmp_path):
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"text": "fine row", "label": "a"}\n{"text": "no closing brace", "label": "b"\n', encoding="utf-8")
    open_tab(page, "Data")
    page.get_by_label("Upload a file").check()
    page.locator("#data-upload input[type=file]").set_input_files(str(broken))
    expect(page.locator("#data-upload")).to_contain_text("broken.jsonl")
    click_button(page, "Check data")
    result = page.locator("#data-result")
    result.get_by_text("Problems").wait_for()
    text = result.inner_text()
    assert "broken.jsonl" in text
    assert "Line 2 of broken.jsonl is not valid JSON" in text
    assert "Traceback" not in text


def test_upload_with_column_mapping(page, tmp_path):
    rows = ["body,tag"] + [f"free prize number {index} call now,spam" for index in range(15)]
    rows += [f"see you at lunch on day {index},ham" for index in range(15)]
    upload = tmp_path / "messages.csv"
    upload.write_text("\n".join(rows) + "\n", encoding="utf-8")

    open_tab(page, "Data")
    page.get_by_label("Upload a file").check()
    page.locator("#data-upload input[type=file]").set_input_files(str(upload))
    expect(page.locator("#data-upload")).to_contain_text("messages.csv")
    click_button(page, "Check data")
    result = page.locator("#data-result")
    expect(result).to_contain_text("Problems")
    assert "body" in result.inner_text()

    page.get_by_text("Columns and format").click()
    select_options(page, "Text column(s) (one, or two for pairs; empty: detect)", ["body"])
    select_options(page, "Label column", ["tag"])
    click_button(page, "Check data")
    expect(result).to_contain_text("Ready:")
    text = result.inner_text()
    assert "task messages (classification)" in text
    assert "Classes: ham, spam." in text


def test_upload_over_limit_is_rejected(browser, tiny_bert_dir, tmp_path):
    workdir = tmp_path / "limit"
    workdir.mkdir()
    big = tmp_path / "big.csv"
    big.write_text("text,label\n" + "a long line of text,x\n" * 80_000, encoding="utf-8")
    assert big.stat().st_size > 1024 * 1024
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    try:
        with running_app(tiny_bert_dir, workdir, extra_env={"LORA_PLAYGROUND_MAX_UPLOAD_MB": "1"}) as (url, process, log):
            page.goto(url)
            open_tab(page, "Data")
            page.get_by_label("Upload a file").check()
            expect(page.locator("#data-upload")).to_contain_text("at most 1 MiB")
            page.locator("#data-upload input[type=file]").set_input_files(str(big))
            expect(page.get_by_text("exceed the maximum allowed size of 1.0 Mb").first).to_be_visible()
            uploads = workdir / "gradio-uploads"
            stored = [path for path in uploads.rglob("big.csv")] if uploads.exists() else []
            assert stored == []
    except Exception:
        save_screenshot(page, "failed-upload-limit")
        raise
    finally:
        context.close()


def select_options(page, label: str, options: list[str]) -> None:
    """Pick options of a Gradio dropdown by their visible text."""
    dropdown = page.get_by_role("combobox", name=label, exact=True)
    for option in options:
        dropdown.click()
        page.get_by_role("option", name=re.compile(re.escape(option))).first.click()
    page.keyboard.press("Escape")


def choose_builtin_data(page) -> None:
    open_tab(page, "Data")
    click_button(page, "Check data")
    page.locator("#data-result").get_by_text("Ready:").wait_for()


def start_training(page, name: str, max_steps: int, method: str = "LoRA") -> str:
    """Fill the Train form for a short run on the chosen data, start it and return the status line."""
    open_tab(page, "Train")
    page.get_by_label(method, exact=True).check()
    more_options = page.get_by_label("Max steps (0: run all epochs)")
    if not more_options.is_visible():
        page.get_by_text("More options").click()
    more_options.fill(str(max_steps))
    page.get_by_label("Batch size").fill("8")
    page.get_by_label("Store as (empty: task-method-rank; LoRA vs full adds -lora and -full)").fill(name)
    click_button(page, "Start training")
    status = page.locator("#train-status")
    expect(status).to_contain_text(f"({name} ·")
    return status.inner_text()


def test_train_compare_and_try(page, app_server):
    choose_builtin_data(page)
    start_training(page, "topics", max_steps=3, method="LoRA vs full finetune")

    status = page.locator("#train-status")
    expect(status).to_contain_text("finished", timeout=300_000)
    assert "topics-lora: accuracy" in status.inner_text()
    comparison = page.locator("#train-comparison")
    comparison.get_by_text("topics-full").wait_for()
    comparison_text = comparison.inner_text()
    assert "topics-lora" in comparison_text
    assert "95% CI" in comparison_text

    open_tab(page, "Compare")
    select_options(page, "Runs to compare", ["topics-lora", "topics-full"])
    click_button(page, "Compare")
    metrics = page.locator("#compare-metrics")
    metrics.get_by_text("topics-full").wait_for(timeout=120_000)
    assert "topics-lora" in metrics.inner_text()
    page.get_by_role("button", name="Download JSON report").wait_for()

    open_tab(page, "Try")
    select_options(page, "Runs", ["topics-lora", "topics-full"])
    page.get_by_label("Input text").fill("Tell me a joke about computers")
    click_button(page, "Run")
    results = page.locator("#try-results")
    results.get_by_text("topics-full").wait_for(timeout=120_000)
    results_text = results.inner_text()
    assert "topics-lora" in results_text
    assert re.search(r"(trivia|coding|psychology|ai|emotion) \d+%", results_text)


def test_delete_needs_typed_name(page, app_server):
    choose_builtin_data(page)
    start_training(page, "to-delete", max_steps=1)
    expect(page.locator("#train-status")).to_contain_text("finished", timeout=300_000)

    open_tab(page, "Adapters")
    table = page.locator("#store-table")
    expect(table).to_contain_text("to-delete")
    select_options(page, "Entry", ["to-delete"])
    expect(page.locator("#entry-metadata")).to_contain_text('"name": "to-delete"')
    page.get_by_text("Delete this entry").click()
    confirmation = page.get_by_label("Type the entry name to confirm")

    confirmation.fill("to-delet")
    click_button(page, "Delete entry")
    expect(page.get_by_text("does not match the entry name").first).to_be_visible()
    expect(table).to_contain_text("to-delete")

    confirmation.fill("to-delete")
    click_button(page, "Delete entry")
    expect(page.get_by_text("Deleted to-delete.")).to_be_visible()
    expect(table).not_to_contain_text("to-delete")


def test_sessions_share_queue_and_job_list(browser, app_server):
    contexts = [browser.new_context(viewport={"width": 1400, "height": 1000}) for _ in range(2)]
    pages = [context.new_page() for context in contexts]
    try:
        for page in pages:
            page.set_default_timeout(PAGE_TIMEOUT_MS)
            page.goto(app_server["url"])
            choose_builtin_data(page)
        start_training(pages[0], "shared-long", max_steps=100_000)
        pages[0].locator("#train-status").get_by_text("running: step").wait_for(timeout=120_000)
        second_status = start_training(pages[1], "shared-short", max_steps=2)
        assert "queued (1st in line)" in second_status
        waiting_row = pages[0].locator("#job-list").get_by_role("row").filter(has_text="shared-short")
        expect(waiting_row).to_contain_text("queued (1st in line)")

        click_button(pages[0], "Cancel training")
        expect(pages[0].locator("#train-status")).to_contain_text("cancelled", timeout=120_000)
        expect(pages[1].locator("#train-status")).to_contain_text("finished", timeout=300_000)
        for page in pages:
            job_list = page.locator("#job-list")
            expect(job_list).to_contain_text("shared-short")
            # The list refreshes on its own timer tick, so it may trail the status line by a tick.
            expect(job_list.get_by_role("row").filter(has_text="shared-long")).to_contain_text("cancelled")
            expect(job_list.get_by_role("row").filter(has_text="shared-short")).to_contain_text("succeeded")
    except Exception:
        for index, page in enumerate(pages):
            save_screenshot(page, f"failed-shared-session-{index}")
        raise
    finally:
        for context in contexts:
            context.close()


def test_restart_keeps_finished_and_marks_killed_job(browser, tiny_bert_dir, tmp_path):
    workdir = tmp_path / "restart"
    workdir.mkdir()
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    try:
        with running_app(tiny_bert_dir, workdir) as (url, process, log_path):
            page.goto(url)
            choose_builtin_data(page)
            start_training(page, "kept", max_steps=2)
            page.locator("#train-status").get_by_text("finished").wait_for(timeout=300_000)
            start_training(page, "killed", max_steps=100_000)
            page.locator("#train-status").get_by_text("running: step").wait_for(timeout=120_000)
            process.kill()
            process.wait(timeout=10)

        with running_app(tiny_bert_dir, workdir) as (url, process, log_path):
            page.goto(url)
            open_tab(page, "Train")
            job_list = page.locator("#job-list")
            expect(job_list).to_contain_text("Interrupted by a restart")
            kept_row = job_list.get_by_role("row").filter(has_text="kept · chatterbot-topics")
            killed_row = job_list.get_by_role("row").filter(has_text="killed · chatterbot-topics")
            expect(kept_row).to_contain_text("succeeded")
            expect(killed_row).to_contain_text("failed")
            expect(killed_row).to_contain_text("Interrupted by a restart")

            open_tab(page, "Adapters")
            page.get_by_text("Stored runs").wait_for()
            stored = page.locator("body").inner_text()
            assert "kept" in stored
            assert "killed" not in stored
        leftovers = sorted(path.name for path in (workdir / "adapters").iterdir())
        assert leftovers == ["kept"]
    except Exception:
        save_screenshot(page, "failed-restart")
        raise
    finally:
        context.close()


def test_hub_push_list_and_pull(browser, tiny_bert_dir, tmp_path):
    from hub_server import HubServer

    good_token = "hf_" + "GoodToken1" * 4
    wrong_token = "hf_" + "WrongToken" * 4
    workdir = tmp_path / "hub"
    workdir.mkdir()
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    try:
        with HubServer(tokens={good_token: ("alice", "write")}) as hub, running_app(
            tiny_bert_dir, workdir, extra_env={"HF_ENDPOINT": hub.url, "HF_TOKEN": ""}
        ) as (url, process, log_path):
            page.goto(url)
            choose_builtin_data(page)
            start_training(page, "hubbed", max_steps=2)
            page.locator("#train-status").get_by_text("finished").wait_for(timeout=300_000)

            open_tab(page, "Hub")
            status = page.locator("#hub-status")
            page.get_by_label("Hugging Face token").fill(wrong_token)
            select_options(page, "Local adapter", ["hubbed"])
            page.get_by_label("Repo id", exact=True).fill("alice/hubbed")
            page.get_by_label("Base model Hub id (only for a base loaded from a local folder)").fill(
                "sentence-transformers/all-MiniLM-L6-v2"
            )
            click_button(page, "Push to Hub")
            expect(status).to_contain_text("failed", timeout=120_000)
            assert "token" in status.inner_text().lower()

            page.get_by_label("Hugging Face token").fill(good_token)
            click_button(page, "Push to Hub")
            expect(status).to_contain_text("pushed hubbed", timeout=120_000)
            assert re.search(r"commit [0-9a-f]{12}", status.inner_text())

            page.get_by_label("User or organisation").fill("alice")
            click_button(page, "List adapters")
            expect(page.locator("#hub-listing")).to_contain_text("alice/hubbed")

            page.get_by_label("Repo id to pull").fill("alice/hubbed")
            page.get_by_label("Store as (empty: owner--name)").fill("hubbed-copy")
            click_button(page, "Pull from Hub")
            expect(status).to_contain_text("as hubbed-copy", timeout=120_000)

            open_tab(page, "Adapters")
            expect(page.locator("#store-table")).to_contain_text("hubbed-copy")

        stored = b"".join(path.read_bytes() for path in (workdir / "runs").glob("jobs.sqlite3*"))
        assert good_token.encode() not in stored
        assert wrong_token.encode() not in stored
        log_text = log_path.read_text()
        assert good_token not in log_text
        assert wrong_token not in log_text
    except Exception:
        save_screenshot(page, "failed-hub")
        raise
    finally:
        context.close()


def test_generation_task_trains_and_streams(browser, tiny_llama_dir, tmp_path):
    workdir = tmp_path / "generation"
    workdir.mkdir()
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    try:
        with running_app(tiny_llama_dir, workdir) as (url, process, log_path):
            page.goto(url)
            open_tab(page, "Data")
            select_options(page, "Built-in task", ["chatterbot-replies"])
            click_button(page, "Check data")
            expect(page.locator("#data-result")).to_contain_text("(generation)")

            start_training(page, "replies", max_steps=2)
            expect(page.locator("#train-status")).to_contain_text("finished", timeout=300_000)
            assert "replies: rouge_l" in page.locator("#train-status").inner_text()

            open_tab(page, "Try")
            select_options(page, "Runs", ["replies"])
            page.get_by_role("button", name="Generation settings").click()
            page.get_by_label("number input for Max new tokens").fill("5")
            page.get_by_label("number input for Max new tokens").press("Enter")
            page.get_by_label("Input text").fill("Hello, how are you?")
            click_button(page, "Run")
            results = page.locator("#try-results")
            base_row = results.get_by_role("row").filter(has_text="base")
            adapter_row = results.get_by_role("row").filter(has_text="replies")
            expect(adapter_row).to_contain_text("lora", timeout=120_000)
            # Latency appears once a reply is complete; streamed rows show "…" until then.
            expect(adapter_row).to_contain_text(re.compile(r"lora\s.*\d+\.\d", re.S), timeout=120_000)
            expect(base_row).to_contain_text(re.compile(r"base\s.*\d+\.\d", re.S), timeout=120_000)
            assert "waiting" not in results.inner_text()
    except Exception:
        save_screenshot(page, "failed-generation")
        raise
    finally:
        context.close()


def test_login_required_with_auth(browser, tiny_bert_dir, tmp_path):
    workdir = tmp_path / "auth"
    workdir.mkdir()
    auth_file = workdir / "logins.txt"
    auth_file.write_text("alice:correct-horse\n", encoding="utf-8")
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    try:
        with running_app(tiny_bert_dir, workdir, extra_args=["--auth-file", str(auth_file)]) as (url, process, log_path):
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(url + "config", timeout=10)
            assert refused.value.code == 401

            page.goto(url)
            page.get_by_label("username").fill("alice")
            page.get_by_label("password").fill("wrong")
            page.get_by_role("button", name="Login", exact=True).click()
            expect(page.get_by_text("Incorrect Credentials")).to_be_visible()
            expect(page.get_by_role("tab", name="Learn")).to_have_count(0)

            page.get_by_label("username").fill("alice")
            page.get_by_label("password").fill("correct-horse")
            page.get_by_role("button", name="Login", exact=True).click()
            expect(page.get_by_role("tab", name="Learn")).to_be_visible(timeout=PAGE_TIMEOUT_MS)
        assert "correct-horse" not in log_path.read_text()
    except Exception:
        save_screenshot(page, "failed-auth")
        raise
    finally:
        context.close()
