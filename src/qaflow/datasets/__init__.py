"""Question data sets: streaming readers, the row policy, and a synthetic generator.

>>> data = open_dataset("data/sample.csv", limit=5)   # doctest: +SKIP
>>> for question in data: ...                          # doctest: +SKIP
>>> data.report.summary()                              # doctest: +SKIP

Formats: ``zhang`` (Yahoo! Answers CSV of Zhang et al., 2015), ``hf-csv`` and ``hf-jsonl``
(the Hugging Face ``yahoo_answers_topics`` layout). Any of them may be gzip-compressed.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Callable, Generator, Iterator
from contextlib import closing
from pathlib import Path

from qaflow.core.errors import DatasetError
from qaflow.core.question import Question
from qaflow.datasets import hf, zhang
from qaflow.datasets.lines import base_suffix, read_lines
from qaflow.datasets.rows import LoadReport, RawQuestion, Skip, repair_row, to_question

logger = logging.getLogger(__name__)

Reader = Callable[[Path], Generator[tuple[int, RawQuestion | Skip], None, None]]
READERS: dict[str, Reader] = {
    "zhang": zhang.read_zhang,
    "hf-csv": hf.read_hf_csv,
    "hf-jsonl": hf.read_hf_jsonl,
}
FORMATS = ("auto", *READERS)

__all__ = [
    "FORMATS",
    "Dataset",
    "LoadReport",
    "Skip",
    "detect_format",
    "open_dataset",
]


def detect_format(path: Path) -> str:
    """``.jsonl``/``.json`` is JSON Lines; a CSV whose first row is the HF header is HF CSV;
    anything else is read as Zhang's CSV. Looks through ``.gz``."""
    if base_suffix(path) in (".jsonl", ".json"):
        return "hf-jsonl"
    with closing(read_lines(path)) as lines:
        first = next(lines, "")
    try:
        row = next(csv.reader([first]), [])
    except csv.Error:
        row = []  # e.g. a quoted field that spans lines: not a header, so not HF
    return "hf-csv" if hf.is_header(row) else "zhang"


class Dataset:
    """A data-set file, read lazily: each iteration streams it again from the start.

    ``report`` describes the latest (or current) pass: rows read, questions yielded, and
    skipped rows by reason. A malformed file raises :class:`DatasetError` while iterating.
    """

    def __init__(self, path: Path, fmt: str, limit: int | None = None) -> None:
        self.path = path
        self.fmt = fmt
        self.limit = limit
        self.report = LoadReport(path=str(path), fmt=fmt)

    def __repr__(self) -> str:
        return f"Dataset({str(self.path)!r}, fmt={self.fmt!r}, limit={self.limit!r})"

    def __iter__(self) -> Iterator[Question]:
        report = self.report = LoadReport(path=str(self.path), fmt=self.fmt)
        if self.limit == 0:
            return
        name = self.path.name
        with closing(READERS[self.fmt](self.path)) as records:
            for line, record in records:
                report.rows += 1
                source = f"{name}:{line}"
                if not isinstance(record, Skip):
                    record, changes = repair_row(record)
                    if changes:
                        report.count_repair(changes, source)
                result = record if isinstance(record, Skip) else to_question(record, source)
                if isinstance(result, Skip):
                    report.count_skip(result, source)
                    continue
                report.count_question(result)
                yield result
                if self.limit is not None and report.questions >= self.limit:
                    break
            else:
                report.complete = True
        logger.info("read %s", report.summary())


def open_dataset(path: str | Path, *, limit: int | None = None, fmt: str = "auto") -> Dataset:
    """Open a data set for streaming. Fails fast on a missing file or an unknown format.

    ``limit`` caps the questions yielded (skipped rows do not count towards it).
    """
    target = Path(path)
    if fmt not in FORMATS:
        msg = f"unknown data-set format {fmt!r}; choose one of {', '.join(FORMATS)}"
        raise ValueError(msg)
    if limit is not None and limit < 0:
        msg = f"limit must be >= 0, got {limit}"
        raise ValueError(msg)
    if not target.is_file():
        raise DatasetError(str(target), None, "no such file")
    if fmt == "auto":
        fmt = detect_format(target)
        logger.debug("%s: detected format %s", target, fmt)
    return Dataset(target, fmt, limit)
