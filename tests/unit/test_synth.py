"""The synthetic generator and the Zhang writer: determinism, variety and round trips."""

from __future__ import annotations

import io
from collections import Counter
from itertools import islice
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from qaflow.cli.dataset import dataset as dataset_cli
from qaflow.core.question import CATEGORIES, Question
from qaflow.core.text import clean
from qaflow.datasets import open_dataset
from qaflow.datasets.synth import synth_questions, write_zhang, write_zhang_csv
from qaflow.datasets.zhang import escape, unescape


def fields(questions: list[Question]) -> list[tuple[str, str, str, int | None]]:
    return [(q.title, q.content, q.reference_answer, q.category) for q in questions]


def test_same_seed_same_questions_different_seed_different() -> None:
    first = list(synth_questions(300, seed=7))
    assert fields(first) == fields(list(synth_questions(300, seed=7)))
    assert fields(first) != fields(list(synth_questions(300, seed=8)))


def test_prefix_is_stable() -> None:
    assert fields(list(synth_questions(10))) == fields(list(islice(synth_questions(500), 10)))


def test_titles_unique_even_past_the_grid() -> None:
    questions = list(synth_questions(12_000, seed=1))  # more than a category's grid holds
    assert len({q.title for q in questions}) == len(questions)
    assert len({q.id for q in questions}) == len(questions)


def test_variety_and_shape() -> None:
    questions = list(synth_questions(2_000, seed=0))
    per_category = Counter(q.category for q in questions)
    assert set(per_category) == set(CATEGORIES)
    assert min(per_category.values()) > 120
    empty = sum(not q.content for q in questions)
    assert 0.15 * len(questions) < empty < 0.35 * len(questions)
    assert any("\n" in q.content for q in questions)
    assert any("\n" in q.reference_answer for q in questions)
    assert len({q.reference_answer for q in questions}) > 500
    assert all(q.title.strip() and q.reference_answer.strip() for q in questions)


def test_negative_n_is_refused() -> None:
    with pytest.raises(ValueError, match="n must be"):
        list(synth_questions(-1))


def test_synth_round_trips_through_the_reader(tmp_path: Path) -> None:
    questions = list(synth_questions(500, seed=3))
    for name in ("s.csv", "s.csv.gz"):
        assert write_zhang_csv(questions, tmp_path / name) == 500
        data = open_dataset(tmp_path / name)
        assert fields(list(data)) == fields(questions)
        assert data.report.skipped_total == 0


def test_writer_output_is_exactly_zhang() -> None:
    out = io.StringIO()
    question = Question('Say "hi", then', "two\nlines\r\nand \\ slash", "ok", category=4)
    write_zhang([question], out)
    assert out.getvalue() == '"4","Say ""hi"", then","two\\nlines\\nand \\ slash","ok"\n'


def test_writer_refuses_what_the_format_cannot_hold(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="backslash-n"):
        escape("a literal \\n")
    with pytest.raises(ValueError, match="category"):
        write_zhang_csv([Question("t", "", "a")], tmp_path / "x.csv")


# Text the format can hold: anything without a literal backslash-n (see zhang.escape).
texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60).filter(lambda s: "\\n" not in s)


def expected(text: str) -> str:
    """As read back: newlines normalised, the core text policy applied (control characters go), trimmed."""
    return clean(text.replace("\r\n", "\n").replace("\r", "\n")).strip()


@settings(max_examples=150, deadline=None)
@given(title=texts, content=texts, answer=texts, category=st.sampled_from(list(CATEGORIES)))
def test_round_trip_of_arbitrary_text(
    tmp_path_factory: pytest.TempPathFactory, title: str, content: str, answer: str, category: int
) -> None:
    path = tmp_path_factory.mktemp("rt") / "rt.csv"
    write_zhang_csv([Question(title, content, answer, category=category)], path)
    data = open_dataset(path, fmt="zhang")
    back = list(data)
    assert data.report.rows == 1
    if not expected(title) or not expected(answer):
        assert back == []
        assert data.report.skipped_total == 1
    else:
        assert fields(back) == [(expected(title), expected(content), expected(answer), category)]


@given(st.text(max_size=40).filter(lambda s: "\\n" not in s))
def test_unescape_inverts_escape(text: str) -> None:
    assert unescape(escape(text)) == text.replace("\r\n", "\n").replace("\r", "\n")


def test_cli_synth_to_stdout_and_file(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(dataset_cli, ["synth", "--n", "5", "--seed", "2"])
    assert result.exit_code == 0, result.output
    assert len(result.output.splitlines()) == 5
    assert result.output.startswith('"')
    out = tmp_path / "s.csv"
    result = runner.invoke(dataset_cli, ["synth", "--n", "5", "--seed", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text(encoding="utf-8") == runner.invoke(dataset_cli, ["synth", "--n", "5", "--seed", "2"]).stdout
    inspect = runner.invoke(dataset_cli, ["inspect", str(out)])
    assert inspect.exit_code == 0
    assert "questions" in inspect.output
