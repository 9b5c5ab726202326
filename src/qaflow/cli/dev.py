"""``qaflow dev up|down|status|restart``: local Kafka, PostgreSQL and Redis, and with ``--services``
every qaflow service as a process, started from :mod:`qaflow.devstack.catalog` with the
same command and variables as its container.

Everything runs detached (it outlives the command) under ``.devstack/``: the servers'
state in ``state.json``, the services' in ``services.json``, their logs in ``logs/``.
``status`` judges each by its recorded pid and its own recorded port, never by whoever
answers on a default port; ``restart`` brings one back on its port (and, for Kafka and
PostgreSQL, on its data).
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from qaflow.cli.common import friendly_errors
from qaflow.core import plugins

FAKE_LLM_KNOBS = ("--latency-ms", "200", "--concurrency", "16")


def fake_llm_args(port: int, references: Path | None) -> list[str]:
    """The fake LLM's arguments: its knobs, and ``--references`` so the questions of that data set
    get answers of the offline simulator's quality (the loop then shows as in ``qaflow run``)."""
    refs = ["--references", str(references.resolve())] if references is not None else []
    return ["--port", str(port), *FAKE_LLM_KNOBS, *refs]


def _default_references() -> Path | None:
    """The traffic generator's default data set, when it is where its default says."""
    from qaflow.core.settings import TrafficGenSettings

    path = Path(str(TrafficGenSettings.model_fields["traffic_dataset"].default))
    return path if path.is_file() else None


def _state_dir(path: Path | None) -> Path:
    from qaflow.devstack.stack import default_state_dir

    return (path or default_state_dir()).resolve()


def _shell_config() -> dict[str, str]:
    """Known QAFLOW_* variables of this shell (e.g. QAFLOW_LLM_API_KEY) pass on to the services."""
    from qaflow.core.settings import known_variables

    known = known_variables()
    return {k.upper(): v for k, v in os.environ.items() if k.upper() in known}


