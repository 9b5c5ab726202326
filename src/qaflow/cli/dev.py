"""``qaflow dev up|down|status``: local Kafka, PostgreSQL and Redis, and with ``--services``
every qaflow service as a process, started from :mod:`qaflow.services.catalog` with the
same command and variables as its container.

Everything runs detached (it outlives the command) under ``.devstack/``: the servers'
state in ``state.json``, the services' in ``services.json``, their logs in ``logs/``.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from typing import Any

import click

from qaflow.cli.common import friendly_errors

SERVICES_FILE = "services.json"
FAKE_LLM_KNOBS = ("--latency-ms", "200", "--concurrency", "16")


def _state_dir(path: Path | None) -> Path:
    from qaflow.devstack.stack import default_state_dir

    return (path or default_state_dir()).resolve()


def _free_or(port: int) -> int:
    from qaflow.devstack.ports import free_port, is_listening

    return free_port() if is_listening(port) else port


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
    from qaflow.services.catalog import PIPELINE

    names = list(PIPELINE)
    if importlib.util.find_spec("qaflow.services.dashboard.app") is not None:
        names.append("dashboard")
    return names


def start_services(root: Path, addresses: dict[str, str], *, llm: str, scorer: str,
                   extra_env: dict[str, str]) -> dict[str, Any]:
    """Start the fake LLM (unless ``llm`` says otherwise) and the services, detached; wait until ready."""
    from qaflow.services.catalog import FAKE_LLM, SERVICES, Backends, ServiceProcess, base_environment, environment

    logs = root / "logs"
    started: list[ServiceProcess] = []
    fake_url = None
    try:
        if llm == "fake":
            port = _free_or(FAKE_LLM.port)
            fake = ServiceProcess(FAKE_LLM, base_environment(), logs / "fake-llm.log", detached=True, port=port,
                                  extra_args=("--port", str(port), *FAKE_LLM_KNOBS)).start()
            started.append(fake)
            fake.wait_ready(30)
            fake_url = fake.url
        backends = Backends(f"kafka://{addresses['kafka_bootstrap']}", addresses["postgres_url"],
                            addresses["redis_url"])
        config = {"QAFLOW_LOG_FORMAT": "text", "QAFLOW_SCORER": scorer, **_shell_config(),
                  **_llm_config(llm, fake_url), **extra_env}
        procs = []
        for name in _wanted_services():
            spec = SERVICES[name]
            env = environment(spec, backends, port=_free_or(spec.port), config=config,
                              multiproc_dir=root / "prometheus" / name)
            procs.append(ServiceProcess(spec, env, logs / f"{name}.log", detached=True).start())
        started.extend(procs)
        for p in procs:
            p.wait_ready(180 if p.name == "score-worker" and scorer == "bertscore" else 60)
    except Exception:
        for p in reversed(started):
            p.stop(grace_s=10)
        raise
    return {p.name: p.detach() for p in started}


def stop_services(root: Path) -> dict[str, bool]:
    from qaflow.devstack.pids import stop_pid

    path = root / SERVICES_FILE
    if not path.is_file():
        return {}
    services: dict[str, dict[str, Any]] = json.loads(path.read_text())["services"]
    stopped = {name: stop_pid(info["pid"], info.get("start_time"), grace=25.0)
               for name, info in reversed(list(services.items()))}
    path.unlink()
    return stopped


def services_status(root: Path) -> dict[str, Any]:
    from qaflow.devstack.pids import alive

    path = root / SERVICES_FILE
    if not path.is_file():
        return {}
    services: dict[str, dict[str, Any]] = json.loads(path.read_text())["services"]
    for info in services.values():
        info["running"] = alive(info["pid"], info.get("start_time"))
    return services


def _print(state: dict[str, Any], services: dict[str, Any]) -> None:
    for name, address in state.get("addresses", {}).items():
        click.echo(f"  {name:<16} {address}")
    for name, info in services.items():
        flag = "" if info.get("running", True) else "  (not running)"
        click.echo(f"  {name:<16} {info['url']}   log: {info['log']}{flag}")


@click.group(name="dev")
def dev() -> None:
    """Local servers for development and tests, and optionally every service as a process."""


@dev.command()
@click.option("--services", is_flag=True, help="Also start the api, the workers and the fake LLM as processes.")
@click.option("--llm", default="fake", show_default=True,
              help="fake (the fake LLM server, a simulator), offline (the in-process simulator), or the base "
              "URL of an OpenAI-compatible server.")
@click.option("--scorer", type=click.Choice(["bertscore", "lexical"]), default="bertscore", show_default=True,
              help="Scorer of the score-worker.")
@click.option("--env", "-e", "env_pairs", multiple=True, metavar="QAFLOW_NAME=VALUE",
              help="A setting for every service (repeatable).")
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Default: <repo>/.devstack")
@click.option("--json", "as_json", is_flag=True, help="Print the state as JSON.")
@friendly_errors
def up(services: bool, llm: str, scorer: str, env_pairs: tuple[str, ...], state_dir: Path | None,
       as_json: bool) -> None:
    """Start Kafka, PostgreSQL and Redis (and with --services, every service); print the URLs."""
    from qaflow.devstack.stack import up as servers_up

    root = _state_dir(state_dir)
    extra_env = _parse_env(env_pairs)
    state = servers_up(root)
    running = services_status(root)
    if services and not (running and all(i["running"] for i in running.values())):
        stop_services(root)
        running = start_services(root, state["addresses"], llm=llm, scorer=scorer, extra_env=extra_env)
        (root / SERVICES_FILE).write_text(json.dumps({"services": running}, indent=2) + "\n")
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
    from qaflow.devstack.stack import down as servers_down

    root = _state_dir(state_dir)
    stopped = {**stop_services(root), **servers_down(root)}
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
    from qaflow.devstack.stack import status as servers_status

    root = _state_dir(state_dir)
    state = servers_status(root)
    services = services_status(root)
    ok = bool(state.get("running")) and all(i["running"] for i in services.values())
    if as_json:
        click.echo(json.dumps({**state, "services": services}, indent=2))
    elif not state.get("running") and not services:
        click.echo("not running (qaflow dev up)")
    else:
        for name, info in state.get("servers", {}).items():
            click.echo(f"  {name:<16} pid {info['pid']:<8} {'running' if info['running'] else 'NOT RUNNING'}")
        _print({"addresses": state.get("addresses", {})}, services)
    raise SystemExit(0 if ok else 1)
