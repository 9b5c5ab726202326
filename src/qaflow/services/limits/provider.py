"""An LLM provider wrapped in the llm-worker's limits, so the answer stage stays unchanged.

Before a call: wait while a Retry-After pause holds, then for a slot of the shared
requests-per-minute quota. After it: every outcome feeds the AIMD limiter, which judges
the share of 429s (a quota cuts the limit and pauses new calls for its Retry-After). The
error itself is re-raised untouched, so the answer stage routes it to its retry topic as
before. Every outcome is reported to a :class:`CallObserver` (the service's Prometheus metrics).
"""

from __future__ import annotations

import time
from typing import Protocol

from qaflow.core.errors import LlmError, QuotaExceededError
from qaflow.llm.base import LlmProvider, LlmReply, LlmRequest
from qaflow.services.limits.aimd import AimdLimiter
from qaflow.services.limits.rpm import RpmLimiter


class CallObserver(Protocol):
    def call_started(self) -> None: ...

    def call_finished(self, outcome: str, error_class: str, seconds: float, reply: LlmReply | None) -> None: ...

    def waited(self, reason: str, seconds: float) -> None: ...


class NullObserver:
    def call_started(self) -> None:
        pass

    def call_finished(self, outcome: str, error_class: str, seconds: float, reply: LlmReply | None) -> None:
        pass

    def waited(self, reason: str, seconds: float) -> None:
        pass


class LimitedProvider:
    def __init__(
        self,
        inner: LlmProvider,
        aimd: AimdLimiter | None = None,
        rpm: RpmLimiter | None = None,
        observer: CallObserver | None = None,
        *,
        retry_after_cap_s: float = 300.0,
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self.aimd = aimd
        self.rpm = rpm
        self.observer: CallObserver = observer or NullObserver()
        self.retry_after_cap_s = retry_after_cap_s

    def start(self) -> None:
        self.inner.start()

    def close(self) -> None:
        if self.rpm is not None:
            self.rpm.close()
        self.inner.close()

    def _wait_for_turn(self) -> None:
        if self.aimd is not None and (waited := self.aimd.wait_until_open()):
            self.observer.waited("retry_after", waited)
        if self.rpm is not None and (waited := self.rpm.acquire()):
            self.observer.waited("rpm", waited)

    def generate(self, request: LlmRequest) -> LlmReply:
        self._wait_for_turn()
        clock = self.aimd.clock if self.aimd is not None else time.monotonic
        started = clock()
        self.observer.call_started()
        try:
            reply = self.inner.generate(request)
        except LlmError as exc:
            seconds = clock() - started
            if isinstance(exc, QuotaExceededError) and self.aimd is not None:
                pause = None if exc.retry_after_s is None else min(exc.retry_after_s, self.retry_after_cap_s)
                self.aimd.on_quota(started, pause)
            elif self.aimd is not None:
                self.aimd.on_error(started)
            self.observer.call_finished("error", exc.error_class.value, seconds, None)
            raise
        except Exception:
            self.observer.call_finished("error", "unexpected", clock() - started, None)
            raise
        seconds = clock() - started
        if self.aimd is not None:
            self.aimd.on_success(started)
        self.observer.call_finished("ok", "", seconds, reply)
        return reply
