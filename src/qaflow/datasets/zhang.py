"""The Yahoo! Answers CSV as published by Zhang, Zhao and LeCun (2015).

No header; four columns: class index (1-10), question title, question content, best answer.
Fields are double-quoted with ``""`` for a quote inside. A newline inside a field is written
as the two characters backslash and ``n``. Nothing else is escaped: any other backslash is
the text's own and is kept as it is. A literal backslash-n in the text therefore cannot be
told apart from a newline, which is why :func:`escape` refuses it.
"""

from __future__ import annotations

import csv
import gzip
import io
import logging
from collections.abc import Generator, Iterable
from pathlib import Path
from typing import TextIO

from qaflow.core.question import Question
from qaflow.datasets.lines import is_gzip, read_csv_rows
from qaflow.datasets.rows import RawQuestion, Skip, parse_category

logger = logging.getLogger(__name__)

COLUMNS = 4
_ESCAPED_NEWLINE = "\\n"


def unescape(text: str) -> str:
    """Zhang's ``\\n`` back to a real newline; every other backslash is left alone."""
    return text.replace(_ESCAPED_NEWLINE, "\n")


def escape(text: str) -> str:
    """A field as Zhang wrote it: newlines (``\\r\\n``, ``\\r`` or ``\\n``) become ``\\n``."""
    if _ESCAPED_NEWLINE in text:
        msg = "text holds a literal backslash-n, which the Zhang format cannot represent"
        raise ValueError(msg)
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", _ESCAPED_NEWLINE)


def read_zhang(path: Path) -> Generator[tuple[int, RawQuestion | Skip], None, None]:
    """Each record of a Zhang CSV with its line number, decoded or with the reason to skip."""
    for line, row in read_csv_rows(path):
        if isinstance(row, Skip):
            yield line, row
            continue
        if len(row) < COLUMNS:
            yield line, Skip.SHORT_ROW
            continue
        if len(row) > COLUMNS:
            yield line, Skip.EXTRA_COLUMNS
            continue
        category = parse_category(row[0], base=1)
        if category is None:
            yield line, Skip.BAD_CATEGORY
            continue
        title, content, answer = (unescape(field) for field in row[1:])
        yield line, RawQuestion(category, title, content, answer)


def _row(question: Question) -> list[str]:
    if question.category is None:
        msg = f"question {question.id} has no category; the Zhang format needs a class index"
        raise ValueError(msg)
    texts = (question.title, question.content, question.reference_answer)
    return [str(question.category), *(escape(text) for text in texts)]


def write_zhang(questions: Iterable[Question], out: TextIO) -> int:
    """Write ``questions`` to an open text stream exactly as Zhang's files are written.

    Every field quoted, ``""`` for a quote, ``\\n`` for a newline, ``\\n`` line endings.
    Returns the number of rows written.
    """
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
    count = 0
    for question in questions:
        writer.writerow(_row(question))
        count += 1
    return count


def write_zhang_csv(questions: Iterable[Question], path: Path | str) -> int:
    """Write ``questions`` to a Zhang CSV file (gzip-compressed if the name ends ``.gz``)."""
    target = Path(path)
    if is_gzip(target):
        with gzip.open(target, "wb") as raw, io.TextIOWrapper(raw, encoding="utf-8", newline="") as text:
            count = write_zhang(questions, text)
    else:
        with target.open("w", encoding="utf-8", newline="") as text:
            count = write_zhang(questions, text)
    logger.info("wrote %d questions to %s", count, target)
    return count
