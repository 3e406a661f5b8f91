"""Data loading: formats, column mapping, labels, splits, fingerprints, limits and every bad-input message."""

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import datasets
import pandas as pd
import pytest

from lora_playground.data import load_task_data, preview
from lora_playground.errors import ConfigError, DataError, LimitError

SHARED = Path(__file__).parents[2] / "shared" / "datasets"


def write(folder: Path, name: str, content: str | bytes, encoding: str = "utf-8") -> Path:
    path = folder / name
    data = content if isinstance(content, bytes) else content.encode(encoding)
    path.write_bytes(data)
    return path


def csv_rows(count: int, labels=("pos", "neg")) -> str:
    lines = ["text,label"]
    lines += [f"example number {i},{labels[i % len(labels)]}" for i in range(count)]
    return "\n".join(lines) + "\n"


def split_sizes(task_data) -> dict[str, int]:
    return {split: data.num_rows for split, data in task_data.splits.items()}


# --- files: missing, empty, encoding, size ---------------------------------------------------------------


def test_missing_file_names_path(tmp_path):
    missing = tmp_path / "nothere.csv"
    with pytest.raises(DataError) as caught:
        load_task_data(missing)
    assert "nothere.csv" in str(caught.value)
    assert "not found" in str(caught.value)


def test_missing_file_given_as_string(tmp_path):
    with pytest.raises(DataError, match="nothere.jsonl"):
        load_task_data(str(tmp_path / "nothere.jsonl"))


def test_empty_file_rejected(tmp_path):
    path = write(tmp_path, "empty.csv", "")
    with pytest.raises(DataError) as caught:
        load_task_data(path)
    assert "empty.csv" in str(caught.value)
    assert "empty" in str(caught.value)


def test_whitespace_only_file_rejected(tmp_path):
    path = write(tmp_path, "blank.jsonl", "\n  \n\n")
    with pytest.raises(DataError, match="only whitespace"):
        load_task_data(path)


def test_header_only_csv_rejected(tmp_path):
    path = write(tmp_path, "header.csv", "text,label\n")
    with pytest.raises(DataError, match="no data rows"):
        load_task_data(path)


def test_unsupported_suffix_lists_formats(tmp_path):
    path = write(tmp_path, "data.xlsx", "whatever")
    with pytest.raises(DataError) as caught:
        load_task_data(path)
    assert "'.xlsx'" in str(caught.value)
    assert ".csv" in str(caught.value)


def test_non_utf8_names_file_offset_and_fix(tmp_path):
    content = csv_rows(20) + "caf\u00e9 \u2026 nice,pos\n"
    path = write(tmp_path, "reviews.csv", content, encoding="cp1252")
    offset = content.encode("utf-8").index("\u00e9".encode("utf-8"))
    with pytest.raises(DataError) as caught:
        load_task_data(path)
    message = str(caught.value)
    assert "reviews.csv" in message
    assert f"byte offset {offset}" in message
    assert "0xe9" in message
    assert "--encoding cp1252" in message


def test_cp1252_file_loads_with_encoding(tmp_path):
    content = csv_rows(20) + "caf\u00e9 \u2026 nice,pos\n"
    path = write(tmp_path, "reviews.csv", content, encoding="cp1252")
    task_data = load_task_data(path, encoding="cp1252")
    texts = [text for split in task_data.splits.values() for text in split["text"]]
    assert "caf\u00e9 \u2026 nice" in texts
    assert sum(split_sizes(task_data).values()) == 21


def test_unknown_encoding_name(tmp_path):
    path = write(tmp_path, "a.csv", csv_rows(10))
    with pytest.raises(DataError, match="'klingon'"):
        load_task_data(path, encoding="klingon")


def test_utf8_bom_is_not_part_of_header(tmp_path):
    path = write(tmp_path, "bom.csv", b"\xef\xbb\xbf" + csv_rows(10).encode())
    task_data = load_task_data(path)
    assert task_data.task.text_columns == ["text"]
    assert sum(split_sizes(task_data).values()) == 10


def test_upload_size_limit_names_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("LORA_PLAYGROUND_MAX_UPLOAD_MB", "1")
    path = write(tmp_path, "big.csv", "text,label\n" + ("x" * 100 + ",a\n") * 11_000)
    with pytest.raises(LimitError) as caught:
        load_task_data(path)
    assert "LORA_PLAYGROUND_MAX_UPLOAD_MB" in str(caught.value)
    assert "1 MiB" in str(caught.value)


