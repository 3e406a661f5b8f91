"""Property-based tests of the data loaders: any file either loads exactly what it contains or raises PlaygroundError.

Each test draws a bounded number of examples (see SETTINGS) so the module runs in well under a minute.
"""

import csv
import io
import json
import tempfile
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from lora_playground.data import load_task_data, preview
from lora_playground.errors import PlaygroundError

SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
LABEL_POOLS = (("pos", "neg", "mixed"), ("0", "1", "2"), ("-1", "1"), (" spaced ", "tight"))

texts = st.text(max_size=40)
awkward_texts = st.one_of(
    texts,
    st.sampled_from(['"', '""', ",", "\t", "\n", "\r\n", "\r", 'a "quoted" word', "NA", "null", "  ", "\u2028", "\ufeff"]),
    st.integers(min_value=0, max_value=200_000).map(lambda n: "x" * n),
)


@st.composite
def labelled_rows(draw, text_strategy=awkward_texts):
    """Rows of (text, label); most draws also hold enough plain rows of two classes to be splittable."""
    pool = draw(st.sampled_from(LABEL_POOLS))
    rows = draw(st.lists(st.tuples(text_strategy, st.sampled_from(pool)), min_size=0, max_size=30))
    if draw(st.integers(0, 4)) > 0:
        anchors = [(f"anchor {i}", pool[i % 2]) for i in range(8)]
        rows = draw(st.permutations(rows + anchors))
    return rows


def expected_counts(rows) -> Counter:
    """The (text, label name) pairs a correct load returns: rows with non-blank text, label names canonical."""
    result = Counter()
    for text, label in rows:
        if not text.strip():
            continue
        key = label.strip()
        result[(text, str(int(key)) if key.lstrip("-").isdigit() else key)] += 1
    return result


def loaded_counts(task_data) -> Counter:
    names = task_data.task.label_names
    return Counter(
        (row["text"], names[row["label"]]) for split in task_data.splits.values() for row in split
    )


def load_or_user_error(path: Path, **options):
    """Return TaskData, or None when loading raised PlaygroundError; any other exception fails the test."""
    try:
        task_data = load_task_data(path, **options)
    except PlaygroundError as error:
        assert str(error).strip(), "a PlaygroundError must carry a message"
        event(f"{type(error).__name__}: {str(error)[:40]}")
        return None
    event("loaded")
    return task_data


def write_delimited(path: Path, rows, delimiter: str, quoting: int, encoding: str = "utf-8") -> None:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=delimiter, quoting=quoting)
    writer.writerow(["text", "label"])
    writer.writerows(rows)
    path.write_bytes(buffer.getvalue().encode(encoding))


@SETTINGS
@given(rows=labelled_rows(), quoting=st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC]))
def test_csv_round_trip(rows, quoting):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "data.csv"
        write_delimited(path, rows, ",", quoting)
        task_data = load_or_user_error(path)
    if task_data is not None:
        assert loaded_counts(task_data) == expected_counts(rows)


@SETTINGS
@given(rows=labelled_rows(), quote_mode=st.sampled_from(["minimal", "auto"]))
def test_tsv_round_trip_or_error(rows, quote_mode):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "data.tsv"
        write_delimited(path, rows, "\t", csv.QUOTE_MINIMAL)
        task_data = load_or_user_error(path, quoting=quote_mode)
    written_with_quotes = any(any(c in text for c in '"\t\r\n') for text, _ in rows)
    if task_data is not None and (quote_mode == "minimal" or not written_with_quotes):
        assert loaded_counts(task_data) == expected_counts(rows)


@SETTINGS
@given(
    rows=labelled_rows(text_strategy=st.text(max_size=30)),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "cp1252", "latin-1"]),
)
def test_encodings_round_trip_or_error(rows, encoding):
    encodable = [(text, label) for text, label in rows if _encodable(text, encoding)]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "data.csv"
        write_delimited(path, encodable, ",", csv.QUOTE_MINIMAL, encoding=encoding)
        # Read as UTF-8 first: a wrong guess must end in a clear error or (for ASCII-compatible bytes) a load.
        load_or_user_error(path)
        task_data = load_or_user_error(path, encoding=encoding)
    if task_data is not None:
        assert loaded_counts(task_data) == expected_counts(encodable)


def _encodable(text: str, encoding: str) -> bool:
    try:
        text.encode(encoding)
    except UnicodeEncodeError:
        return False
    return True


json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70), st.floats(), st.text(max_size=20)
)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=6)


