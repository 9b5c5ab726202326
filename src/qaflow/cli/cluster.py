"""``qaflow cluster status``: the state of a qaflow release on Kubernetes."""

from __future__ import annotations

import json
from dataclasses import asdict

import click
from rich.console import Console
from rich.table import Table

from qaflow.cli.common import friendly_errors
from qaflow.k8s.status import ClusterStatus, connect, gather


@click.group("cluster")
def cluster() -> None:
    """Inspect qaflow on a Kubernetes cluster (uses your kubeconfig)."""


@cluster.command("status")
@click.option("--context", default=None, help="kubeconfig context; default: the current one.")
@click.option("-n", "--namespace", default="default", show_default=True, help="Namespace of the release.")
@click.option("--release", default=None, help="Helm release name, to tell several releases apart.")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@friendly_errors
def status(context: str | None, namespace: str, release: str | None, as_json: bool) -> None:
    """Pods by component, the FlinkDeployment's job state, KafkaTopics ready, llm-worker replicas."""
    api, name = connect(context)
    st = gather(api, name, namespace, release)
    if as_json:
        click.echo(json.dumps(asdict(st), default=dict, sort_keys=True))
        return
    show(st, Console())


def show(st: ClusterStatus, console: Console) -> None:
    console.print(f"[bold]context[/bold] {st.context}  [bold]namespace[/bold] {st.namespace}")
    pods = Table("component", "pods", title="Pods")
    for comp, counts in st.pods.items():
        pods.add_row(comp, ", ".join(f"{n} {state}" for state, n in sorted(counts.items())))
    console.print(pods)
    if st.flink:
        flink = Table("FlinkDeployment", "job", "lifecycle")
        for f in st.flink:
            flink.add_row(f["name"], f["job"], f["lifecycle"])
        console.print(flink)
    if st.topics:
        ready = sum(1 for t in st.topics if t["ready"] == "True")
        console.print(
            f"KafkaTopics ready: {ready}/{len(st.topics)}  "
            + ", ".join(t["topic"] for t in st.topics if t["ready"] != "True")
        )
    for name, n in st.llm_workers.items():
        console.print(f"llm-worker {name}: {n}")
    for note in st.notes:
        console.print(f"[yellow]note:[/yellow] {note}")