def test_row_limit_names_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("LORA_PLAYGROUND_MAX_ROWS", "5")
    path = write(tmp_path, "rows.jsonl", "".join(json.dumps({"text": f"t{i}", "label": i % 2}) + "\n" for i in range(6)))
    with pytest.raises(LimitError) as caught:
        load_task_data(path)
    assert "6 rows" in str(caught.value)
    assert "limit of 5 rows" in str(caught.value)
    assert "LORA_PLAYGROUND_MAX_ROWS" in str(caught.value)


def test_row_limit_allows_exact_count(tmp_path, monkeypatch):
    monkeypatch.setenv("LORA_PLAYGROUND_MAX_ROWS", "6")
    path = write(tmp_path, "rows.jsonl", "".join(json.dumps({"text": f"t{i}", "label": i % 2}) + "\n" for i in range(6)))
    assert sum(split_sizes(load_task_data(path)).values()) == 6


# --- malformed files -------------------------------------------------------------------------------------


def test_csv_row_with_extra_field_names_line(tmp_path):
    path = write(tmp_path, "wide.csv", "text,label\nfine,a\nalso fine,b\nbroken,a,extra\n")
    with pytest.raises(DataError) as caught:
        load_task_data(path)
    assert "Line 4 of wide.csv has 3 fields" in str(caught.value)


def test_csv_row_with_missing_field_names_line(tmp_path):
    path = write(tmp_path, "short.csv", "text,label\nfine,a\nno label here\nok,b\n")
    with pytest.raises(DataError, match="Line 3 of short.csv has 1 fields"):
        load_task_data(path)


def test_csv_unterminated_quote_is_data_error(tmp_path):
    path = write(tmp_path, "quote.csv", 'text,label\nfine,a\n"never closed,b\nok,a\n')
    with pytest.raises(DataError, match="quote.csv"):
        load_task_data(path)


def test_csv_duplicate_header_rejected(tmp_path):
    path = write(tmp_path, "dup.csv", "text,text,label\na,b,c\n")
    with pytest.raises(DataError, match=r"repeats the column name\(s\) \['text'\]"):
        load_task_data(path)


def test_json_syntax_error_names_line_and_column(tmp_path):
    path = write(tmp_path, "bad.json", '[\n  {"text": "a", "label": 1},\n  {"text": "b", "label": }\n]\n')
    with pytest.raises(DataError) as caught:
        load_task_data(path)
    assert "bad.json is not valid JSON" in str(caught.value)
    assert "line 3, column 26" in str(caught.value)


def test_jsonl_syntax_error_names_line(tmp_path):
    path = write(tmp_path, "bad.jsonl", '{"text": "a", "label": 1}\n{"text": "b", "label": 0}\n{"text": "c",\n')
    with pytest.raises(DataError, match="Line 3 of bad.jsonl is not valid JSON"):
        load_task_data(path)


def test_jsonl_line_not_object(tmp_path):
    path = write(tmp_path, "list.jsonl", '{"text": "a", "label": 1}\n[1, 2]\n')
    with pytest.raises(DataError, match="Line 2 of list.jsonl is a JSON list, not an object"):
        load_task_data(path)


def test_json_list_of_numbers_rejected(tmp_path):
    path = write(tmp_path, "numbers.json", "[1, 2, 3]")
    with pytest.raises(DataError, match="Record 1 of numbers.json is a JSON number"):
        load_task_data(path)


def test_json_lines_in_json_file_hint(tmp_path):
    path = write(tmp_path, "lines.json", '{"text": "a", "label": 1}\n{"text": "b", "label": 0}\n')
    with pytest.raises(DataError, match="looks like JSON Lines"):
        load_task_data(path)


def test_json_records_under_one_key(tmp_path):
    records = [{"text": f"t{i}", "label": ["a", "b"][i % 2]} for i in range(20)]
    path = write(tmp_path, "wrapped.json", json.dumps({"version": 2, "data": records}))
    task_data = load_task_data(path)
    assert sum(split_sizes(task_data).values()) == 20
    assert task_data.task.label_names == ["a", "b"]


def test_corrupt_parquet_is_data_error(tmp_path):
    path = write(tmp_path, "broken.parquet", b"PAR1 this is not really parquet")
    with pytest.raises(DataError, match="broken.parquet"):
        load_task_data(path)


# --- columns ---------------------------------------------------------------------------------------------


def test_unknown_text_column_lists_columns(tmp_path):
    path = write(tmp_path, "a.csv", "body,label\nhello,a\nbye,b\n")
    with pytest.raises(DataError) as caught:
        load_task_data(path, text_columns=["text"])
    assert "Column 'text' was not found in a.csv" in str(caught.value)
    assert "body, label" in str(caught.value)


