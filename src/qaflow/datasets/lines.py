"""Lines of a data-set file, streamed and decoded one at a time.

Decoding line by line (instead of letting a text wrapper decode 8 KiB chunks) is what lets a
bad byte be reported with its exact line number. A UTF-8 multi-byte sequence never contains
``\\n``, so splitting the raw bytes on it first is safe.
"""

from __future__ import annotations

import csv
import gzip
import io
import logging
import zlib
from collections.abc import Generator
from contextlib import closing
from pathlib import Path

from qaflow.core.errors import DatasetError
from qaflow.datasets.rows import Skip

logger = logging.getLogger(__name__)

_BOM = "\ufeff"
_FIELD_LIMIT = "field larger than field limit"  # the csv module's message (CPython Modules/_csv.c)


def is_gzip(path: Path) -> bool:
    return path.name.lower().endswith(".gz")


def base_suffix(path: Path) -> str:
    """The suffix that names the format, looking through a ``.gz``: ``a.jsonl.gz`` -> ``.jsonl``."""
    name = path.name.lower().removesuffix(".gz")
    return Path(name).suffix


def _open(path: Path) -> io.BufferedIOBase:
    try:
        if is_gzip(path):
            return gzip.open(path, "rb")
        return path.open("rb")
    except OSError as exc:
        raise DatasetError(str(path), None, exc.strerror or str(exc)) from exc


def read_lines(path: Path) -> Generator[str, None, None]:
    """Each line of ``path`` as text with its line ending kept (what ``csv`` expects).

    Raises :class:`DatasetError` naming the line for bytes that are not UTF-8 and for a
    corrupt or truncated gzip stream.
    """
    number = 0
    with _open(path) as raw:
        try:
            for number, line in enumerate(raw, start=1):
                try:
                    text = line.decode("utf-8")
                except UnicodeDecodeError as exc:
                    bad = line[exc.start : exc.start + 1]
                    reason = f"not valid UTF-8 (byte {bad!r} at column {exc.start + 1})"
                    raise DatasetError(str(path), number, reason) from exc
                yield text.removeprefix(_BOM) if number == 1 else text
        except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
            raise DatasetError(str(path), number + 1, f"corrupt gzip data: {exc}") from exc


def read_csv_rows(path: Path) -> Generator[tuple[int, list[str] | Skip], None, None]:
    """Each CSV record of ``path`` with the line it starts on; blank lines are passed over.

    ``strict`` makes a stray or unterminated quote an error instead of a field that silently
    swallows the rest of the file. A field over the csv module's limit
    (``csv.field_size_limit()``, 131,072 characters by default) is one row's problem, not the
    file's: the record is given as :attr:`Skip.TOO_LONG` and reading goes on with the next
    line (the parser drops the rest of the line it was on; if the huge field went on over
    more lines, those come out as rows of their own and are skipped by the row policy).
    """
    with closing(read_lines(path)) as lines:
        reader = csv.reader(lines, strict=True)
        start = 1
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                if _FIELD_LIMIT in str(exc):
                    logger.debug("%s:%d: %s", path, start, exc)
                    yield start, Skip.TOO_LONG
                    start = reader.line_num + 1
                    continue
                seen = reader.line_num
                reason = f"bad CSV: {exc}"
                if seen > start:
                    reason += f" (record starts here, error seen at line {seen})"
                raise DatasetError(str(path), start, reason) from exc
            line, start = start, reader.line_num + 1
            if row:
                yield line, row
