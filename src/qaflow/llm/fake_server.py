"""A fake LLM server that speaks the OpenAI, Gemini and Ollama wire formats.

No machine here reaches a real LLM, so the real HTTP clients are tested against this
server, in process (``start()``/``stop()``/``url``) or as ``qaflow fake-llm serve``. Its
knobs reproduce what real providers do under load: latency, a concurrency cap (excess
requests queue FIFO, or get 503), a requests-per-minute quota over a sliding window (429
with Retry-After, and Gemini's RetryInfo), and random 429/503/timeouts/malformed/400 drawn
from ``seed`` and a per-request counter. Given a data set (``references=``, or ``--references``
on the command line), it answers the questions it holds with the offline simulator's quality
model (:mod:`qaflow.llm.fake_quality`), so regeneration pays off as in ``qaflow run``; other
questions get an echo of the question. ``GET /_stats`` counts what happened; ``POST /_reset``
clears the counts (and the generations counted per question).

Scripted mode replays exact replies, for reply shapes the knobs cannot make (an error object
inside a 200, a stream, an HTML page, a 503 with an HTTP-date Retry-After):
``server.script([Scripted(200, body={...}), Scripted(503, {"Retry-After": "5"}, "busy")])``,
or ``POST /_script`` with a JSON list of ``{"status", "headers", "body", "delay_s"}``. Each
chat call takes the next reply, whatever its wire format; once the list is used up the
server answers as its knobs say. A ``str`` body is sent as it is; anything else as JSON.
"""

from __future__ import annotations

import collections
import hashlib
import json
import logging
import math
import random
import re
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from qaflow.llm.fake_quality import ReferenceBook

logger = logging.getLogger(__name__)

GEMINI_PREFIX, GEMINI_SUFFIX = "/v1beta/models/", ":generateContent"
ROUTES = {"/v1/chat/completions": "openai", "/api/chat": "ollama"}
_GOOGLE_STATUS = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 429: "RESOURCE_EXHAUSTED",
                  503: "UNAVAILABLE"}
_QUESTION = re.compile(r"^(Question|Pregunta):\s*(.+)$", re.MULTILINE)


@dataclass
class Knobs:
    latency_ms: float = 0.0  # per request, inside the concurrency slot
    concurrency: int = 0  # requests processed at once; 0 = unlimited
    reject_over_capacity: bool = False  # 503 instead of queueing past the cap
    rpm: int = 0  # requests per sliding window; 0 = unlimited
    rpm_window_s: float = 60.0
    rate_429: float = 0.0
    retry_after_s: float = 1.0  # Retry-After of the random 429s
    rate_503: float = 0.0
    rate_timeout: float = 0.0
    timeout_sleep_s: float = 30.0  # a "timeout" answers only after this long
    rate_malformed: float = 0.0
    rate_400: float = 0.0
    seed: int = 0
    api_key: str | None = None  # when set, OpenAI and Gemini calls must send it

    def __post_init__(self) -> None:
        rates = (self.rate_429, self.rate_503, self.rate_timeout, self.rate_malformed, self.rate_400)
        if any(not 0.0 <= r <= 1.0 for r in rates) or sum(rates) > 1.0:
            msg = "fault rates must lie in [0, 1] and add up to at most 1"
            raise ValueError(msg)


@dataclass(frozen=True)
class Scripted:
    """One reply to replay: status, headers, body (``str`` as is, else JSON) and a delay before it."""

    status: int = 200
    headers: dict[str, str] | None = None
    body: Any = ""
    delay_s: float = 0.0

    def response(self) -> Response:
        text = self.body if isinstance(self.body, str) else json.dumps(self.body)
        headers = dict(self.headers or {})
        mimetype = None if "Content-Type" in headers else (
            "application/json" if not isinstance(self.body, str) else "text/plain")
        return Response(text, status=self.status, headers=headers, mimetype=mimetype)


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # counted in /_stats instead


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json", headers=headers)


def _error(fmt: str, status: int, message: str, retry_after_s: float | None = None) -> Response:
    headers = {"Retry-After": str(math.ceil(retry_after_s))} if retry_after_s is not None else None
    body: dict[str, Any]
    if fmt == "gemini":
        body = {"error": {"code": status, "message": message, "status": _GOOGLE_STATUS.get(status, "UNKNOWN")}}
        if retry_after_s is not None:
            body["error"]["details"] = [{"@type": "type.googleapis.com/google.rpc.RetryInfo",
                                         "retryDelay": f"{math.ceil(retry_after_s)}s"}]
    elif fmt == "openai":
        body = {"error": {"message": message, "type": "fake_error", "code": status}}
    else:
        body = {"error": message}
    return _json(body, status, headers)