@st.composite
def with_anchors(draw, records: list[dict], anchors: list[dict]) -> list[dict]:
    """Usually mix in well-formed records, so that many draws load and the odd values are really read."""
    if draw(st.integers(0, 4)) == 0:
        return records
    return draw(st.permutations(records + anchors))


scalar_texts = st.one_of(st.text(min_size=1, max_size=10), st.integers(), st.floats(allow_nan=False), st.booleans())
scalar_labels = st.one_of(st.sampled_from([0, 1, "a", "b", True, 2.0, "1", " a "]), json_scalars)
MIXED_ANCHORS = [{"text": f"anchor {i}", "label": [0, "a"][i % 2]} for i in range(8)]


@SETTINGS
@given(
    records=st.lists(
        st.one_of(
            st.fixed_dictionaries({"text": scalar_texts, "label": scalar_labels}),
            st.fixed_dictionaries({"text": json_values, "label": json_values}, optional={"extra": json_values}),
        ),
        max_size=10,
    ).flatmap(lambda records: with_anchors(records, MIXED_ANCHORS)),
    as_lines=st.booleans(),
)
def test_json_mixed_values_load_or_error(records, as_lines):
    with tempfile.TemporaryDirectory() as folder:
        if as_lines:
            path = Path(folder) / "data.jsonl"
            path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
        else:
            path = Path(folder) / "data.json"
            path.write_text(json.dumps(records), encoding="utf-8")
        task_data = load_or_user_error(path)
    if task_data is not None:
        total = sum(split.num_rows for split in task_data.splits.values())
        assert total <= len(records)
        assert len(task_data.task.label_names) >= 2
        if records and all(record in MIXED_ANCHORS for record in records):
            assert task_data.task.label_names == ["0", "a"]


@SETTINGS
@given(rows=labelled_rows(text_strategy=st.text(max_size=30)), as_lines=st.booleans())
def test_json_string_records_round_trip(rows, as_lines):
    records = [{"text": text, "label": label} for text, label in rows]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / ("data.jsonl" if as_lines else "data.json")
        if as_lines:
            path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
        else:
            path.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
        task_data = load_or_user_error(path)
    if task_data is not None:
        assert loaded_counts(task_data) == expected_counts(rows)


@SETTINGS
@given(
    content=st.binary(max_size=300),
    suffix=st.sampled_from([".csv", ".tsv", ".json", ".jsonl", ".parquet"]),
    task_type=st.sampled_from(["classification", "generation"]),
)
def test_random_bytes_never_crash(content, suffix, task_type):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"data{suffix}"
        path.write_bytes(content)
        load_or_user_error(path, task_type=task_type)
        result = preview(path, task_type=task_type)
    assert isinstance(result["problems"], list)


ALPACA_ANCHORS = [{"instruction": f"Say {i}.", "input": "", "output": f"{i}"} for i in range(6)]


@SETTINGS
@given(
    records=st.lists(
        st.fixed_dictionaries(
            {"instruction": st.one_of(st.text(min_size=1, max_size=10), json_scalars)},
            optional={"input": json_scalars, "output": st.one_of(st.text(max_size=10), json_scalars)},
        ),
        max_size=6,
    ).flatmap(lambda records: with_anchors(records, ALPACA_ANCHORS))
)
def test_alpaca_records_load_or_error(records):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "data.json"
        path.write_text(json.dumps(records), encoding="utf-8")
        task_data = load_or_user_error(path, task_type="generation", data_format="alpaca")
    if task_data is not None:
        rows = [row for split in task_data.splits.values() for row in split]
        assert len(rows) <= len(records)
        assert all(row["messages"][-1]["role"] == "assistant" for row in rows)
        assert all(row["messages"][-1]["content"].strip() for row in rows)


# Text that stresses delimited parsing: separators, quotes, line breaks and non-ASCII characters.
delimited_chars = st.sampled_from(list(',\t"\'\n\r;| ab1é€\u2028\ufeff\x00'))