def test_unknown_label_column_lists_columns(tmp_path):
    path = write(tmp_path, "a.csv", csv_rows(10))
    with pytest.raises(DataError) as caught:
        load_task_data(path, label_column="sentiment")
    assert "'sentiment'" in str(caught.value)
    assert "text, label" in str(caught.value)


def test_no_default_text_column_lists_columns(tmp_path):
    path = write(tmp_path, "a.csv", "body,label\nhello,a\nbye,b\n")
    with pytest.raises(DataError) as caught:
        load_task_data(path)
    assert "No text column found in a.csv" in str(caught.value)
    assert "body, label" in str(caught.value)


def test_column_mapping_by_name(tmp_path):
    lines = ["id,review,stars"] + [f"{i},review text {i},{1 + i % 3}" for i in range(30)]
    path = write(tmp_path, "a.csv", "\n".join(lines))
    task_data = load_task_data(path, text_columns="review", label_column="stars")
    assert task_data.task.text_columns == ["review"]
    assert task_data.task.label_column == "stars"
    assert task_data.task.label_names == ["1", "2", "3"]
    assert sorted(task_data.splits["train"].column_names) == ["label", "text"]


def test_default_columns_any_case(tmp_path):
    task_data = load_task_data(write(tmp_path, "a.csv", "Label,Text\n" + "".join(f"{i % 2},t{i}\n" for i in range(10))))
    assert task_data.task.text_columns == ["Text"]
    assert task_data.task.label_column == "Label"


def test_sentence_pair_columns(tmp_path):
    records = [{"sentence1": f"a{i}", "sentence2": f"b{i}", "label": i % 2} for i in range(20)]
    path = write(tmp_path, "pairs.jsonl", "".join(json.dumps(r) + "\n" for r in records))
    task_data = load_task_data(path)
    assert task_data.task.text_columns == ["sentence1", "sentence2"]
    row = task_data.splits["train"][0]
    assert row["text"].startswith("a")
    assert row["text_pair"] == "b" + row["text"][1:]


def test_label_column_also_text_column(tmp_path):
    path = write(tmp_path, "a.csv", csv_rows(10))
    with pytest.raises(ConfigError, match="both a text column and the label column"):
        load_task_data(path, text_columns=["text"], label_column="text")


def test_non_text_value_names_row(tmp_path):
    records = [{"text": f"t{i}", "label": i % 2} for i in range(5)] + [{"text": {"nested": 1}, "label": 0}]
    path = write(tmp_path, "nested.jsonl", "".join(json.dumps(r) + "\n" for r in records))
    with pytest.raises(DataError, match="Row 6 of nested.jsonl: column 'text' contains a dict"):
        load_task_data(path)


# --- labels ----------------------------------------------------------------------------------------------


def test_one_class_only(tmp_path):
    path = write(tmp_path, "a.csv", csv_rows(10, labels=("spam",)))
    with pytest.raises(DataError) as caught:
        load_task_data(path)
    assert "only one class" in str(caught.value)
    assert "'spam'" in str(caught.value)


def test_test_labels_unseen_in_training(tmp_path):
    write(tmp_path, "train.csv", csv_rows(10))
    write(tmp_path, "test.csv", "text,label\nx,pos\ny,neutral\nz,angry\n")
    with pytest.raises(DataError) as caught:
        load_task_data(tmp_path)
    message = str(caught.value)
    assert "test data (test.csv)" in message
    assert "'angry', 'neutral'" in message


def test_int_label_out_of_range_of_names(tmp_path):
    path = write(tmp_path, "a.csv", "text,label\n" + "".join(f"t{i},{i % 3}\n" for i in range(12)))
    with pytest.raises(DataError) as caught:
        load_task_data(path, label_names=["neg", "pos"])
    assert "class index(es) '2'" in str(caught.value)
    assert "outside 0..1" in str(caught.value)


def test_int_labels_index_given_names(tmp_path):
    path = write(tmp_path, "a.csv", "text,label\n" + "".join(f"t{i},{i % 2}\n" for i in range(12)))
    task_data = load_task_data(path, label_names=["ham", "spam"])
    assert task_data.task.label_names == ["ham", "spam"]
    rows = [row for split in task_data.splits.values() for row in split]
    assert all(row["label"] == int(row["text"][1:]) % 2 for row in rows)


