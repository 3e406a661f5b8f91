"""App pieces that need no browser: server options, upload checks, error translation, report tables."""

import html
import subprocess
import sys

import gradio as gr
import pytest

from lora_playground.errors import ConfigError, DataError, LimitError
from lora_playground.evaluation.report import RunResult, compare_runs
from lora_playground.ui.data import checked_hub_id
from lora_playground.ui.errors import show_errors, user_message
from lora_playground.ui.report_view import chart_frames, costs_table, disagreements_table, metrics_table
from lora_playground.ui.server import DEFAULT_BASES, parse_options, read_auth_file
from lora_playground.ui.train import LORA, build_config, progress_frames
from lora_playground.ui.uploads import checked_upload


def test_options_default_to_loopback():
    options = parse_options([], environ={})
    assert options.host == "127.0.0.1"
    assert options.port == 7860
    assert options.share is False
    assert options.auth == []
    assert options.bases == list(DEFAULT_BASES)
    assert options.job_workers == 1
    assert options.is_exposed is False


def test_options_flags_win_over_environment():
    environ = {"LORA_PLAYGROUND_HOST": "0.0.0.0", "LORA_PLAYGROUND_PORT": "9000", "GRADIO_SERVER_PORT": "9100"}
    assert parse_options([], environ=environ).port == 9000
    options = parse_options(["--host", "127.0.0.2", "--port", "8123"], environ=environ)
    assert options.host == "127.0.0.2"
    assert options.port == 8123
    assert options.is_exposed is False


def test_options_read_spaces_server_name():
    options = parse_options([], environ={"GRADIO_SERVER_NAME": "0.0.0.0"})
    assert options.host == "0.0.0.0"
    assert options.is_exposed is True


def test_options_parse_bases_and_limits():
    environ = {"LORA_PLAYGROUND_BASES": " minilm-l6 , /models/x ", "LORA_PLAYGROUND_JOB_WORKERS": "2"}
    options = parse_options(["--concurrency-limit", "4"], environ=environ)
    assert options.bases == ["minilm-l6", "/models/x"]
    assert options.job_workers == 2
    assert options.concurrency_limit == 4
    assert parse_options(["--base", "a", "--base", "b"], environ=environ).bases == ["a", "b"]


@pytest.mark.parametrize("argv", [["--port", "http"], ["--port", "0"], ["--port", "70000"], ["--job-workers", "0"]])
def test_options_reject_bad_numbers(argv):
    with pytest.raises(ConfigError):
        parse_options(argv, environ={})


def test_options_read_auth_from_env_and_file(tmp_path):
    auth_file = tmp_path / "logins.txt"
    auth_file.write_text("# team\nalice:pa:ss\n\nbob:secret\n", encoding="utf-8")
    options = parse_options(["--auth-file", str(auth_file)], environ={"LORA_PLAYGROUND_AUTH": "carol:pw"})
    assert options.auth == [("carol", "pw"), ("alice", "pa:ss"), ("bob", "secret")]


@pytest.mark.parametrize("content", ["", "# only a comment\n", "nopassword\n", ":pw\n"])
def test_auth_file_rejects_bad_lines(tmp_path, content):
    auth_file = tmp_path / "logins.txt"
    auth_file.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError):
        read_auth_file(auth_file)


def test_auth_file_error_hides_password(tmp_path):
    auth_file = tmp_path / "logins.txt"
    auth_file.write_text("ok:fine\nbroken-line-with-secret\n", encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        read_auth_file(auth_file)
    assert "line 2" in str(raised.value)
    assert "broken-line-with-secret" not in str(raised.value)


@pytest.fixture
def upload_folder(tmp_path, monkeypatch):
    folder = tmp_path / "gradio"
    folder.mkdir()
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(folder))
    return folder


def test_upload_inside_folder_is_accepted(upload_folder):
    upload = upload_folder / "abc123" / "data.csv"
    upload.parent.mkdir()
    upload.write_text("text,label\nhi,a\n", encoding="utf-8")
    assert checked_upload(upload) == upload.resolve()


def test_upload_outside_folder_is_rejected(upload_folder, tmp_path):
    outside = tmp_path / "secrets.csv"
    outside.write_text("x\n", encoding="utf-8")
    with pytest.raises(DataError, match="not an upload"):
        checked_upload(outside)
    with pytest.raises(DataError, match="not an upload"):
        checked_upload(upload_folder / ".." / "secrets.csv")


def test_upload_symlink_out_of_folder_is_rejected(upload_folder, tmp_path):
    outside = tmp_path / "secrets.csv"
    outside.write_text("x\n", encoding="utf-8")
    link = upload_folder / "link.csv"
    link.symlink_to(outside)
    with pytest.raises(DataError, match="not an upload"):
        checked_upload(link)


def test_upload_over_limit_is_rejected(upload_folder, monkeypatch):
    monkeypatch.setenv("LORA_PLAYGROUND_MAX_UPLOAD_MB", "1")
    upload = upload_folder / "big.csv"
    upload.write_bytes(b"a" * (1024 * 1024 + 1))
    with pytest.raises(LimitError, match="LORA_PLAYGROUND_MAX_UPLOAD_MB"):
        checked_upload(upload)


@pytest.mark.parametrize("text", ["", "imdb", "../etc/passwd", "a/b/c", "owner/..", "/etc/passwd"])
def test_hub_dataset_id_rejects_non_ids(text):
    with pytest.raises(DataError):
        checked_hub_id(text)


