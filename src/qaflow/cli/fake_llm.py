"""``qaflow fake-llm serve``: the fake LLM server as a process, for services and benchmarks."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from types import FrameType

import click

logger = logging.getLogger(__name__)

_RATE = click.FloatRange(0.0, 1.0)


@click.group(name="fake-llm")
def fake_llm() -> None:
    """A local fake LLM server speaking the OpenAI, Gemini and Ollama wire formats."""


@fake_llm.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8099, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0 picks a free one).")
@click.option("--latency-ms", default=0.0, show_default=True, type=click.FloatRange(min=0),
              help="Processing time of each request, while it holds a concurrency slot.")
@click.option("--concurrency", default=0, show_default=True, type=click.IntRange(min=0),
              help="Requests processed at once; others queue (0 = unlimited).")
@click.option("--reject-over-capacity", is_flag=True,
              help="Answer 503 past the concurrency cap instead of queueing.")
@click.option("--rpm", default=0, show_default=True, type=click.IntRange(min=0),
              help="Requests per minute (sliding window) before 429 with Retry-After (0 = unlimited).")
@click.option("--rate-429", default=0.0, show_default=True, type=_RATE,
              help="Share of requests answered 429 at random, besides the rpm quota.")
@click.option("--retry-after-s", default=1.0, show_default=True, type=click.FloatRange(min=0),
              help="Retry-After sent with the random 429s.")
@click.option("--rate-503", default=0.0, show_default=True, type=_RATE,
              help="Share of requests answered 503 (overloaded).")
@click.option("--rate-timeout", default=0.0, show_default=True, type=_RATE,
              help="Share of requests answered only after --timeout-sleep-s.")
@click.option("--timeout-sleep-s", default=90.0, show_default=True, type=click.FloatRange(min=0),
              help="How long a 'timeout' request hangs; set it above the client's read timeout.")
@click.option("--rate-malformed", default=0.0, show_default=True, type=_RATE,
              help="Share of 200 replies without the expected fields.")
@click.option("--rate-400", default=0.0, show_default=True, type=_RATE,
              help="Share of requests answered 400 (a permanent error).")
@click.option("--seed", default=0, show_default=True, type=int,
              help="Seed of the fault draws and of the answer quality, for repeatable runs.")
@click.option("--api-key", envvar="FAKE_LLM_API_KEY", default=None,
              help="Require this key from OpenAI and Gemini clients (or FAKE_LLM_API_KEY).")
@click.option("--references", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="A data set (any format `qaflow run` reads): its questions are answered with the offline "
                   "simulator's quality model (seeded by --seed), so regeneration pays off; others get an echo.")
def serve(host: str, port: int, references: Path | None, seed: int, **knobs: object) -> None:
    """Serve until SIGINT or SIGTERM. GET /_stats shows the counts; POST /_reset clears them."""
    from qaflow.llm.fake_quality import ReferenceBook
    from qaflow.llm.fake_server import FakeLlmServer

    book = None
    if references is not None:
        book = ReferenceBook.from_dataset(references, seed=seed)
        click.echo(f"answering {len(book)} questions of {references} with the offline simulator's quality model")
    try:
        server = FakeLlmServer(host, port, references=book, seed=seed, **knobs)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    server.start()
    url = server.url
    click.echo(f"fake LLM server on {url} (a simulator, not a real model)")
    click.echo(f"  openai: {url}/v1/chat/completions   QAFLOW_LLM_PROVIDER=openai QAFLOW_LLM_BASE_URL={url}")
    click.echo(f"  gemini: {url}/v1beta/models/<model>:generateContent   "
               f"QAFLOW_LLM_PROVIDER=gemini QAFLOW_LLM_BASE_URL={url}")
    click.echo(f"  ollama: {url}/api/chat   QAFLOW_LLM_PROVIDER=ollama QAFLOW_LLM_BASE_URL={url}")
    click.echo(f"  stats:  {url}/_stats", nl=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    click.echo(f"stopped; {server.stats()['total']} requests served")


if __name__ == "__main__":
    fake_llm()
