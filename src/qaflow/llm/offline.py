"""The offline LLM simulator: deterministic answers of varying quality, and faults.

Clearly a simulator (provider ``offline``, model ``qaflow-offline-simulator``). Each answer is
built from the question's reference answer, degraded by a quality ``q`` drawn from a hash
of (question_id, generation, seed): a high ``q`` keeps the reference (lightly reordered,
with a lead-in), a middle ``q`` keeps part of it plus generic filler, a low ``q`` is generic
filler about the title's words. A later generation is a fresh draw, nudged upwards, so
regeneration visibly pays off. Faults are drawn from a hash that includes ``delivery``, so
a retried call gets a fresh draw and eventually succeeds.
"""

from __future__ import annotations

import hashlib
import logging
import random
import re
import time

from qaflow.core.errors import (
    LlmError,
    LlmTimeoutError,
    OverloadedError,
    PermanentLlmError,
    QuotaExceededError,
)
from qaflow.core.settings import LlmSettings
from qaflow.llm.base import LlmReply, LlmRequest

logger = logging.getLogger(__name__)

PROVIDER = "offline"
MODEL = "qaflow-offline-simulator"
DRIFT = 0.25  # per extra generation; mean quality 0.50, 0.56, 0.60, ...
HIGH, LOW = 0.7, 0.35  # quality bands: keep the reference / part of it / none of it

_LEAD_INS = {
    "en": ("Good question.", "Here is a short answer.", "From what I know, this is how it works.",
           "Happy to help with that."),
    "es": ("Buena pregunta.", "Aquí tienes una respuesta breve.", "Por lo que sé, funciona así.",
           "Con gusto te ayudo."),
}
_FILLER = {
    "en": ("It really depends on your situation and on what you mean by {topic}.",
           "Many people have asked about {topic}, and opinions differ a lot.",
           "I would suggest looking it up or asking someone with experience in {topic}.",
           "There is no single right answer here, so take this as a general opinion.",
           "Everyone is different, so try a few things and see what works for you.",
           "Good luck, and I hope this helps a little."),
    "es": ("Depende mucho de tu situación y de lo que entiendas por {topic}.",
           "Mucha gente ha preguntado sobre {topic} y las opiniones varían bastante.",
           "Te sugiero buscar información o preguntar a alguien con experiencia en {topic}.",
           "No hay una única respuesta correcta, así que tómalo como una opinión general.",
           "Cada persona es distinta, así que prueba varias cosas y mira qué te funciona.",
           "Suerte, y espero que esto te ayude un poco."),
}
_CLOSINGS = {"en": "Hope that helps.", "es": "Espero que te sirva."}
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_WORD = re.compile(r"\w{4,}")
_STOPWORDS = frozenset({
    "about", "does", "from", "have", "into", "just", "like", "over", "should", "than", "that", "their",
    "them", "there", "they", "this", "what", "when", "where", "which", "will", "with", "would", "your",
    "como", "cuando", "donde", "esta", "este", "para", "pero", "porque", "puedo", "sobre", "tengo",
})