def test_string_labels_follow_given_name_order(tmp_path):
    path = write(tmp_path, "a.csv", csv_rows(12))
    task_data = load_task_data(path, label_names=["pos", "neg"])
    rows = [row for split in task_data.splits.values() for row in split]
    assert all(row["label"] == int(row["text"].split()[-1]) % 2 for row in rows)


def test_label_not_in_given_names(tmp_path):
    path = write(tmp_path, "a.csv", csv_rows(12, labels=("pos", "neg", "meh")))
    with pytest.raises(DataError, match=r"value\(s\) 'meh' that are not among the given label names"):
        load_task_data(path, label_names=["pos", "neg"])


def test_int_labels_sorted_numerically(tmp_path):
    values = [-1, 10, 2, 1]
    records = [{"text": f"t{i}", "label": values[i % 4]} for i in range(40)]
    path = write(tmp_path, "a.jsonl", "".join(json.dumps(r) + "\n" for r in records))
    task_data = load_task_data(path)
    assert task_data.task.label_names == ["-1", "1", "2", "10"]


def test_mixed_label_types_become_strings(tmp_path):
    values = [1, "one", 2.0, True]
    records = [{"text": f"t{i}", "label": values[i % 4]} for i in range(40)]
    path = write(tmp_path, "mixed.jsonl", "".join(json.dumps(r) + "\n" for r in records))
    task_data = load_task_data(path)
    assert task_data.task.label_names == ["1", "2", "one", "true"]


def test_missing_label_names_rows(tmp_path):
    path = write(tmp_path, "a.csv", "text,label\na,x\nb,\nc,y\nd,\n")
    with pytest.raises(DataError) as caught:
        load_task_data(path)
    assert "2 row(s) of a.csv have text but no label" in str(caught.value)
    assert "row(s) 2, 4 (data rows counted from 1)" in str(caught.value)


# --- empty text ------------------------------------------------------------------------------------------


def test_empty_text_rows_dropped_and_counted(tmp_path):
    write(tmp_path, "train.csv", csv_rows(20) + ",pos\n   ,neg\n")
    write(tmp_path, "test.csv", 'text,label\nhello,pos\n"",neg\nbye,neg\n')
    task_data = load_task_data(tmp_path)
    assert "Dropped 2 rows with empty text from the train data (train.csv)." in task_data.notes
    assert "Dropped 1 row with empty text from the test data (test.csv)." in task_data.notes
    assert task_data.splits["test"].num_rows == 2
    assert task_data.splits["train"].num_rows + task_data.splits["validation"].num_rows == 20


def test_all_text_empty_is_error(tmp_path):
    path = write(tmp_path, "a.csv", "text,label\n,a\n ,b\n")
    with pytest.raises(DataError, match="No rows with text remain in the train data"):
        load_task_data(path)


# --- splits and fingerprint ------------------------------------------------------------------------------


def test_single_file_stratified_split(tmp_path):
    labels = ["a"] * 60 + ["b"] * 30 + ["c"] * 10
    path = write(tmp_path, "a.csv", "text,label\n" + "".join(f"row {i},{label}\n" for i, label in enumerate(labels)))
    task_data = load_task_data(path, seed=7)
    assert split_sizes(task_data) == {"train": 80, "validation": 10, "test": 10}
    assert Counter(task_data.splits["test"]["label"]) == {0: 6, 1: 3, 2: 1}
    assert Counter(task_data.splits["validation"]["label"]) == {0: 6, 1: 3, 2: 1}
    texts = [set(split["text"]) for split in task_data.splits.values()]
    assert set().union(*texts) == {f"row {i}" for i in range(100)}
    assert sum(len(t) for t in texts) == 100


def test_split_depends_on_seed_only(tmp_path):
    path = write(tmp_path, "a.csv", csv_rows(100))
    first = load_task_data(path, seed=1)
    again = load_task_data(path, seed=1)
    other = load_task_data(path, seed=2)
    assert first.splits["test"]["text"] == again.splits["test"]["text"]
    assert first.fingerprint == again.fingerprint
    assert first.splits["test"]["text"] != other.splits["test"]["text"]
    assert first.fingerprint != other.fingerprint


def test_fractions_are_honoured(tmp_path):
    path = write(tmp_path, "a.csv", csv_rows(200))
    task_data = load_task_data(path, validation_fraction=0.2, test_fraction=0.25)
    assert split_sizes(task_data) == {"train": 110, "validation": 40, "test": 50}


