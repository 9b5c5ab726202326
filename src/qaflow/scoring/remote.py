"""Client of the scorer service: the model runs elsewhere (its own, perhaps GPU, nodes).

Wire format: ``GET /v1/info`` -> ``{"scorer": {identity}}``;
``POST /v1/score`` with ``{"pairs": [{"candidate": ..., "reference": ...}]}`` ->
``{"scores": [...], "scorer": {identity}}``. The identity sent with the scores is the one
kept, so scores stay labelled correctly across a rolling update of the service.

Failures raise :class:`ScoringError` with ``retriable`` set: unreachable service, timeouts,
429 and 5xx may pass on a retry; other 4xx and malformed replies will not.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import requests

from qaflow.core.errors import ScoringError
from qaflow.core.settings import ScorerSettings
from qaflow.scoring import check_pairs

logger = logging.getLogger(__name__)

EXCERPT_CHARS = 200


def _error(message: str, *, retriable: bool) -> ScoringError:
    exc = ScoringError(message)
    exc.retriable = retriable
    return exc


def _identity(body: Any, url: str) -> dict[str, str]:
    scorer = body.get("scorer") if isinstance(body, dict) else None
    if not isinstance(scorer, dict) or not scorer:
        msg = f"{url}: reply has no 'scorer' object"
        raise _error(msg, retriable=False)
    return {str(k): str(v) for k, v in scorer.items()}


def _finite(score: Any) -> bool:
    """A JSON number that is a finite float; an integer too large for a float is not one."""
    if not isinstance(score, int | float) or isinstance(score, bool):
        return False
    try:
        return math.isfinite(score)
    except OverflowError:  # math.isfinite(10**400): "int too large to convert to float"
        return False


class RemoteScorer:
    name = "remote"

    def __init__(self, settings: ScorerSettings) -> None:
        self.settings = settings
        self.base_url = settings.scorer_url.rstrip("/")
        self._session: requests.Session | None = None
        self._identity: dict[str, str] = {}

    @property
    def identity(self) -> dict[str, str]:
        if not self._identity:
            msg = "RemoteScorer.start() has not run"
            raise ScoringError(msg)
        return dict(self._identity)

    def start(self) -> None:
        if self._session is None:
            self._session = requests.Session()
        url = f"{self.base_url}/v1/info"
        self._identity = _identity(self._call("GET", url), url)
        logger.info("remote scorer %s: %s", self.base_url, self._identity)

    def score(self, candidates: Sequence[str], references: Sequence[str]) -> list[float]:
        check_pairs(candidates, references)
        if not candidates:
            return []
        url = f"{self.base_url}/v1/score"
        pairs = [{"candidate": c, "reference": r} for c, r in zip(candidates, references, strict=True)]
        body = self._call("POST", url, json={"pairs": pairs})
        scores = body.get("scores") if isinstance(body, dict) else None
        if not isinstance(scores, list) or len(scores) != len(pairs) or not all(_finite(s) for s in scores):
            msg = f"{url}: expected {len(pairs)} finite scores, got {str(scores)[:EXCERPT_CHARS]}"
            raise _error(msg, retriable=False)
        self._identity = _identity(body, url)
        return [float(s) for s in scores]

    def _call(self, method: str, url: str, **kwargs: Any) -> Any:
        if self._session is None:
            msg = "RemoteScorer.start() has not run"
            raise ScoringError(msg)
        try:
            reply = self._session.request(method, url, timeout=self.settings.scorer_timeout_s, **kwargs)
        except requests.Timeout as exc:
            msg = f"{method} {url}: no reply in {self.settings.scorer_timeout_s}s"
            raise _error(msg, retriable=True) from exc
        except requests.RequestException as exc:
            msg = f"{method} {url}: {exc}"
            raise _error(msg, retriable=True) from exc
        if reply.status_code >= 400:
            excerpt = " ".join(reply.text.split())[:EXCERPT_CHARS]
            retriable = reply.status_code == 429 or reply.status_code >= 500
            msg = f"{method} {url}: HTTP {reply.status_code}: {excerpt}"
            raise _error(msg, retriable=retriable)
        try:
            return reply.json()
        except ValueError as exc:
            excerpt = " ".join(reply.text.split())[:EXCERPT_CHARS]
            msg = f"{method} {url}: reply is not JSON: {excerpt}"
            raise _error(msg, retriable=False) from exc

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None
