"""Data-set readers: the Zhang CSV, the Hugging Face layouts, the row policy and the CLI."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from qaflow.cli.dataset import dataset as dataset_cli
from qaflow.core.errors import DatasetError
from qaflow.core.messages import MAX_ANSWER, MAX_CONTENT, MAX_TITLE
from qaflow.core.question import CATEGORIES
from qaflow.datasets import Dataset, detect_format, open_dataset

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample.csv"
HF_HEADER = "id,topic,question_title,question_content,best_answer\n"


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    if name.endswith(".gz"):
        data = text.encode("utf-8") if isinstance(text, str) else text
        with gzip.open(path, "wb") as out:
            out.write(data)
    elif isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8", newline="")
    return path


def load(path: Path, **kwargs: object) -> tuple[list, Dataset]:
    data = open_dataset(path, **kwargs)  # type: ignore[arg-type]
    return list(data), data


# --- Zhang CSV -------------------------------------------------------------------------


def test_zhang_quotes_escapes_and_unicode(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "train.csv",
        '"5","Why is my ""new"" PC, slow?","It has 8 GB.\\nAnd an HDD.","Add an SSD.\\n\\nDone."\n'
        '"1","Café naïve question","","It costs 5 €; C:\\\\temp\\\\x and \\\\o/ stay."\n',
    )
    questions, data = load(path)
    first, second = questions
    assert first.title == 'Why is my "new" PC, slow?'
    assert first.content == "It has 8 GB.\nAnd an HDD."
    assert first.reference_answer == "Add an SSD.\n\nDone."
    assert first.category == 5
    assert first.source == "train.csv:1"
    assert second.title == "Café naïve question"
    assert second.content == ""  # empty content is fine
    # only backslash-n is an escape; other backslashes are the text's own
    assert second.reference_answer == "It costs 5 €; C:\\\\temp\\\\x and \\\\o/ stay."
    assert second.source == "train.csv:2"
    assert data.report.rows == 2
    assert data.report.questions == 2
    assert data.report.skipped_total == 0
    assert data.report.complete


def test_zhang_bad_rows_are_skipped_with_reasons(tmp_path: Path) -> None:
    rows = [
        '"1","Good one","","Fine."',
        '"3","Only three columns","x"',
        '"3","Five","columns","here","extra"',
        '"11","Class eleven","","Answer."',
        '"zero","Not a number","","Answer."',
        '"0","Class zero","","Answer."',
        '"2","   ","content","Answer."',
        '"2","Blank answer","content"," \\n "',
        f'"4","{"t" * (MAX_TITLE + 1)}","","Answer."',
        f'"4","Long content","{"c" * (MAX_CONTENT + 1)}","Answer."',
        f'"4","Long answer","","{"a" * (MAX_ANSWER + 1)}"',
        '"10","Last good one","","Also fine."',
    ]
    questions, data = load(write(tmp_path, "t.csv", "\n".join(rows) + "\n"))
    assert [q.title for q in questions] == ["Good one", "Last good one"]
    assert questions[1].source == "t.csv:12"
    assert data.report.rows == 12
    assert data.report.skipped == Counter(
        {
            "too few columns": 1,
            "too many columns": 1,
            "bad class index": 3,
            "blank title": 1,
            "blank answer": 1,
            "too long": 3,
        }
    )


def test_blank_lines_and_bom_and_crlf(tmp_path: Path) -> None:
    text = '\ufeff"1","A","","B"\r\n\r\n"2","C","line1\\nline2","D"\r\n'
    questions, data = load(write(tmp_path, "b.csv", text))
    assert [(q.category, q.title) for q in questions] == [(1, "A"), (2, "C")]
    assert questions[1].content == "line1\nline2"
    assert questions[1].source == "b.csv:3"
    assert data.report.rows == 2


def test_undecodable_bytes_name_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.csv", b'"1","ok","","fine"\n"2","caf\xe9","","latin-1"\n')
    data = open_dataset(path)
    with pytest.raises(DatasetError) as info:
        list(data)
    assert info.value.line == 2
    assert info.value.path == str(path)
    assert str(info.value).startswith(f"{path}:2: not valid UTF-8")
    assert data.report.questions == 1  # the good row before it was yielded


def test_unterminated_quote_is_a_file_error_at_the_record_start(tmp_path: Path) -> None:
    text = '"1","ok","","fine"\n"2","never closed\nplain line\nanother\n'
    with pytest.raises(DatasetError) as info:
        list(open_dataset(write(tmp_path, "q.csv", text)))
    assert info.value.line == 2
    assert "bad CSV" in info.value.reason
    assert "error seen at line 4" in info.value.reason


def test_stray_quote_is_a_file_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError) as info:
        list(open_dataset(write(tmp_path, "s.csv", '"1","a"b,"","c"\n')))
    assert info.value.line == 1


def test_missing_file_fails_fast(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no such file"):
        open_dataset(tmp_path / "nope.csv")


def test_bad_arguments(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", '"1","A","","B"\n')
    with pytest.raises(ValueError, match="format"):
        open_dataset(path, fmt="parquet")
    with pytest.raises(ValueError, match="limit"):
        open_dataset(path, limit=-1)


# --- limit, streaming, gzip --------------------------------------------------------------


def test_limit_counts_questions_not_rows(tmp_path: Path) -> None:
    rows = ['"1","","","skipped"'] + [f'"1","Q{i}","","A{i}"' for i in range(10)]
    questions, data = load(write(tmp_path, "l.csv", "\n".join(rows) + "\n"), limit=3)
    assert [q.title for q in questions] == ["Q0", "Q1", "Q2"]
    assert data.report.rows == 4
    assert not data.report.complete
    assert list(open_dataset(tmp_path / "l.csv", limit=0)) == []


def test_streams_lazily_and_each_pass_starts_over(tmp_path: Path) -> None:
    rows = [f'"1","Q{i}","","A{i}"' for i in range(5)] + ['"1","broken']
    data = open_dataset(write(tmp_path, "s.csv", "\n".join(rows) + "\n"))
    it = iter(data)
    assert next(it).title == "Q0"  # the broken tail has not been read yet
    assert data.report.rows == 1
    it.close()
    assert [q.title for q in open_dataset(tmp_path / "s.csv", limit=5)] == [f"Q{i}" for i in range(5)]
    with pytest.raises(DatasetError):
        list(data)


def test_gzip(tmp_path: Path) -> None:
    questions, data = load(write(tmp_path, "t.csv.gz", '"6","Offside?","","Rule."\n'))
    assert data.fmt == "zhang"
    assert questions[0].title == "Offside?"
    assert questions[0].source == "t.csv.gz:1"


def test_corrupt_gzip_is_a_file_error(tmp_path: Path) -> None:
    path = tmp_path / "t.csv.gz"
    path.write_bytes(b"this is not gzip\n")
    with pytest.raises(DatasetError, match="gzip"):
        list(open_dataset(path, fmt="zhang"))
    truncated = tmp_path / "cut.csv.gz"
    truncated.write_bytes(gzip.compress(b'"1","A","","B"\n' * 1000)[:-30])
    with pytest.raises(DatasetError, match="gzip"):
        list(open_dataset(truncated))


# --- Hugging Face layouts ------------------------------------------------------------------


def test_hf_csv_maps_topic_and_detects_header(tmp_path: Path) -> None:
    text = HF_HEADER + (
        '0,0,"Why ""13""?","","Old fear.\\nUnclear."\n'
        "1,9,Veto?,,Two thirds.\n"
        "2,10,Bad topic,,x\n"
        "3,4,Short\n"
        "4,4,Long,,x,extra\n"
    )
    path = write(tmp_path, "hf.csv", text)
    assert detect_format(path) == "hf-csv"
    questions, data = load(path)
    assert [(q.category, q.title) for q in questions] == [(1, 'Why "13"?'), (10, "Veto?")]
    assert questions[0].reference_answer == "Old fear.\nUnclear."
    assert questions[0].source == "hf.csv:2"
    assert data.report.skipped == Counter({"bad class index": 1, "too few columns": 1, "too many columns": 1})


def test_hf_csv_with_pandas_index_column(tmp_path: Path) -> None:
    text = ",id,topic,question_title,question_content,best_answer\n0,7,2,Tides?,,The Moon.\n"
    questions, _ = load(write(tmp_path, "hf.csv", text))
    assert [(q.category, q.reference_answer) for q in questions] == [(3, "The Moon.")]


def test_hf_csv_forced_on_a_headerless_file_names_line_1(tmp_path: Path) -> None:
    path = write(tmp_path, "z.csv", '"1","A","","B"\n')
    with pytest.raises(DatasetError) as info:
        list(open_dataset(path, fmt="hf-csv"))
    assert info.value.line == 1


def test_hf_jsonl(tmp_path: Path) -> None:
    records = [
        {"id": 0, "topic": 4, "question_title": "RAM?", "question_content": None, "best_answer": "Working memory."},
        {"id": 1, "topic": "1", "question_title": "Sky?", "question_content": "a\\nb", "best_answer": "Scattering."},
        {"id": 2, "topic": True, "question_title": "Bool topic", "question_content": "", "best_answer": "x"},
        {"id": 3, "topic": 1, "question_title": 42, "question_content": "", "best_answer": "x"},
        {"id": 4, "topic": 1, "question_title": "No answer key", "question_content": ""},
        [1, 2, 3],
    ]
    lines = [json.dumps(record, ensure_ascii=False) for record in records]
    path = write(tmp_path, "hf.jsonl", "\n".join(lines[:2]) + "\n\n" + "\n".join(lines[2:]) + "\n")
    questions, data = load(path)
    assert data.fmt == "hf-jsonl"
    assert [(q.category, q.title, q.content) for q in questions] == [
        (5, "RAM?", ""),
        (2, "Sky?", "a\nb"),
    ]
    assert questions[1].source == "hf.jsonl:2"
    assert data.report.skipped == Counter(
        {"bad class index": 1, "field is not text": 1, "missing field": 1, "not a JSON object": 1}
    )


def test_hf_jsonl_gz_and_invalid_json_line(tmp_path: Path) -> None:
    good = json.dumps({"topic": 5, "question_title": "Marathon?", "question_content": "", "best_answer": "42.195 km."})
    path = write(tmp_path, "hf.jsonl.gz", good + "\n{not json\n")
    data = open_dataset(path)
    assert data.fmt == "hf-jsonl"
    with pytest.raises(DatasetError) as info:
        list(data)
    assert info.value.line == 2
    assert data.report.questions == 1


def test_detect_format_falls_back_to_zhang(tmp_path: Path) -> None:
    assert detect_format(write(tmp_path, "x.txt", '"1","A","","B"\n')) == "zhang"
    assert detect_format(write(tmp_path, "e.csv", "")) == "zhang"
    assert detect_format(write(tmp_path, "q.csv", '"1","multi\n')) == "zhang"
    assert detect_format(write(tmp_path, "h.csv.gz", HF_HEADER)) == "hf-csv"


# --- the shipped sample ------------------------------------------------------------------


def test_shipped_sample_loads_cleanly() -> None:
    questions, data = load(SAMPLE)
    assert data.fmt == "zhang"
    assert data.report.skipped_total == 0
    assert len(questions) >= 200
    assert set(data.report.categories) == set(CATEGORIES)
    assert min(data.report.categories.values()) >= 20
    assert len({q.id for q in questions}) == len(questions)
    assert any(not q.content for q in questions)
    assert any("\n" in q.content or "\n" in q.reference_answer for q in questions)
    assert any(not q.title.isascii() or not q.reference_answer.isascii() for q in questions)


# --- CLI -----------------------------------------------------------------------------------


def test_cli_inspect_reports_counts(tmp_path: Path) -> None:
    path = write(tmp_path, "i.csv", '"1","A","","B"\n"3","C","","D"\n"3","","",""\n')
    result = CliRunner().invoke(dataset_cli, ["inspect", str(path)])
    assert result.exit_code == 0, result.output
    assert "rows read" in result.output
    assert "blank title" in result.output
    assert "Society & Culture" in result.output


def test_cli_inspect_malformed_file_exits_2_without_traceback(tmp_path: Path) -> None:
    path = write(tmp_path, "m.csv", b'"1","A","","B"\n"2","\xff","","x"\n')
    result = CliRunner().invoke(dataset_cli, ["inspect", str(path)])
    assert result.exit_code == 2
    assert f"{path}:2: not valid UTF-8" in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_cli_inspect_missing_file_exits_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(dataset_cli, ["inspect", str(tmp_path / "no.csv")])
    assert result.exit_code == 2
    assert "no such file" in result.output


def test_every_option_has_help() -> None:
    for command in dataset_cli.commands.values():
        for param in command.params:
            if param.param_type_name == "option":
                assert param.help, f"{command.name} {param.name}"