def test_invalid_fraction_is_config_error(tmp_path):
    path = write(tmp_path, "a.csv", csv_rows(20))
    with pytest.raises(ConfigError, match="test_fraction=1.5"):
        load_task_data(path, test_fraction=1.5)
    with pytest.raises(ConfigError, match="leave no training rows"):
        load_task_data(path, validation_fraction=0.5, test_fraction=0.5)


def test_too_few_rows_to_split(tmp_path):
    path = write(tmp_path, "a.csv", "text,label\na,x\nb,y\n")
    with pytest.raises(DataError, match="too few rows"):
        load_task_data(path)


def test_train_and_test_carve_validation(tmp_path):
    write(tmp_path, "train.csv", csv_rows(50))
    write(tmp_path, "test.csv", "text,label\nt1,pos\nt2,neg\nt3,neg\n")
    task_data = load_task_data(tmp_path)
    assert split_sizes(task_data) == {"train": 45, "validation": 5, "test": 3}
    assert task_data.splits["test"]["text"] == ["t1", "t2", "t3"]
    assert any("Carved the validation split (5 rows)" in note for note in task_data.notes)


def test_folder_aliases_and_formats(tmp_path):
    write(tmp_path, "train.jsonl", "".join(json.dumps({"text": f"tr{i}", "label": i % 2}) + "\n" for i in range(20)))
    write(tmp_path, "dev.jsonl", "".join(json.dumps({"text": f"dv{i}", "label": i % 2}) + "\n" for i in range(4)))
    pd.DataFrame({"text": ["te0", "te1"], "label": [0, 1]}).to_parquet(tmp_path / "test.parquet")
    task_data = load_task_data(tmp_path)
    assert split_sizes(task_data) == {"train": 20, "validation": 4, "test": 2}
    assert task_data.splits["validation"]["text"] == [f"dv{i}" for i in range(4)]


def test_folder_split_names_mapping(tmp_path):
    write(tmp_path, "mine.csv", csv_rows(30))
    write(tmp_path, "holdout.csv", "text,label\nq,pos\nr,neg\n")
    task_data = load_task_data(tmp_path, split_names={"train": "mine.csv", "test": "holdout"})
    assert task_data.splits["test"]["text"] == ["q", "r"]


def test_folder_without_split_files_lists_files(tmp_path):
    write(tmp_path, "one.csv", csv_rows(10))
    write(tmp_path, "two.csv", csv_rows(10))
    with pytest.raises(DataError) as caught:
        load_task_data(tmp_path)
    assert "one.csv, two.csv" in str(caught.value)
    assert "train.csv" in str(caught.value)


def test_folder_without_train_file(tmp_path):
    write(tmp_path, "test.csv", csv_rows(10))
    write(tmp_path, "validation.csv", csv_rows(10))
    with pytest.raises(DataError, match="has no train file"):
        load_task_data(tmp_path)


def test_fingerprint_same_across_formats(tmp_path):
    records = [{"text": f"sentence {i}", "label": ["x", "y"][i % 2]} for i in range(30)]
    csv_path = write(tmp_path, "a.csv", "text,label\n" + "".join(f"{r['text']},{r['label']}\n" for r in records))
    jsonl_path = write(tmp_path, "a.jsonl", "".join(json.dumps(r) + "\n" for r in records))
    assert load_task_data(csv_path).fingerprint == load_task_data(jsonl_path).fingerprint


def test_fingerprint_changes_with_one_label(tmp_path):
    base = write(tmp_path, "a.csv", csv_rows(30))
    changed = write(tmp_path, "b.csv", csv_rows(30).replace("example number 5,neg", "example number 5,pos"))
    first, second = load_task_data(base), load_task_data(changed)
    assert len(first.fingerprint) == 64
    assert first.fingerprint != second.fingerprint


def test_ordered_split_follows_file_order(tmp_path):
    records = [{"instruction": f"do {i}", "input": "", "output": f"done {i}"} for i in range(100)]
    path = write(tmp_path, "a.json", json.dumps(records))
    task_data = load_task_data(path, task_type="generation", ordered_split=True, validation_fraction=0.05)
    assert split_sizes(task_data) == {"train": 85, "validation": 5, "test": 10}
    assert task_data.splits["test"][0]["messages"][0]["content"] == "do 85"
    assert task_data.splits["validation"][0]["messages"][0]["content"] == "do 95"


# --- delimited options -----------------------------------------------------------------------------------


