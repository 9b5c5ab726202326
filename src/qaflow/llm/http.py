"""HTTP plumbing shared by the real LLM clients: sessions, timeouts and error mapping.

Errors map to the retry paths of :mod:`qaflow.core.errors`: 429 is quota (with the
server's Retry-After, or Gemini's ``google.rpc.RetryInfo``), 5xx/529 and refused
connections are overload, 408 and client timeouts are timeouts, other 4xx and replies
without the expected fields are permanent. A Retry-After header is kept on every retriable
error (the retry policy honours it for every class, capped). A 2xx body is classified by
:mod:`qaflow.llm.replies` (empty, HTML, streamed, an error object inside) before it is read.
API keys never reach a message or a log line.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from qaflow.core.errors import (
    LlmError,
    LlmTimeoutError,
    OverloadedError,
    PermanentLlmError,
    QuotaExceededError,
)
from qaflow.core.settings import LlmSettings
from qaflow.llm.base import LlmReply, LlmRequest
from qaflow.llm.replies import Parsed, decode_body, error_in_body
from qaflow.plumbing.reach import why
from qaflow.plumbing.sessions import SessionPool

logger = logging.getLogger(__name__)

OVERLOAD_STATUSES = frozenset({500, 502, 503, 504, 529})
RETRY_INFO_TYPE = "type.googleapis.com/google.rpc.RetryInfo"
EXCERPT_CHARS = 200


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP-date), or ``None``."""
    if not value or not value.strip():
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        try:
            when = parsedate_to_datetime(value.strip())
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None


def retry_delay_from_body(body: Any) -> float | None:
    """``retryDelay`` ("12s", "1.5s") of a Gemini ``google.rpc.RetryInfo`` error detail."""
    if isinstance(body, list) and body:
        body = body[0]
    error = body.get("error") if isinstance(body, dict) else None
    details = error.get("details") if isinstance(error, dict) else None
    for detail in details if isinstance(details, list) else ():
        if isinstance(detail, dict) and detail.get("@type") == RETRY_INFO_TYPE:
            delay = str(detail.get("retryDelay", "")).strip()
            try:
                seconds = float(delay.removesuffix("s"))
            except ValueError:
                return None
            return max(0.0, seconds) if math.isfinite(seconds) else None
    return None


