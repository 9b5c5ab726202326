"""``qaflow flink``: the score job on a local MiniCluster (connector jars, run)."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from types import FrameType

import click

from qaflow.flinkjob.runner import FlinkRunError


@click.group(name="flink")
def flink() -> None:
    """The PyFlink score job on a local MiniCluster (the cluster runs the same file)."""


@flink.command("fetch-jars")
@click.option("--force", is_flag=True, help="Download again even when the jar is cached.")
def fetch_jars_cmd(force: bool) -> None:
    """Download the Kafka SQL connector jar into ${QAFLOW_CACHE_DIR:-~/.cache/qaflow}/flink-jars/.

    Uses Maven (mvn) when present, else Maven Central over HTTPS with a SHA-1 check.
    Idempotent: a cached jar is kept. Prints the jar's path last."""
    from qaflow.flinkjob.runner import fetch_jars

    try:
        jars = fetch_jars(force=force, out=sys.stderr)
    except (FlinkRunError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
    for jar in jars:
        click.echo(jar)


@flink.command(
    "run",
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": True},
)
@click.option("--bootstrap", "bootstrap", default=None, metavar="HOST:PORT",
              help="Kafka brokers (same as the job's --bootstrap-servers).")
@click.option("--workdir", default=".flink", show_default=True, type=click.Path(file_okay=False, path_type=Path),
              help="Flink logs (log/) and checkpoints (checkpoints/) of local runs.")
@click.option("--rest-port", default=0, type=click.IntRange(0, 65535),
              help="Serve the MiniCluster's REST API on 127.0.0.1:PORT (0 = off).")
@click.option("--restore-latest", is_flag=True,
              help="Start from the newest retained checkpoint under --workdir, if there is one.")
@click.option("--job-help", is_flag=True, help="Show the job's own options and exit.")
@click.argument("job_args", nargs=-1, type=click.UNPROCESSED)
def run_cmd(
    bootstrap: str | None, workdir: Path, rest_port: int, restore_latest: bool, job_help: bool,
    job_args: tuple[str, ...],
) -> None:
    """Run flink/score_job.py on a local MiniCluster until interrupted.

    JOB_ARGS are the job's options (see --job-help), e.g.
    `qaflow flink run --bootstrap 127.0.0.1:9092 --scorer lexical --threshold 0.5`.
    The connector jar comes from `qaflow flink fetch-jars`; Python workers use this Python;
    parallelism is 1 and checkpoints go under --workdir unless JOB_ARGS say otherwise."""
    from qaflow.flinkjob.runner import LocalJob, latest_checkpoint

    args = list(job_args)
    if job_help:
        args = ["--help"]
    else:
        if bootstrap:
            args = ["--bootstrap-servers", bootstrap, *args]
        if restore_latest:
            latest = latest_checkpoint(workdir / "checkpoints")
            if latest is None:
                click.echo(f"no retained checkpoint under {workdir / 'checkpoints'}; starting without state", err=True)
            else:
                click.echo(f"restoring from {latest}", err=True)
                args += ["--restore-from", latest.as_uri()]
    job = LocalJob(args, workdir=workdir, rest_port=rest_port or None, log_to_file=False)
    try:
        job.start()
    except FlinkRunError as exc:
        raise click.ClickException(str(exc)) from exc
    if not job_help:
        click.echo(f"score job pid {job.pid}; Flink logs: {job.log_dir}; checkpoints: {job.checkpoint_dir}", err=True)
        if rest_port:
            click.echo(f"REST API: http://127.0.0.1:{rest_port}/jobs", err=True)

    def _stop(signum: int, _frame: FrameType | None) -> None:
        click.echo(f"signal {signum}: stopping the score job", err=True)
        job.stop()
        sys.exit(128 + signum)

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    code = job.wait()
    job.stop()  # workers and the JVM, should the client have left them behind
    sys.exit(code)