def test_headerless_tsv_keeps_quotes(tmp_path):
    lines = [f"{['ham', 'spam'][i % 2]}\tmessage {i}" for i in range(20)] + ['ham\t"quoted start', 'spam\tend"']
    path = write(tmp_path, "sms.tsv", "\n".join(lines) + "\n")
    task_data = load_task_data(path, has_header=False, column_names=["label", "text"])
    texts = [text for split in task_data.splits.values() for text in split["text"]]
    assert len(texts) == 22
    assert '"quoted start' in texts
    assert 'end"' in texts


def test_headerless_without_names_uses_positions(tmp_path):
    path = write(tmp_path, "a.tsv", "".join(f"{i % 2}\ttext {i}\n" for i in range(20)))
    task_data = load_task_data(path, has_header=False, text_columns=["column_2"], label_column="column_1")
    assert task_data.task.label_names == ["0", "1"]


def test_tsv_minimal_quoting_merges_fields(tmp_path):
    path = write(tmp_path, "a.tsv", 'text\tlabel\n"a\tb"\tx\nplain\ty\n' + "".join(f"t{i}\tx\n" for i in range(10)))
    task_data = load_task_data(path, quoting="minimal")
    texts = [text for split in task_data.splits.values() for text in split["text"]]
    assert "a\tb" in texts


def test_csv_text_na_stays_text(tmp_path):
    path = write(tmp_path, "a.csv", "text,label\nNA,a\nnull,b\nNone,a\n007,b\n" + csv_rows(10).split("\n", 1)[1])
    texts = {t for split in load_task_data(path).splits.values() for t in split["text"]}
    assert {"NA", "null", "None", "007"} <= texts


def test_csv_multiline_quoted_field(tmp_path):
    path = write(tmp_path, "a.csv", 'text,label\n"line one\nline two, with comma",a\n' + csv_rows(10).split("\n", 1)[1])
    texts = {t for split in load_task_data(path).splits.values() for t in split["text"]}
    assert "line one\nline two, with comma" in texts


def test_unknown_quoting_rejected(tmp_path):
    path = write(tmp_path, "a.csv", csv_rows(5))
    with pytest.raises(ConfigError, match="Unknown quoting 'double'"):
        load_task_data(path, quoting="double")


def test_column_names_count_mismatch(tmp_path):
    path = write(tmp_path, "a.csv", csv_rows(5))
    with pytest.raises(DataError, match="1 column names were given"):
        load_task_data(path, column_names=["only"])


def test_parquet_file(tmp_path):
    frame = pd.DataFrame({"text": [f"t{i}" for i in range(20)], "label": [i % 2 for i in range(20)]})
    frame.to_parquet(tmp_path / "a.parquet")
    task_data = load_task_data(tmp_path / "a.parquet")
    assert sum(split_sizes(task_data).values()) == 20
    assert task_data.task.label_names == ["0", "1"]


def test_parquet_class_label_names(tmp_path):
    features = datasets.Features({"sentence": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])})
    rows = {"sentence": [f"s{i}" for i in range(20)], "label": [i % 2 for i in range(20)]}
    datasets.Dataset.from_dict(rows, features=features).to_parquet(tmp_path / "labelled.parquet")
    task_data = load_task_data(tmp_path / "labelled.parquet")
    assert task_data.task.label_names == ["neg", "pos"]
    assert task_data.task.text_columns == ["sentence"]


def test_label_suffix_folder(tmp_path):
    write(tmp_path, "reviews.pos", "".join(f"good {i}\n" for i in range(10)))
    write(tmp_path, "reviews.neg", "".join(f"bad {i}\n" for i in range(10)) + "\n")
    task_data = load_task_data(tmp_path)
    assert task_data.task.label_names == ["neg", "pos"]
    rows = [row for split in task_data.splits.values() for row in split]
    assert len(rows) == 20
    assert all(row["text"].startswith("good") == (row["label"] == 1) for row in rows)


# --- generation formats ----------------------------------------------------------------------------------


def alpaca(count: int) -> list[dict]:
    return [{"instruction": f"Do task {i}.", "input": "" if i % 2 else f"data {i}", "output": f"Done {i}."} for i in range(count)]


def test_alpaca_messages(tmp_path):
    path = write(tmp_path, "a.json", json.dumps(alpaca(20)))
    task_data = load_task_data(path, task_type="generation")
    assert task_data.task.data_format == "alpaca"
    messages = {tuple((m["role"], m["content"]) for m in row["messages"]) for split in task_data.splits.values() for row in split}
    assert (("user", "Do task 2.\n\ndata 2"), ("assistant", "Done 2.")) in messages
    assert (("user", "Do task 3."), ("assistant", "Done 3.")) in messages