def _prompt(fmt: str, body: Any) -> str:
    if fmt == "gemini":
        return "".join(part.get("text", "") for part in body["contents"][-1]["parts"])
    content = body["messages"][-1]["content"]
    return content if isinstance(content, str) else " ".join(p.get("text", "") for p in content)


def _echo_answer(prompt: str) -> str:
    found = _QUESTION.search(prompt)
    question = (found.group(2) if found else prompt.strip().split("\n")[0])[:120]
    if found and found.group(1) == "Pregunta":
        return f"Sobre «{question}»: depende de los detalles, pero lo habitual es empezar por lo simple."
    return f"About \"{question}\": it depends on the details, but the usual advice is to start simple."


def _reply(fmt: str, model: str, text: str, prompt_tokens: int, malformed: bool) -> Response:
    n = len(text.split())
    if fmt == "gemini":
        usage = {"promptTokenCount": prompt_tokens, "candidatesTokenCount": n}
        return _json({"usageMetadata": usage} if malformed else {
            "candidates": [{"content": {"role": "model", "parts": [{"text": text}]},
                            "finishReason": "STOP", "index": 0}],
            "usageMetadata": usage, "modelVersion": model})
    if fmt == "openai":
        return _json({"id": "chatcmpl-fake", "object": "chat.completion", "model": model, "choices": []}
                     if malformed else {
            "id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": n,
                      "total_tokens": prompt_tokens + n}})
    return _json({"model": model, "done": True} if malformed else {
        "model": model, "message": {"role": "assistant", "content": text}, "done": True,
        "done_reason": "stop", "prompt_eval_count": prompt_tokens, "eval_count": n})