def test_hub_dataset_id_rejects_existing_path(tmp_path, monkeypatch):
    (tmp_path / "owner").mkdir()
    (tmp_path / "owner" / "name").write_text("x", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert checked_hub_id("someone/else") == "someone/else"
    with pytest.raises(DataError, match="also a path"):
        checked_hub_id("owner/name")


def test_show_errors_escapes_playground_messages():
    @show_errors
    def handler():
        raise DataError("Column '<img src=x>' is missing.", "Pick another.")

    with pytest.raises(gr.Error) as raised:
        handler()
    assert raised.value.message == html.escape("Column '<img src=x>' is missing. Pick another.")


def test_show_errors_hides_unexpected_details(caplog):
    @show_errors
    def handler():
        raise KeyError("internal detail")

    with pytest.raises(gr.Error) as raised:
        handler()
    assert raised.value.message == "Unexpected error (KeyError). The app log has the details."
    assert "internal detail" in caplog.text


def test_show_errors_wraps_generators():
    @show_errors
    def stream():
        yield 1
        raise ConfigError("rank=0 must be at least 1.")

    results = []
    with pytest.raises(gr.Error, match="rank=0"):
        for value in stream():
            results.append(value)
    assert results == [1]


def test_user_message_redacts_tokens():
    token = "hf_" + "x" * 34
    assert token not in user_message(DataError(f"bad token {token}"))


def test_build_config_collects_errors():
    form = [LORA, 0, 16, 0.05, "", False, False, 0, 3, 0, 0, 128, 0, 0, 42]
    with pytest.raises(ConfigError) as raised:
        build_config(*form)
    assert "rank=0" in str(raised.value)
    assert "batch_size=0" in str(raised.value)


def test_build_config_parses_targets_and_defaults():
    config = build_config(LORA, 4, 8, 0.1, "q_proj, v_proj", True, False, 0, 1, 0, 8, 64, 5, 0, 7)
    assert config.target_modules == ["q_proj", "v_proj"]
    assert config.use_dora is True
    assert config.learning_rate is None
    assert config.max_steps == 5
    assert config.eval_every_steps is None
    assert config.seed == 7


def test_progress_frames_split_loss_and_metrics():
    events = [
        {"event": "step", "step": 1, "loss": None},
        {"event": "log", "step": 2, "loss": 0.9},
        {"event": "evaluate", "step": 2, "eval": {"loss": 0.8, "accuracy": 0.5, "runtime": 1.2}},
    ]
    losses, metrics = progress_frames(events)
    assert losses.to_dict("records") == [
        {"step": 2, "value": 0.9, "series": "train loss"},
        {"step": 2, "value": 0.8, "series": "validation loss"},
    ]
    assert metrics.to_dict("records") == [{"step": 2, "value": 0.5, "series": "validation accuracy"}]


@pytest.fixture
def classification_report():
    examples = [{"text": f"t{index}", "label": index % 2} for index in range(6)]
    lora = RunResult("sms-lora", "lora", {"accuracy": 5 / 6, "macro_f1": 0.8}, [0, 1, 0, 1, 0, 0],
                     cost={"trainable_params": 1000, "stored_bytes": 4 * 2**20, "train_wall_time_s": 3.0})
    full = RunResult("sms-full", "full", {"accuracy": 4 / 6, "macro_f1": 0.6}, [0, 1, 1, 1, 1, 0],
                     cost={"trainable_params": 10**6, "stored_bytes": 400 * 2**20, "train_wall_time_s": 9.0})
    return compare_runs([lora, full], examples, ["ham", "spam"], "classification", n_resamples=200).to_dict()


def test_metrics_table_marks_best_and_interval(classification_report):
    table = metrics_table(classification_report)
    assert list(table["run"]) == ["sms-lora", "sms-full"]
    assert table.loc[0, "Accuracy"] == "83.3% ★"
    assert table.loc[1, "Accuracy"] == "66.7%"
    interval = table.loc[0, "accuracy (95% CI)"]
    assert interval.startswith("83.3% [")


def test_costs_table_shows_ratio_to_full(classification_report):
    table = costs_table(classification_report)
    assert table.loc[0, "Trainable parameters"] == "1,000 (0.001× full) ★"
    assert table.loc[1, "Stored size"] == "400.0 MiB"


def test_chart_frames_convert_bytes(classification_report):
    frames = chart_frames(classification_report)
    assert list(frames)[0] == "Accuracy"
    assert frames["Stored size (MiB)"].to_dict("records") == [{"run": "sms-lora", "value": 4.0}, {"run": "sms-full", "value": 400.0}]
    assert frames["Peak training memory (MiB)"].empty


def test_disagreements_table_lists_differing_examples(classification_report):
    table = disagreements_table(classification_report)
    assert list(table["#"]) == [2, 4]
    assert table.loc[0, "sms-lora"] == "ham"
    assert table.loc[0, "sms-full"] == "spam"
    assert table.loc[0, "reference"] == "ham"


def test_app_import_skips_peft():
    """Importing the UI must not import PEFT, because PEFT adds seconds to the app's start-up."""
    code = "import sys, lora_playground.ui.app; print(sorted(m for m in sys.modules if m.split('.')[0] == 'peft'))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip() == "[]"
