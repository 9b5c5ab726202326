"""Run the score job on a local MiniCluster: the connector jar, the command, the process.

``fetch_jars`` downloads the Kafka SQL connector into
``${QAFLOW_CACHE_DIR:-~/.cache/qaflow}/flink-jars/`` with Maven (or straight from Maven
Central when ``mvn`` is missing), once. :class:`LocalJob` runs ``flink/score_job.py`` with
this Python in its own process group: the PyFlink client starts a JVM (the MiniCluster),
which starts the Python workers; stopping the group stops them all. The JVM logs go to
``<workdir>/log`` (``FLINK_LOG_DIR``), the client's output to ``<workdir>/job.log``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from qaflow.core.errors import QaflowError
from qaflow.core.settings import for_service
from qaflow.plumbing.process import ChildProcess

logger = logging.getLogger(__name__)

CONNECTOR = ("org.apache.flink", "flink-sql-connector-kafka", "5.0.0-2.2")  # Flink 2.2; shaded Kafka client
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
MAVEN_CENTRAL = "https://repo1.maven.org/maven2"
JOB_FILE = Path(__file__).resolve().parents[3] / "flink" / "score_job.py"
_CHECKPOINT = re.compile(r"^chk-(\d+)$")


class FlinkRunError(QaflowError):
    """The local job could not be prepared or started."""


def cache_dir() -> Path:
    return Path(os.environ.get("QAFLOW_CACHE_DIR") or Path.home() / ".cache" / "qaflow").expanduser()


def jar_dir() -> Path:
    return cache_dir() / "flink-jars"


def connector_jar() -> Path:
    _, artifact, version = CONNECTOR
    return jar_dir() / f"{artifact}-{version}.jar"


def _download(url: str, dest: Path) -> None:
    """Maven Central over HTTPS, checked against the published SHA-1."""
    with urllib.request.urlopen(url + ".sha1", timeout=60) as resp:  # noqa: S310 - fixed https URL
        expected = resp.read().decode().split()[0].strip()
    digest = hashlib.sha1(usedforsecurity=False)
    with urllib.request.urlopen(url, timeout=300) as resp, dest.open("wb") as out:  # noqa: S310
        while chunk := resp.read(1 << 20):
            digest.update(chunk)
            out.write(chunk)
    if digest.hexdigest() != expected:
        msg = f"{url}: SHA-1 {digest.hexdigest()} does not match the published {expected}"
        raise FlinkRunError(msg)


def fetch_jars(*, force: bool = False, out: IO[str] | None = None) -> list[Path]:
    """The connector jar in the cache, downloaded if missing. Idempotent."""
    jar = connector_jar()
    if jar.is_file() and jar.stat().st_size > 0 and not force:
        _say(out, f"present: {jar}")
        return [jar]
    group, artifact, version = CONNECTOR
    jar.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=jar.parent, prefix=".fetch-") as tmp:
        mvn = shutil.which("mvn")
        if mvn:
            _say(out, f"fetching {group}:{artifact}:{version} with Maven")
            cmd = [mvn, "-q", "-B", f"{DEPENDENCY_PLUGIN}:copy", f"-Dartifact={group}:{artifact}:{version}",
                   f"-DoutputDirectory={tmp}"]
            done = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                msg = f"mvn failed ({done.returncode}): {(done.stdout + done.stderr).strip()[-2000:]}"
                raise FlinkRunError(msg)
        else:
            url = f"{MAVEN_CENTRAL}/{group.replace('.', '/')}/{artifact}/{version}/{jar.name}"
            _say(out, f"mvn not found; downloading {url}")
            _download(url, Path(tmp) / jar.name)
        os.replace(Path(tmp) / jar.name, jar)  # same file system: atomic
    _say(out, f"fetched: {jar}")
    return [jar]


def _say(out: IO[str] | None, text: str) -> None:
    if out is not None:
        print(text, file=out, flush=True)


def latest_checkpoint(checkpoint_dir: Path | str) -> Path | None:
    """The newest completed checkpoint (``<dir>/<job id>/chk-N`` holding ``_metadata``), if any."""
    root = Path(str(checkpoint_dir).removeprefix("file://"))
    best: tuple[float, int, Path] | None = None
    for meta in root.glob("*/chk-*/_metadata"):
        match = _CHECKPOINT.match(meta.parent.name)
        if match:
            key = (meta.stat().st_mtime, int(match.group(1)), meta.parent)
            best = key if best is None or key[:2] > best[:2] else best
    return None if best is None else best[2]


def _has_option(args: Sequence[str], option: str) -> bool:
    return any(a == option or a.startswith(option + "=") for a in args)


@dataclass
class LocalJob:
    """``flink/score_job.py`` in its own process group, with its logs under ``workdir``.

    ``job_args`` are the job's own options; the runner adds the connector jar, this Python
    for the workers, a checkpoint directory under ``workdir`` and parallelism 1 unless the
    arguments set them. ``rest_port`` opens the MiniCluster's REST API on 127.0.0.1.
    """

    job_args: Sequence[str]
    workdir: Path
    python: str = sys.executable
    jars: Sequence[Path] | None = None
    env: Mapping[str, str] | None = None
    rest_port: int | None = None
    log_to_file: bool = True  # client output to job.log; False = inherit stdout/stderr

    def __post_init__(self) -> None:
        self.workdir = Path(self.workdir).resolve()
        self._child: ChildProcess | None = None

    @property
    def log_dir(self) -> Path:
        return self.workdir / "log"

    @property
    def client_log(self) -> Path:
        return self.workdir / "job.log"

    @property
    def checkpoint_dir(self) -> Path:
        return self.workdir / "checkpoints"

    def command(self) -> list[str]:
        if not JOB_FILE.is_file():
            msg = f"{JOB_FILE} not found: run from a qaflow checkout"
            raise FlinkRunError(msg)
        args = list(self.job_args)
        jars = self.jars if self.jars is not None else [connector_jar()]
        for jar in jars:
            if not Path(jar).is_file():
                msg = f"{jar} is missing: run  qaflow flink fetch-jars"
                raise FlinkRunError(msg)
            args += ["--jars", Path(jar).resolve().as_uri()]
        if not _has_option(args, "--checkpoint-dir"):
            args += ["--checkpoint-dir", self.checkpoint_dir.as_uri()]
        if not _has_option(args, "--parallelism"):
            args += ["--parallelism", "1"]
        args += ["-D", f"python.executable={self.python}"]
        if self.rest_port:
            args += ["-D", "rest.address=127.0.0.1", "-D", "rest.bind-address=127.0.0.1",
                     "-D", f"rest.port={self.rest_port}"]
        return [self.python, str(JOB_FILE), *args]

    def environment(self) -> dict[str, str]:
        # The job refuses QAFLOW_* variables only other services read (a shared configuration).
        env = for_service(os.environ if self.env is None else self.env, "score-job")
        env["FLINK_LOG_DIR"] = str(self.log_dir)
        env.setdefault("PYTHONUNBUFFERED", "1")
        return env

    def start(self) -> LocalJob:
        cmd = self.command()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        logger.info("starting the score job: %s", " ".join(cmd))
        self._child = ChildProcess.spawn(
            "the score job", cmd, log=self.client_log if self.log_to_file else None, append=True, group=True,
            env=self.environment(), cwd=self.workdir,
        )
        return self

    @property
    def pid(self) -> int | None:
        return None if self._child is None else self._child.pid

    @property
    def running(self) -> bool:
        return self._child is not None and self._child.running

    def wait(self, timeout: float | None = None) -> int:
        assert self._child is not None, "start() first"
        return self._child.wait(timeout)

    def kill(self) -> None:
        """SIGKILL the whole group: a crash, as far as the job can tell."""
        if self._child is not None:
            self._child.kill(30)

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM the group, then SIGKILL what is left after ``grace`` seconds (the JVM and
        Python workers may outlive the client)."""
        if self._child is not None:
            self._child.stop(grace)

    # -- the MiniCluster's REST API ---------------------------------------------------------
    def rest(self, path: str, timeout: float = 5.0) -> Any:
        if not self.rest_port:
            msg = "LocalJob(rest_port=...) is needed for the REST API"
            raise FlinkRunError(msg)
        url = f"http://127.0.0.1:{self.rest_port}{path}"
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return json.loads(resp.read())

    def running_job_id(self) -> str | None:
        try:
            jobs = self.rest("/jobs")["jobs"]
        except OSError:
            return None
        return next((j["id"] for j in jobs if j["status"] == "RUNNING"), None)

    def wait_running(self, timeout: float = 120.0) -> str:
        """Job id once the job and all its tasks run; raises if the process exits first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                msg = f"the score job exited with {self._child and self._child.returncode}; see {self.client_log}"
                raise FlinkRunError(msg)
            job_id = self.running_job_id()
            if job_id:
                vertices = self.rest(f"/jobs/{job_id}")["vertices"]
                if vertices and all(v["status"] == "RUNNING" for v in vertices):
                    return job_id
            time.sleep(0.5)
        msg = f"the score job was not running after {timeout:.0f}s; see {self.client_log} and {self.log_dir}"
        raise FlinkRunError(msg)

    def completed_checkpoints(self, job_id: str) -> int:
        return int(self.rest(f"/jobs/{job_id}/checkpoints")["counts"]["completed"])