def _parse_env(pairs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.upper().startswith("QAFLOW_"):
            msg = f"expected QAFLOW_NAME=VALUE, got {pair!r}"
            raise click.BadParameter(msg, param_hint="--env")
        out[name.upper()] = value
    return out


def _llm_config(llm: str, fake_url: str | None) -> dict[str, str]:
    if llm == "offline":
        return {"QAFLOW_LLM_PROVIDER": "offline"}
    if llm == "fake":
        assert fake_url is not None
        return {"QAFLOW_LLM_PROVIDER": "openai", "QAFLOW_LLM_BASE_URL": fake_url}
    return {"QAFLOW_LLM_PROVIDER": "openai", "QAFLOW_LLM_BASE_URL": llm}


def _wanted_services() -> list[str]:
    from qaflow.devstack.catalog import PIPELINE

    names = list(PIPELINE)
    if importlib.util.find_spec("qaflow.services.dashboard.app") is not None:
        names.append("dashboard")
    return names


def start_services(root: Path, addresses: dict[str, str], *, llm: str, scorer: str,
                   extra_env: dict[str, str], references: Path | None = None,
                   step: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Start the fake LLM (unless ``llm`` says otherwise) and the services, detached; wait until ready.

    Each takes its default port when free, else a free one; see :mod:`qaflow.devstack.services`.
    ``step`` (progress) is called, from any thread, as each one is ready.
    """
    from concurrent.futures import ThreadPoolExecutor

    from qaflow.devstack.catalog import FAKE_LLM, SERVICES, Backends, base_environment, environment
    from qaflow.devstack.services import free_or, launch, record

    logs = root / "logs"
    started: list[Any] = []
    fake_url = None
    done = step or (lambda what: None)
    try:
        if llm == "fake":
            port = free_or(FAKE_LLM.port)
            fake = launch(FAKE_LLM.name, base_environment(), fake_llm_args(port, references),
                          logs / "fake-llm.log", port, ready_s=30)
            started.append(fake)
            done("fake-llm ready")
            fake_url = fake.url
        backends = Backends(f"kafka://{addresses['kafka_bootstrap']}", addresses["postgres_url"],
                            addresses["redis_url"])
        config = {"QAFLOW_LOG_FORMAT": "text", "QAFLOW_SCORER": scorer, **_shell_config(),
                  **_llm_config(llm, fake_url), **extra_env}

        def one(name: str) -> Any:
            spec = SERVICES[name]
            port = free_or(spec.port)
            env = environment(spec, backends, port=port, config=config, multiproc_dir=root / "prometheus" / name)
            ready_s = 180 if name == "score-worker" and scorer == "bertscore" else 60
            proc = launch(name, env, [], logs / f"{name}.log", port, ready_s=ready_s)
            done(f"{name} ready")
            return proc

        names = _wanted_services()
        with ThreadPoolExecutor(len(names)) as pool:
            futures = [pool.submit(one, name) for name in names]
        errors = []
        for future in futures:
            try:
                started.append(future.result())
            except RuntimeError as exc:
                errors.append(str(exc))
        if errors:
            raise click.ClickException("\n".join(errors))
    except BaseException:
        for p in reversed(started):
            p.stop(grace_s=10)
        raise
    return {p.name: record(p) for p in started}


def _print(state: dict[str, Any], services: dict[str, Any]) -> None:
    for name, address in state.get("addresses", {}).items():
        click.echo(f"  {name:<16} {address}")
    for name, info in services.items():
        flag = "" if info.get("running", True) else f"  NOT RUNNING: {info.get('why', '')}"
        click.echo(f"  {name:<16} {info['url']}   log: {info['log']}{flag}")


@click.group(name="dev")
def dev() -> None:
    """Local servers for development and tests, and optionally every service as a process."""


@dev.command()
@click.option("--services", is_flag=True, help="Also start the api, the workers and the fake LLM as processes.")
@click.option("--llm", default="fake", show_default=True,
              help="fake (the fake LLM server, a simulator), offline (the in-process simulator), or the base "
              "URL of an OpenAI-compatible server.")
@click.option("--scorer", type=click.Choice([p.name for p in plugins.family("scorer").plugins if not p.remote]),
              default=plugins.family("scorer").default, show_default=True,
              help="Scorer of the score-worker.")
@click.option("--references", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Data set whose questions the fake LLM answers with the offline simulator's quality model "
                   "(default: the traffic generator's, data/sample.csv, when present).")
@click.option("--env", "-e", "env_pairs", multiple=True, metavar="QAFLOW_NAME=VALUE",
              help="A setting for every service (repeatable).")
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Default: <repo>/.devstack")
@click.option("--json", "as_json", is_flag=True, help="Print the state as JSON.")
@friendly_errors
def up(services: bool, llm: str, scorer: str, references: Path | None, env_pairs: tuple[str, ...],
       state_dir: Path | None, as_json: bool) -> None:
    """Start Kafka, PostgreSQL and Redis (and with --services, every service); print the URLs."""
    from qaflow.cli.progress import steps
    from qaflow.devstack import services as dev_services
    from qaflow.devstack.stack import SERVER_CLASSES, STEPS_PER_SERVER
    from qaflow.devstack.stack import up as servers_up

    root = _state_dir(state_dir)
    extra_env = _parse_env(env_pairs)
    total = len(SERVER_CLASSES) * STEPS_PER_SERVER
    if services:
        total += len(_wanted_services()) + (llm == "fake")
    with steps("qaflow dev up", total, transient=as_json) as step:
        state = servers_up(root, step)
        running = dev_services.status(root)
        if services and not (running and all(i["running"] for i in running.values())):
            dev_services.stop(root)
            running = start_services(root, state["addresses"], llm=llm, scorer=scorer, extra_env=extra_env,
                                     references=references or _default_references(), step=step)
            dev_services.save(root, running)
            running = dev_services.status(root)
    if as_json:
        click.echo(json.dumps({**state, "services": running}, indent=2))
        return
    click.echo(f"qaflow dev stack up (state in {root}):")
    _print(state, running)
    if running:
        api = running.get("api", {}).get("url", "http://127.0.0.1:8000")
        click.echo(f"\nsend traffic:  python -m qaflow.services.traffic_gen --api-url {api} --rate 5 --wait-s 120")
    click.echo("stop:          qaflow dev down")


@dev.command()
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Default: <repo>/.devstack")
@friendly_errors
def down(state_dir: Path | None) -> None:
    """Stop the services and the servers that `qaflow dev up` started."""
    from qaflow.devstack import services as dev_services
    from qaflow.devstack.stack import down as servers_down

    root = _state_dir(state_dir)
    stopped = {**dev_services.stop(root), **servers_down(root)}
    if not stopped:
        click.echo("nothing was running")
    for name, was_running in stopped.items():
        click.echo(f"  {name:<16} {'stopped' if was_running else 'had already exited'}")


@dev.command()
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Default: <repo>/.devstack")
@click.option("--json", "as_json", is_flag=True, help="Print the state as JSON.")
def status(state_dir: Path | None, as_json: bool) -> None:
    """What runs, where, and its logs. Exit code 1 when something is down."""
    from qaflow.devstack import services as dev_services
    from qaflow.devstack.stack import status as servers_status

    root = _state_dir(state_dir)
    state = servers_status(root)
    services = dev_services.status(root)
    ok = bool(state.get("running")) and all(i["running"] for i in services.values())
    if as_json:
        click.echo(json.dumps({**state, "services": services}, indent=2))
    elif not state.get("running") and not services:
        click.echo("not running (qaflow dev up)")
    else:
        for name, info in state.get("servers", {}).items():
            word = "running" if info["running"] else f"NOT RUNNING: {info.get('why', '')}"
            click.echo(f"  {name:<16} pid {info['pid']:<8} {word}")
        _print({"addresses": state.get("addresses", {})}, services)
    raise SystemExit(0 if ok else 1)


@dev.command()
@click.argument("name", metavar="SERVICE|kafka|postgres|redis")
@click.option("--down-s", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Seconds to stay down between the stop and the start (an outage).")
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Default: <repo>/.devstack")
@click.option("--json", "as_json", is_flag=True, help="Print the new state as JSON.")
@friendly_errors
def restart(name: str, down_s: float, state_dir: Path | None, as_json: bool) -> None:
    """Stop one server or service of `qaflow dev up` and start it again, on the same port.

    Kafka and PostgreSQL keep their data directory; a service keeps its variables and arguments.
    """
    from qaflow.devstack import services as dev_services
    from qaflow.devstack.stack import SERVER_CLASSES
    from qaflow.devstack.stack import restart as restart_server

    root = _state_dir(state_dir)
    if name in SERVER_CLASSES:
        info = restart_server(name, root, down_s=down_s)
    else:
        try:
            info = dev_services.restart(root, name, down_s=down_s)
        except RuntimeError as exc:  # did not become ready: the message carries the log's tail
            raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps({name: info}, indent=2))
        return
    click.echo(f"  {name:<16} pid {info['pid']:<8} port {info['port']}  "
               f"{'running' if info['running'] else 'NOT RUNNING: ' + info.get('why', '')}")