def test_alpaca_missing_output_names_record(tmp_path):
    records = alpaca(5)
    del records[3]["output"]
    path = write(tmp_path, "a.json", json.dumps(records))
    with pytest.raises(DataError) as caught:
        load_task_data(path, task_type="generation")
    assert "Row 4 of a.json has no 'output' field" in str(caught.value)


def test_alpaca_missing_instruction_names_record(tmp_path):
    records = alpaca(5)
    del records[1]["instruction"]
    path = write(tmp_path, "a.jsonl", "".join(json.dumps(r) + "\n" for r in records))
    with pytest.raises(DataError, match="Row 2 of a.jsonl has no 'instruction' field"):
        load_task_data(path, task_type="generation")


def test_alpaca_empty_output_dropped_and_counted(tmp_path):
    records = alpaca(20)
    records[4]["output"] = ""
    records[7]["output"] = "  "
    path = write(tmp_path, "a.json", json.dumps(records))
    task_data = load_task_data(path, task_type="generation")
    assert "Dropped 2 rows with an empty response from the train data (a.json)." in task_data.notes
    assert sum(split_sizes(task_data).values()) == 18


def test_chat_format(tmp_path):
    records = [
        {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]}
        for i in range(20)
    ]
    path = write(tmp_path, "chat.jsonl", "".join(json.dumps(r) + "\n" for r in records))
    task_data = load_task_data(path, task_type="generation")
    assert task_data.task.data_format == "chat"
    row = task_data.splits["train"][0]
    assert [m["role"] for m in row["messages"]] == ["system", "user", "assistant"]


def test_chat_last_message_must_be_assistant(tmp_path):
    records = [{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}] * 3
    records.append({"messages": [{"role": "assistant", "content": "a"}, {"role": "user", "content": "q"}]})
    path = write(tmp_path, "chat.jsonl", "".join(json.dumps(r) + "\n" for r in records))
    with pytest.raises(DataError, match="Row 4 of chat.jsonl: the last message has role 'user'"):
        load_task_data(path, task_type="generation")


def test_chat_bad_role_names_message(tmp_path):
    records = [{"messages": [{"role": "user", "content": "q"}, {"role": "bot", "content": "a"}]}]
    path = write(tmp_path, "chat.jsonl", json.dumps(records[0]) + "\n")
    with pytest.raises(DataError, match="Row 1 of chat.jsonl: message 2"):
        load_task_data(path, task_type="generation")


def test_prompt_completion_csv(tmp_path):
    path = write(tmp_path, "pc.csv", "prompt,completion\n" + "".join(f"say {i},{i}\n" for i in range(20)))
    task_data = load_task_data(path, task_type="generation")
    assert task_data.task.data_format == "prompt_completion"
    assert sum(split_sizes(task_data).values()) == 20


def test_forced_format_missing_column(tmp_path):
    path = write(tmp_path, "pc.csv", "prompt,completion\n" + "".join(f"say {i},{i}\n" for i in range(20)))
    with pytest.raises(DataError, match="Column 'instruction' was not found in pc.csv"):
        load_task_data(path, task_type="generation", data_format="alpaca")


def test_undetectable_generation_format(tmp_path):
    path = write(tmp_path, "a.csv", csv_rows(10))
    with pytest.raises(DataError) as caught:
        load_task_data(path, task_type="generation")
    assert "Cannot tell the generation format of a.csv" in str(caught.value)
    assert "text, label" in str(caught.value)


def test_classification_options_rejected_for_generation(tmp_path):
    path = write(tmp_path, "a.json", json.dumps(alpaca(10)))
    with pytest.raises(ConfigError, match="classification tasks only"):
        load_task_data(path, task_type="generation", label_column="output")


# --- sources: Hub, built-in ------------------------------------------------------------------------------


def test_hub_id_offline_suggests_local_file(tmp_path):
    code = "from lora_playground.data import load_task_data\nload_task_data('someone/no-such-dataset')\n"
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode != 0
    assert "DataError" in result.stderr
    assert "'someone/no-such-dataset' is not a local file or folder" in result.stderr
    assert "HF_HUB_OFFLINE=1" in result.stderr
    assert "give a local CSV" in result.stderr


def test_builtin_name_delegates():
    task_data = load_task_data("chatterbot-topics", seed=3)
    assert task_data.task.name == "chatterbot-topics"
    assert task_data.task.license.startswith("BSD")


def test_builtin_rejects_column_options():
    with pytest.raises(ConfigError, match="text_columns"):
        load_task_data("chatterbot-topics", text_columns=["x"])