def _unit(*parts: object) -> float:
    """A uniform draw in [0, 1) from a stable hash of ``parts``."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def quality(question_id: str, generation: int, seed: int) -> float:
    """Quality in [0, 1] of one simulated answer; later generations drift upwards."""
    u = _unit("quality", question_id, generation, seed)
    exponent = 1.0 / (1.0 + DRIFT * (max(generation, 1) - 1))
    return float(u**exponent)


def fault_kind(settings: LlmSettings, question_id: str, generation: int, delivery: int) -> str | None:
    """``"429"``, ``"503"``, ``"timeout"``, ``"malformed"`` or ``None`` for one call."""
    u = _unit("fault", question_id, generation, delivery, settings.llm_seed)
    edge = 0.0
    for kind, rate in (("429", settings.llm_sim_rate_429), ("503", settings.llm_sim_rate_503),
                       ("timeout", settings.llm_sim_rate_timeout),
                       ("malformed", settings.llm_sim_rate_malformed)):
        edge += rate
        if u < edge:
            return kind
    return None


def _pieces(reference: str) -> list[str]:
    """Sentences of the reference; a long one- or two-sentence answer is cut in three."""
    sentences = [s for s in _SENTENCE_END.split(" ".join(reference.split())) if s]
    words = " ".join(sentences).split()
    if len(sentences) < 3 and len(words) > 16:
        third = -(-len(words) // 3)
        return [" ".join(words[i:i + third]) for i in range(0, len(words), third)]
    return sentences


def simulated_answer(request: LlmRequest, seed: int) -> str:
    """The answer text for ``request``; a pure function of its fields and ``seed``."""
    q = quality(request.question_id, request.generation, seed)
    rng = random.Random(int(_unit("answer", request.question_id, request.generation, seed) * 2**53))
    language = request.language if request.language in _FILLER else "en"
    pieces = _pieces(request.reference_answer)
    keep = 0 if q < LOW else max(1, round(len(pieces) * min(1.0, (q - 0.2) / 0.6)))
    kept = [pieces[i] for i in sorted(rng.sample(range(len(pieces)), min(keep, len(pieces))))]
    if q < 0.85 and len(kept) >= 2:  # light reordering: swap one adjacent pair
        i = rng.randrange(len(kept) - 1)
        kept[i], kept[i + 1] = kept[i + 1], kept[i]
    topic_words = [w for w in _WORD.findall(request.title.lower()) if w not in _STOPWORDS][:3]
    topic = " ".join(topic_words) or ("esto" if language == "es" else "this")
    n_filler = max(2 if q < LOW else 0 if kept else 1, round((1.0 - q) * 4))
    filler = [f.format(topic=topic) for f in rng.sample(_FILLER[language], n_filler)]
    lead = [rng.choice(_LEAD_INS[language])] if q >= LOW and rng.random() < 0.6 else []
    if not lead and not filler:  # never the reference verbatim
        filler = [_CLOSINGS[language]]
    return " ".join(lead + kept + filler)


def _fault_error(kind: str, s: LlmSettings) -> LlmError:
    if kind == "429":
        return QuotaExceededError("simulated 429: quota exceeded", status=429,
                                  retry_after_s=s.llm_sim_retry_after_s)
    if kind == "503":
        return OverloadedError("simulated 503: model overloaded", status=503)
    if kind == "timeout":
        return LlmTimeoutError(f"simulated timeout (read timeout {s.llm_timeout_s:g}s)")
    return PermanentLlmError("malformed reply: simulated garbage without an answer")


class OfflineSimulator:
    """The ``offline`` provider. Stateless, so safe from any number of threads."""

    name = PROVIDER

    def __init__(self, settings: LlmSettings) -> None:
        self._settings = settings

    def start(self) -> None:
        logger.info("LLM provider: offline simulator (%s), seed %d", MODEL, self._settings.llm_seed)

    def close(self) -> None:
        pass

    def generate(self, request: LlmRequest) -> LlmReply:
        s = self._settings
        started = time.perf_counter()
        latency_s = s.llm_sim_latency_ms / 1000.0
        fault = fault_kind(s, request.question_id, request.generation, request.delivery)
        if fault is not None:
            logger.debug("simulated %s for question_id=%s generation=%d delivery=%d",
                         fault, request.question_id, request.generation, request.delivery)
            if fault == "timeout":  # waits, but cheaply: never longer than the latency
                time.sleep(min(latency_s, s.llm_timeout_s))
            raise _fault_error(fault, s)
        if latency_s:
            time.sleep(latency_s)
        text = simulated_answer(request, s.llm_seed)
        logger.debug("%s answered question_id=%s generation=%d delivery=%d in %.0f ms", PROVIDER,
                     request.question_id, request.generation, request.delivery, (time.perf_counter() - started) * 1000)
        return LlmReply(
            text=text,
            model=MODEL,
            provider=PROVIDER,
            latency_ms=(time.perf_counter() - started) * 1000.0,
            prompt_tokens=len(request.prompt.split()),
            completion_tokens=len(text.split()),
        )
