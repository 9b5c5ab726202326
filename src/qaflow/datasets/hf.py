"""The Hugging Face ``yahoo_answers_topics`` layout, as CSV with a header or as JSON Lines.

Columns ``id, topic, question_title, question_content, best_answer``; ``topic`` is 0-9 there
and becomes our 1-10. The Hugging Face copy keeps Zhang's texts unchanged, ``\\n`` escapes
included, so they are unescaped the same way. ``id`` is not used: qaflow's id is the hash of
the text.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Generator, Mapping, Sequence
from contextlib import closing
from pathlib import Path

from qaflow.core.errors import DatasetError
from qaflow.datasets.lines import read_csv_rows, read_lines
from qaflow.datasets.rows import RawQuestion, Skip, parse_category
from qaflow.datasets.zhang import unescape

logger = logging.getLogger(__name__)

TOPIC = "topic"
TITLE = "question_title"
CONTENT = "question_content"
ANSWER = "best_answer"
REQUIRED = (TOPIC, TITLE, CONTENT, ANSWER)
HEADER = ("id", *REQUIRED)


def is_header(row: Sequence[str]) -> bool:
    """True if a CSV row is a Hugging Face header (holds every required column name)."""
    return set(REQUIRED) <= {cell.strip() for cell in row}


def _decode(record: Mapping[str, object]) -> RawQuestion | Skip:
    if any(name not in record for name in REQUIRED):
        return Skip.MISSING_FIELD
    category = parse_category(record[TOPIC], base=0)
    if category is None:
        return Skip.BAD_CATEGORY
    texts = [record[name] for name in (TITLE, CONTENT, ANSWER)]
    texts = ["" if text is None else text for text in texts]
    if not all(isinstance(text, str) for text in texts):
        return Skip.BAD_FIELD
    title, content, answer = (unescape(str(text)) for text in texts)
    return RawQuestion(category, title, content, answer)


def read_hf_csv(path: Path) -> Generator[tuple[int, RawQuestion | Skip], None, None]:
    """Records of a Hugging Face CSV. The first record must be the header."""
    rows = read_csv_rows(path)
    with closing(rows):
        first = next(rows, None)
        if first is None:
            return
        line, header = first
        if isinstance(header, Skip) or not is_header(header):
            reason = f"expected a header with columns {', '.join(HEADER)}; got {header[:5]}"
            raise DatasetError(str(path), line, reason)
        names = [cell.strip() for cell in header]
        for line, row in rows:
            if isinstance(row, Skip):
                yield line, row
            elif len(row) < len(names):
                yield line, Skip.SHORT_ROW
            elif len(row) > len(names):
                yield line, Skip.EXTRA_COLUMNS
            else:
                yield line, _decode(dict(zip(names, row, strict=True)))


def read_hf_jsonl(path: Path) -> Generator[tuple[int, RawQuestion | Skip], None, None]:
    """Records of a JSON Lines file, one object per line; blank lines are passed over."""
    with closing(read_lines(path)) as lines:
        for line, text in enumerate(lines, start=1):
            if not text.strip():
                continue
            try:
                record = json.loads(text)
            except json.JSONDecodeError as exc:
                reason = f"not JSON ({exc.msg} at column {exc.colno}); expected one object per line"
                raise DatasetError(str(path), line, reason) from exc
            if isinstance(record, dict):
                yield line, _decode(record)
            else:
                yield line, Skip.NOT_OBJECT