class FakeLlmServer:
    """``FakeLlmServer(port=0, latency_ms=50, concurrency=4, rpm=600)``; knobs may be
    replaced while it runs (``server.knobs = Knobs(...)``). ``references`` makes the answers to
    the questions it holds follow the offline simulator's quality model."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, references: ReferenceBook | None = None,
                 **knobs: Any) -> None:
        self.host, self.port = host, port
        self.references = references
        self.knobs = Knobs(**knobs)
        self._cond = threading.Condition()
        self._queue: collections.deque[object] = collections.deque()
        self._stopping = threading.Event()
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._in_flight = self._epoch = 0
        self._script: collections.deque[Scripted] = collections.deque()
        self._reset()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> FakeLlmServer:
        self._stopping.clear()
        self._server = make_server(self.host, self.port, self._app, threaded=True, request_handler=_QuietHandler)
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"fake-llm-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = self._thread = None

    def __enter__(self) -> FakeLlmServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def script(self, replies: list[Scripted]) -> FakeLlmServer:
        """Replay ``replies`` in order, one per chat call, before answering by the knobs again."""
        with self._cond:
            self._script = collections.deque(replies)
        return self

    def _next_scripted(self) -> Scripted | None:
        with self._cond:
            return self._script.popleft() if self._script else None

    def _reset(self) -> None:
        with self._cond:
            self._epoch += 1  # requests that arrived before a reset go uncounted
            self._seq = 0
            self._window: collections.deque[float] = collections.deque()
            self._by_status: collections.Counter[str] = collections.Counter()
            self._by_format: collections.Counter[str] = collections.Counter()
            self._faults: collections.Counter[str] = collections.Counter()
            self._max_concurrent = self._in_flight
        if self.references is not None:
            self.references.reset()

    def stats(self) -> dict[str, Any]:
        with self._cond:
            return {"total": sum(self._by_format.values()), "by_status": dict(self._by_status),
                    "by_format": dict(self._by_format), "faults": dict(self._faults),
                    "max_concurrent": self._max_concurrent, "in_flight": self._in_flight,
                    "references": len(self.references) if self.references is not None else 0,
                    "knobs": {k: v for k, v in asdict(self.knobs).items() if k != "api_key"}}

    def _app(self, environ: Any, start_response: Any) -> Any:
        request = Request(environ)
        epoch = self._epoch
        if request.path == "/_stats":
            return _json(self.stats())(environ, start_response)
        if request.path == "/_reset" and request.method == "POST":
            self._reset()
            return _json({"reset": True})(environ, start_response)
        if request.path == "/_script" and request.method == "POST":
            try:
                entries = [Scripted(**entry) for entry in json.loads(request.get_data(as_text=True))]
            except (ValueError, TypeError) as exc:
                return _json({"error": f"a script is a JSON list of replies: {exc}"}, 400)(environ, start_response)
            self.script(entries)
            return _json({"scripted": len(entries)})(environ, start_response)
        path = request.path
        is_gemini = path.startswith(GEMINI_PREFIX) and path.endswith(GEMINI_SUFFIX)
        fmt = "gemini" if is_gemini else ROUTES.get(path, "")
        if not fmt:
            response = _json({"error": f"no route {path}"}, 404)
        elif request.method != "POST":
            response = _error(fmt, 405, "use POST")
        else:
            with self._cond:
                self._by_format[fmt] += 1
            response = self._handle(fmt, request, epoch)
        with self._cond:
            if epoch == self._epoch:
                self._by_status[str(response.status_code)] += 1
        return response(environ, start_response)

    def _quota(self) -> float | None:
        """Seconds until the sliding window has room, or ``None`` (and the call is counted)."""
        knobs, now = self.knobs, time.monotonic()
        with self._cond:
            while self._window and self._window[0] <= now - knobs.rpm_window_s:
                self._window.popleft()
            if knobs.rpm and len(self._window) >= knobs.rpm:
                return max(1.0, self._window[0] + knobs.rpm_window_s - now)
            self._window.append(now)
            return None

    def _acquire(self) -> bool:
        """Wait for a concurrency slot, first come first served; ``False`` to reject."""
        me = object()
        with self._cond:
            cap = self.knobs.concurrency
            if cap and (self._in_flight >= cap or self._queue):
                if self.knobs.reject_over_capacity:
                    return False
                self._queue.append(me)
                while not self._stopping.is_set() and (self._queue[0] is not me or self._in_flight >= cap):
                    self._cond.wait()
                self._queue.remove(me)
            self._in_flight += 1
            self._max_concurrent = max(self._max_concurrent, self._in_flight)
            self._cond.notify_all()
            return True

    def _release(self) -> None:
        with self._cond:
            self._in_flight -= 1
            self._cond.notify_all()

    def _handle(self, fmt: str, request: Request, epoch: int) -> Response:
        knobs = self.knobs
        request.get_data()  # read the body even when refusing, so a kept-alive connection stays in sync
        scripted = self._next_scripted()
        if scripted is not None:
            self._count_fault("scripted", epoch)
            if scripted.delay_s:
                self._stopping.wait(scripted.delay_s)
            return scripted.response()
        if knobs.api_key and fmt != "ollama":
            sent = request.headers.get("x-goog-api-key") if fmt == "gemini" else (
                request.headers.get("Authorization", "").removeprefix("Bearer "))
            if sent != knobs.api_key:
                return _error(fmt, 403 if fmt == "gemini" else 401, "missing or invalid API key")
        wait_s = self._quota()
        if wait_s is not None:
            self._count_fault("rpm", epoch)
            return _error(fmt, 429, f"quota of {knobs.rpm} requests per minute exceeded", wait_s)
        if not self._acquire():
            self._count_fault("over_capacity", epoch)
            return _error(fmt, 503, "over capacity")
        try:
            if knobs.latency_ms:
                self._stopping.wait(knobs.latency_ms / 1000.0)
            return self._respond(fmt, request, knobs, epoch)
        finally:
            self._release()

    def _count_fault(self, kind: str, epoch: int) -> None:
        with self._cond:
            if epoch == self._epoch:
                self._faults[kind] += 1

    def _respond(self, fmt: str, request: Request, knobs: Knobs, epoch: int) -> Response:
        with self._cond:
            seq, self._seq = self._seq, self._seq + 1
        digest = hashlib.sha256(f"{knobs.seed}\x1f{seq}".encode()).digest()
        u = random.Random(int.from_bytes(digest[:8], "big")).random()
        edge, fault = 0.0, ""
        for kind, rate in (("429", knobs.rate_429), ("503", knobs.rate_503), ("timeout", knobs.rate_timeout),
                           ("malformed", knobs.rate_malformed), ("400", knobs.rate_400)):
            edge += rate
            if u < edge:
                fault = kind
                self._count_fault(kind, epoch)
                break
        if fault == "429":
            return _error(fmt, 429, "resource exhausted", knobs.retry_after_s)
        if fault == "503":
            return _error(fmt, 503, "the model is overloaded, try again later")
        if fault == "400":
            return _error(fmt, 400, "invalid argument")
        if fault == "timeout":
            self._stopping.wait(knobs.timeout_sleep_s)
        try:
            body = json.loads(request.get_data(as_text=True))
            prompt = _prompt(fmt, body)
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            return _error(fmt, 400, "request body is not a valid chat request")
        model = request.path[len(GEMINI_PREFIX):-len(GEMINI_SUFFIX)] if fmt == "gemini" else str(
            body.get("model", "fake"))
        text = None
        if self.references is not None and not fault:  # only answers the client receives count
            text = self.references.answer(prompt)
        return _reply(fmt, model, text or _echo_answer(prompt), len(prompt.split()), fault == "malformed")
