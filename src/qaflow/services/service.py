"""``run_service(stage)``: one worker service, from its :class:`~qaflow.core.topology.Stage`.

What every worker main did the same way, once: load the stage's settings class (a bad value
exits with code 2 naming the variable), configure logging, install the SIGTERM/SIGINT
handlers, make the probes, open the bus (topics created when missing), build the consumer of
the stage's input topics in its group (``QAFLOW_CONSUMER_GROUP`` overrides the group), call
the stage's handler factory for the worker loop, run it (:func:`qaflow.services.runner.run_worker`)
and close everything in reverse order.

A handler factory (``Stage.handler``, ``module:function``) takes a :class:`ServiceContext`
and returns a :class:`Built`; it holds only what is truly its stage's own: its stage object,
its metrics, its guards.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from pydantic_settings import BaseSettings

from qaflow.bus.base import Bus, Consumer, Producer
from qaflow.core.faults import FaultPolicy
from qaflow.core.topology import Stage
from qaflow.services import boot
from qaflow.services.logs import configure_logging
from qaflow.services.probes import Probes
from qaflow.services.runner import install_stop_handlers, run_worker


class Closeable(Protocol):
    def close(self) -> None: ...


@dataclass
class ServiceContext:
    """What a handler factory gets: the stage, its settings, the stop event, the probes, the bus."""

    stage: Stage
    settings: Any  # an instance of the stage's settings class
    stop: threading.Event
    probes: Probes
    bus: Bus
    policy: FaultPolicy

    @property
    def name(self) -> str:
        return self.stage.service

    def consumer(self) -> Consumer:
        """A consumer of the stage's input topics, in its group (or ``QAFLOW_CONSUMER_GROUP``)."""
        group = boot.group_of(self.settings, self.stage.group)
        return self.bus.consumer(group, list(self.stage.inputs), client_id=self.name)

    def producer(self, on_send: Callable[[str], None] | None = None) -> boot.MeteredProducer:
        """A producer that counts records by topic (``qaflow_records_produced_total``)."""
        return boot.MeteredProducer(self.bus.producer(client_id=self.name), on_send)

    def raw_producer(self) -> Producer:
        return self.bus.producer(client_id=self.name)


@dataclass
class Built:
    """A handler factory's result: the worker loop, a first step, and what to close after it."""

    worker: Any  # a Worker (start/step/drain/close)
    on_start: Callable[[], object] | None = None  # run once the worker started (storage: migrations)
    closers: Sequence[Closeable] = field(default_factory=tuple)  # closed in order, before the bus


Factory = Callable[[ServiceContext], Built]


def resolve(path: str) -> Any:
    """``"package.module:attribute"`` -> the attribute (imported now)."""
    module, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module), attribute)


def run_service(stage: Stage, factory: Factory | None = None) -> int:
    """Run ``stage`` as a service until SIGTERM; the process's exit code.

    ``factory`` defaults to the stage's ``handler`` import path.
    """
    settings_class = cast(type[BaseSettings], resolve(stage.settings))
    name = stage.service
    s: Any = boot.load_settings(settings_class, name)
    configure_logging(s.log_format, s.log_level, name)
    stop = install_stop_handlers()
    probes = Probes(s.http_port, s.http_host)
    probes.details = {"service": name}
    build: Factory = factory or resolve(stage.handler)
    policy = boot.fault_policy(s)
    bus = boot.open_worker_bus(s)
    closers: Sequence[Closeable] = ()
    try:
        built = build(ServiceContext(stage, s, stop, probes, bus, policy))
        closers = built.closers
        built.worker.commit_interval_s = s.commit_interval_ms / 1000  # QAFLOW_COMMIT_INTERVAL_MS
        looped = boot.Guarded(stage.label, built.worker, on_start=built.on_start)
        return run_worker(name, looped, probes, stop, s.shutdown_grace_s,
                          bus_policy=policy, on_bus_error=boot.BUS_ERRORS.inc)
    finally:
        for part in closers:
            part.close()
        bus.close()