def test_builtin_typo_suggests_name():
    with pytest.raises(DataError, match="did you mean 'chatterbot-topics'"):
        load_task_data("chatterbot-topic")


# --- preview ---------------------------------------------------------------------------------------------


def test_preview_reports_columns_rows_counts(tmp_path):
    path = write(tmp_path, "a.csv", csv_rows(40) + ",pos\n")
    result = preview(path, rows=3)
    assert result["problems"] == []
    assert result["columns"] == {"train": ["text", "label"]}
    assert result["num_rows"] == {"train": 41}
    assert result["rows"] == [
        {"text": "example number 0", "label": "pos"},
        {"text": "example number 1", "label": "neg"},
        {"text": "example number 2", "label": "pos"},
    ]
    assert result["splits"] == {"train": 32, "validation": 4, "test": 4}
    assert result["label_counts"]["test"] == {"neg": 2, "pos": 2}
    assert any("Dropped 1 row with empty text" in note for note in result["notes"])
    json.dumps(result)


def test_preview_problem_keeps_raw_view(tmp_path):
    path = write(tmp_path, "a.csv", csv_rows(10, labels=("only",)))
    result = preview(path)
    assert result["columns"] == {"train": ["text", "label"]}
    assert len(result["rows"]) == 5
    assert len(result["problems"]) == 1
    assert "only one class" in result["problems"][0]
    assert result["task"] is None


def test_preview_unreadable_file(tmp_path):
    result = preview(tmp_path / "missing.csv")
    assert result["columns"] == {}
    assert "missing.csv" in result["problems"][0]


def test_preview_builtin():
    result = preview("chatterbot-language", rows=2)
    assert result["problems"] == []
    assert len(result["rows"]) == 2
    assert set(result["label_counts"]["train"]) == {
        "dutch", "english", "german", "indonesian", "italian", "portuguese", "spanish", "turkish"
    }


# --- real benchmark files --------------------------------------------------------------------------------

needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="shared benchmark datasets are not present")


@needs_shared
def test_sms_spam_split_folder():
    task_data = load_task_data(SHARED / "sms_spam")
    assert split_sizes(task_data) == {"train": 1045, "validation": 149, "test": 300}
    assert task_data.task.label_names == ["0", "1"]
    assert task_data.task.text_columns == ["Text"]
    assert Counter(task_data.splits["train"]["label"]) == {0: 528, 1: 517}
    assert Counter(task_data.splits["test"]["label"]) == {0: 149, 1: 151}
    assert any("SMSSpamCollection.tsv" in note for note in task_data.notes)


@needs_shared
def test_sms_spam_tsv_quote_none_reads_all_rows():
    task_data = load_task_data(SHARED / "sms_spam" / "SMSSpamCollection.tsv", has_header=False, column_names=["label", "text"])
    labels = [task_data.task.label_names[i] for split in task_data.splits.values() for i in split["label"]]
    assert Counter(labels) == {"ham": 4827, "spam": 747}


@needs_shared
def test_sms_spam_tsv_minimal_quoting_merges_rows():
    task_data = load_task_data(
        SHARED / "sms_spam" / "SMSSpamCollection.tsv", has_header=False, column_names=["label", "text"], quoting="minimal"
    )
    assert sum(split_sizes(task_data).values()) == 5572


@needs_shared
def test_sentiment_cp1252_files():
    with pytest.raises(DataError) as caught:
        load_task_data(SHARED / "sentiment")
    assert "rt-polarity" in str(caught.value)
    assert "--encoding cp1252" in str(caught.value)
    task_data = load_task_data(SHARED / "sentiment", encoding="cp1252")
    labels = Counter(task_data.task.label_names[i] for split in task_data.splits.values() for i in split["label"])
    assert labels == {"pos": 5331, "neg": 5331}


@needs_shared
def test_instruction_data_book_split():
    task_data = load_task_data(
        SHARED / "instructions" / "instruction-data.json",
        task_type="generation",
        ordered_split=True,
        validation_fraction=0.05,
        test_fraction=0.1,
    )
    assert split_sizes(task_data) == {"train": 935, "validation": 55, "test": 110}
    rows = [row for split in task_data.splits.values() for row in split]
    with_input = [row for row in rows if "\n\n" in row["messages"][0]["content"]]
    assert len(with_input) == 325
    first = task_data.splits["train"][0]["messages"]
    assert first[0]["content"] == "Evaluate the following phrase by transforming it into the spelling given.\n\nfreind --> friend"