def excerpt(text: str, secrets: Iterable[str] = ()) -> str:
    """A short, single-line piece of a reply body, with any secret blanked out."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    text = " ".join(text.split())
    return text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS] + "…"


def error_for_status(
    status: int, headers: Mapping[str, str], body: str, *, provider: str, secrets: Iterable[str] = ()
) -> LlmError:
    """The error for a non-2xx reply."""
    message = f"{provider}: HTTP {status}: {excerpt(body, secrets)}"
    retry_after = parse_retry_after(headers.get("Retry-After"))
    if status == 429:
        if retry_after is None:
            try:
                retry_after = retry_delay_from_body(json.loads(body))
            except ValueError:
                retry_after = None
        return QuotaExceededError(message, status=status, retry_after_s=retry_after)
    if status in OVERLOAD_STATUSES:
        return OverloadedError(message, status=status, retry_after_s=retry_after)
    if status == 408:
        return LlmTimeoutError(message, status=status, retry_after_s=retry_after)
    return PermanentLlmError(message, status=status)


def malformed(provider: str, detail: str) -> PermanentLlmError:
    return PermanentLlmError(f"malformed reply: {detail} ({provider})")


def _adapter() -> HTTPAdapter:
    return HTTPAdapter(pool_connections=1, pool_maxsize=2, max_retries=0)


class HttpClient:
    """POSTs JSON with one ``requests.Session`` per calling thread (:class:`SessionPool`), so
    N calls in flight never share a connection pool."""

    def __init__(self, provider: str, *, connect_timeout_s: float, read_timeout_s: float,
                 secrets: Iterable[str] = ()) -> None:
        self._provider = provider
        self._timeout = (connect_timeout_s, read_timeout_s)
        self._secrets = tuple(s for s in secrets if s)
        self._sessions = SessionPool(adapter=_adapter)

    def _session(self) -> requests.Session:
        return self._sessions.session()

    def post(self, url: str, payload: Any, headers: Mapping[str, str] | None = None
             ) -> tuple[int, Mapping[str, str], str, float]:
        """Status, headers and body (decoded as UTF-8) of the reply, and the call's latency in
        ms; an :class:`LlmError` when no reply came (timeout, refused connection)."""
        p = self._provider
        started = time.perf_counter()
        try:
            response = self._session().post(url, json=payload, headers=dict(headers or {}),
                                            timeout=self._timeout)
        except requests.Timeout as exc:
            msg = f"{p}: no answer from {url} within {self._timeout[1]:g}s ({type(exc).__name__})"
            raise LlmTimeoutError(msg) from exc
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
            msg = f"{p}: connection to {url} failed ({why(exc, self._timeout[0])})"  # "connection refused", ...
            raise OverloadedError(msg) from exc
        except requests.RequestException as exc:
            msg = f"{p}: cannot call {url} ({type(exc).__name__}: {excerpt(str(exc), self._secrets)})"
            raise PermanentLlmError(msg) from exc
        latency_ms = (time.perf_counter() - started) * 1000.0
        with response:
            text = response.content.decode("utf-8", errors="replace")  # JSON is UTF-8 (RFC 8259)
            return response.status_code, response.headers, text, latency_ms

    def close(self) -> None:
        self._sessions.close()


def token_count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


class HttpProvider:
    """Base of the real clients: a subclass builds the call and reads the reply."""

    name = ""

    def __init__(self, settings: LlmSettings) -> None:
        self.settings = settings
        self.model = settings.model
        self.api_key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else ""
        self._http = HttpClient(self.name, connect_timeout_s=settings.llm_connect_timeout_s,
                                read_timeout_s=settings.llm_timeout_s, secrets=(self.api_key,))

    def start(self) -> None:
        logger.info("LLM provider %s, model %s at %s", self.name, self.model, self.settings.base_url)

    def close(self) -> None:
        self._http.close()

    def build(self, request: LlmRequest) -> tuple[str, dict[str, Any], dict[str, str]]:
        """URL, JSON body and headers of the call."""
        raise NotImplementedError

    def parse(self, data: Any) -> Parsed:
        """Answer text, finish reason and token counts of a decoded reply, or an :class:`LlmError`."""
        raise NotImplementedError

    def read(self, status: int, headers: Mapping[str, str], body: str) -> Parsed:
        """A reply, whatever its shape, as an answer or the :class:`LlmError` it stands for.

        Pure: the table of reply shapes in :mod:`qaflow.llm.replies` is tested through it.
        """
        secrets = (self.api_key,) if self.api_key else ()
        if not 200 <= status < 300:
            raise error_for_status(status, headers, body, provider=self.name, secrets=secrets)
        try:
            data = decode_body(body, self.name)
        except PermanentLlmError as exc:
            raise PermanentLlmError(excerpt(str(exc), secrets)) from None
        error = error_in_body(data, self.name, parse_retry_after(headers.get("Retry-After")))
        if error is not None:
            raise error
        try:
            parsed = self.parse(data)
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise malformed(self.name, f"{type(exc).__name__}: {exc}") from exc
        if not isinstance(parsed.text, str) or not parsed.text.strip():
            raise malformed(self.name, "empty answer")
        return parsed

    def generate(self, request: LlmRequest) -> LlmReply:
        url, payload, headers = self.build(request)
        status, reply_headers, body, latency_ms = self._http.post(url, payload, headers)
        parsed = self.read(status, reply_headers, body)
        text = parsed.text
        logger.debug("%s answered question_id=%s generation=%d delivery=%d in %.0f ms", self.name,
                     request.question_id, request.generation, request.delivery, latency_ms)
        return LlmReply(text=text.strip(), model=self.model, provider=self.name, latency_ms=latency_ms,
                        prompt_tokens=parsed.prompt_tokens, completion_tokens=parsed.completion_tokens,
                        finish_reason=parsed.finish_reason, truncated=parsed.truncated)
