"""A local server as a child process: prepare, spawn, wait until it really answers, stop."""

from __future__ import annotations

import logging
import signal
import subprocess
import time
import warnings
from pathlib import Path
from typing import Any, Self

from qaflow.devstack.errors import ServerStartError
from qaflow.devstack.owners import listener_pids, owns_port
from qaflow.devstack.pids import die_with_parent, start_time, stop_pid
from qaflow.devstack.ports import free_port
from qaflow.plumbing.process import ChildProcess

logger = logging.getLogger(__name__)


def terminate(proc: subprocess.Popen[bytes], name: str, grace: float, sig: int = signal.SIGTERM) -> None:
    """Send ``sig``; SIGKILL what has not exited after ``grace`` seconds."""
    ChildProcess(name, proc).stop(grace, sig)


class ServerProcess:
    """Base of the local servers. Subclasses fill in the hooks marked below.

    ``detached`` servers run in their own session and outlive the Python process (``up``);
    attached ones get SIGTERM if the Python process dies without stopping them, so a killed
    test run leaves no broker behind. Spawn attached servers from a long-lived thread: Linux
    ties that signal to the thread that forked.
    """

    name = "server"
    stop_signal = signal.SIGTERM
    start_attempts = 3  # only picked ports are retried, on a bind conflict

    def __init__(
        self,
        workdir: Path | str,
        port: int | None = None,
        *,
        detached: bool = False,
        start_timeout: float = 60.0,
    ) -> None:
        self.workdir = Path(workdir).resolve()
        self.port = port or 0
        self._fixed_port = port is not None
        self.detached = detached
        self.start_timeout = start_timeout
        self._child: ChildProcess | None = None

    # -- hooks -------------------------------------------------------------------------------
    def check(self) -> None:
        """Raise MissingBinaryError if something this server needs is not installed."""

    def pick_ports(self) -> None:
        self.port = free_port()

    def prepare(self) -> None:
        """Write configuration and initialise storage. Runs before every spawn."""

    def command(self) -> list[str]:
        raise NotImplementedError

    def popen_kwargs(self) -> dict[str, Any]:
        return {}

    def ping(self) -> None:
        """Return when the server answers a real request; raise otherwise."""
        raise NotImplementedError

    # -- life cycle --------------------------------------------------------------------------
    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.log"

    @property
    def pid(self) -> int | None:
        return None if self._child is None else self._child.pid

    @property
    def running(self) -> bool:
        return self._child is not None and self._child.running

    def start(self) -> Self:
        """Prepare, spawn and wait until ready; stops the process again on failure."""
        self.check()
        for attempt in range(1, self.start_attempts + 1):
            if not self._fixed_port:
                self.pick_ports()
            try:
                self.prepare()
                self.spawn()
                self.wait_ready()
                return self
            except ServerStartError as exc:
                self.stop()
                if self._fixed_port or not exc.port_conflict or attempt == self.start_attempts:
                    raise
                logger.warning("%s: port %s taken, retrying with another", self.name, self.port)
        raise AssertionError  # unreachable: the last attempt re-raises

    def spawn(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        cmd = self.command()
        logger.info("starting %s: %s", self.name, " ".join(cmd))
        self._child = ChildProcess.spawn(
            self.name,
            cmd,
            log=self.log_path,
            start_new_session=self.detached,
            preexec_fn=None if self.detached else die_with_parent,
            **{"cwd": self.workdir, **self.popen_kwargs()},
        )

    def wait_ready(self) -> None:
        assert self._child is not None, "spawn() first"
        deadline = time.monotonic() + self.start_timeout
        delay, last = 0.05, "no check yet"
        while True:
            code = self._child.poll()
            if code is not None:
                msg = f"exited with code {code} before it was ready"
                raise self.start_error(msg)
            try:
                self.ping()
                self.check_owner()
            except Exception as exc:
                last = repr(exc)
            else:
                logger.info("%s ready on port %s (pid %s)", self.name, self.port, self.pid)
                return
            if time.monotonic() > deadline:
                msg = f"not ready after {self.start_timeout:.0f}s: {last}"
                raise self.start_error(msg)
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)

    def check_owner(self) -> None:
        """Raise unless our process holds the port that answered: never take another's server for ours."""
        assert self._child is not None
        if not owns_port(self._child.pid, self.port):
            others = sorted(listener_pids(self.port))
            msg = f"port {self.port} is not ours (pid {self._child.pid}); listening: {others or 'nobody'}"
            raise ConnectionError(msg)

    def stop(self, grace: float = 20.0) -> None:
        """Stop the process: ``stop_signal``, then SIGKILL after ``grace`` seconds."""
        child, self._child = self._child, None
        if child is not None:
            child.stop(grace, self.stop_signal)

    def detach(self) -> dict[str, Any]:
        """Let go of a running detached server; return what ``stop_detached`` needs."""
        assert self._child is not None and self.detached, "only a started detached server"
        pid = self._child.pid
        info = {
            "pid": pid,
            "start_time": start_time(pid),
            "port": self.port,
            "workdir": str(self.workdir),
            "log": str(self.log_path),
        }
        with warnings.catch_warnings():
            # Popen warns when dropped while its child runs; here that is the point.
            warnings.simplefilter("ignore", ResourceWarning)
            self._child = None
        return info

    @classmethod
    def stop_detached(cls, info: dict[str, Any], grace: float = 20.0) -> bool:
        """Stop a server ``detach()`` let go of, maybe in another process."""
        return stop_pid(info["pid"], info.get("start_time"), sig=cls.stop_signal, grace=grace)

    def start_error(self, reason: str) -> ServerStartError:
        return ServerStartError.from_log(self.name, reason, self.log_path)

    def run_step(self, step: str, cmd: list[str], **kwargs: Any) -> None:
        """Run a one-off set-up command (format, initdb), its output in ``<step>.log``."""
        step_log = self.workdir / f"{step}.log"
        with step_log.open("wb") as log:
            kwargs.setdefault("cwd", self.workdir)
            done = subprocess.run(
                cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, timeout=120, check=False, **kwargs
            )
        if done.returncode != 0:
            msg = f"{step} exited with code {done.returncode}"
            raise ServerStartError.from_log(self.name, msg, step_log)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