@SETTINGS
@given(
    content=st.one_of(st.text(max_size=300), st.lists(delimited_chars, max_size=300).map("".join)),
    suffix=st.sampled_from([".csv", ".tsv", ".json", ".jsonl"]),
    quoting=st.sampled_from(["auto", "minimal", "none"]),
)
def test_random_text_never_crashes(content, suffix, quoting):
    """Valid UTF-8 that is not a well-formed table or JSON file reaches the parsers, unlike random bytes."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"data{suffix}"
        path.write_text(content, encoding="utf-8")
        task_data = load_or_user_error(path, quoting=quoting)
    if task_data is not None:
        assert len(task_data.task.label_names) >= 2
        assert all(row["text"].strip() for split in task_data.splits.values() for row in split)


@SETTINGS
@given(
    rows=labelled_rows(text_strategy=st.text(max_size=30)),
    encoding=st.sampled_from(["utf-8-sig", "utf-16", "utf-16-le", "utf-32", "cp1252", "latin-1"]),
    as_lines=st.booleans(),
)
def test_json_encodings_round_trip_or_error(rows, encoding, as_lines):
    records = [{"text": text, "label": label} for text, label in rows if _encodable(text, encoding)]
    if as_lines:
        content = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
    else:
        content = json.dumps(records, ensure_ascii=False)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / ("data.jsonl" if as_lines else "data.json")
        path.write_bytes(content.encode(encoding))
        # Read as UTF-8 first: a wrong guess must end in a clear error or (for ASCII-compatible bytes) a load.
        load_or_user_error(path)
        task_data = load_or_user_error(path, encoding=encoding)
    if task_data is not None:
        assert loaded_counts(task_data) == expected_counts([(record["text"], record["label"]) for record in records])


header_names = st.one_of(st.text(max_size=12), st.sampled_from(["", " ", "text", "label", "Text", "label ", "ラベル", '"', "a,b"]))


@SETTINGS
@given(
    headers=st.lists(header_names, min_size=1, max_size=4),
    rows=st.lists(st.lists(st.one_of(st.text(max_size=15), st.sampled_from(["pos", "neg", "", " "])), min_size=1, max_size=5), max_size=25),
)
def test_odd_headers_and_ragged_rows_load_or_error(headers, rows):
    """Duplicate, empty or unicode column names and rows of the wrong width end in a load or a clear error."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(headers)
    writer.writerows(rows)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "data.csv"
        path.write_text(buffer.getvalue(), encoding="utf-8")
        task_data = load_or_user_error(path)
    if task_data is not None:
        total = sum(split.num_rows for split in task_data.splits.values())
        assert 0 < total <= len(rows)
        assert all(name.strip() for name in task_data.task.label_names)


@SETTINGS
@given(
    labels=st.lists(st.sampled_from(["spam", "ham", "", "  ", "Spam", " spam "]), min_size=1, max_size=30),
)
def test_empty_labels_dropped_or_rejected(labels):
    """Rows with an empty or blank label are never loaded as a class named ""."""
    rows = [(f"message {index}", label) for index, label in enumerate(labels)] + [(f"anchor {index}", ["spam", "ham"][index % 2]) for index in range(8)]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "data.csv"
        write_delimited(path, rows, ",", csv.QUOTE_MINIMAL)
        task_data = load_or_user_error(path)
    if task_data is not None:
        assert all(name.strip() for name in task_data.task.label_names)
        loaded_texts = Counter(row["text"] for split in task_data.splits.values() for row in split)
        assert loaded_texts == Counter(text for text, label in rows if label.strip())


message_values = st.one_of(
    st.fixed_dictionaries({"role": st.sampled_from(["system", "user", "assistant", "tool", "", "USER"]), "content": st.one_of(st.text(max_size=15), json_scalars)}),
    json_values,
)
CHAT_ANCHORS = [
    {"messages": [{"role": "user", "content": f"Say {index}."}, {"role": "assistant", "content": f"{index}"}]} for index in range(6)
]


@SETTINGS
@given(
    records=st.lists(
        st.one_of(st.fixed_dictionaries({"messages": st.lists(message_values, max_size=4)}), st.fixed_dictionaries({"messages": json_values})),
        max_size=6,
    ).flatmap(lambda records: with_anchors(records, CHAT_ANCHORS)),
    as_lines=st.booleans(),
)
def test_chat_records_load_or_error(records, as_lines):
    with tempfile.TemporaryDirectory() as folder:
        if as_lines:
            path = Path(folder) / "chat.jsonl"
            path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
        else:
            path = Path(folder) / "chat.json"
            path.write_text(json.dumps(records), encoding="utf-8")
        task_data = load_or_user_error(path, task_type="generation")
    if task_data is not None:
        rows = [row for split in task_data.splits.values() for row in split]
        assert len(rows) <= len(records)
        for row in rows:
            assert row["messages"][-1]["role"] == "assistant"
            assert row["messages"][-1]["content"].strip()
            assert all(message["role"] in ("system", "user", "assistant") for message in row["messages"])
