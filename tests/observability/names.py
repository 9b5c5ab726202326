"""Which metric names the Grafana dashboard and the alerts use, and which of them nobody exports.

    used = dashboard_names(load_dashboard()) | rule_names(rule)     # {name: [where, ...]}
    known = exposed_names(scraped_text) | exporter_names()
    assert not unknown(used, known)

Names are read from the PromQL with promql-parser (a Python binding of the Rust crate
GreptimeTeam/promql-parser), never by regex; exposed names from the text format with
prometheus_client's own parser. The one list of names no qaflow service exports is
charts/qaflow/files/monitoring/exporter-metrics.yaml.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import promql_parser
import yaml
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parents[2]
MONITORING_FILES = REPO / "charts" / "qaflow" / "files" / "monitoring"
DASHBOARD = MONITORING_FILES / "qaflow-dashboard.json"
EXPORTERS = MONITORING_FILES / "exporter-metrics.yaml"

# Grafana's interval variables stand where PromQL wants a duration; any duration parses the same.
_GRAFANA_DURATIONS = re.compile(r"\$__(rate_interval|interval|range)\b|\$\{__(rate_interval|interval|range)\}")
_LABEL_VALUES = re.compile(r"^\s*label_values\((.*),\s*[A-Za-z_][A-Za-z0-9_]*\s*\)\s*$", re.S)

# Series a family of each type exposes (prometheus_client's names, OpenMetrics suffixes).
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("_count", "_sum", "_created", ""),
    "gauge": ("",),
    "info": ("_info",),
    "stateset": ("",),
    "gaugehistogram": ("_bucket", "_gcount", "_gsum"),
    "unknown": ("",),
}


def load_dashboard(path: Path = DASHBOARD) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def metric_names(expr: str) -> set[str]:
    """Every metric name a PromQL expression selects (``{__name__="x"}`` included).

    Raises ValueError (from the parser) when the expression is not valid PromQL.
    """
    tree = promql_parser.parse(_GRAFANA_DURATIONS.sub("5m", expr))
    names: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            if node.name:
                names.add(node.name)
            for m in node.matchers.matchers:
                if m.name == "__name__" and m.op == promql_parser.MatchOp.Equal:
                    names.add(m.value)

    promql_parser.walk(tree, visit)
    return names


def _panels(panels: Iterable[Mapping[str, Any]]) -> Iterable[Mapping[str, Any]]:
    for p in panels:
        yield p
        yield from _panels(p.get("panels") or ())


def dashboard_exprs(dashboard: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``[(where, PromQL)]``: every panel target, and the selector of every label_values() variable."""
    out: list[tuple[str, str]] = []
    for p in _panels(dashboard.get("panels") or ()):
        for t in p.get("targets") or ():
            if t.get("expr"):
                out.append((f"panel {p.get('title')!r} target {t.get('refId')}", t["expr"]))
    for var in (dashboard.get("templating") or {}).get("list") or ():
        if var.get("type") != "query":
            continue
        query = var.get("query")
        text = query.get("query", "") if isinstance(query, Mapping) else str(query or "")
        m = _LABEL_VALUES.match(text)
        if m:
            out.append((f"variable {var.get('name')!r}", m.group(1)))
    return out


def rule_exprs(rule: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``[(where, PromQL)]`` of a PrometheusRule object (or a rules file: ``{"groups": [...]}``)."""
    spec = rule.get("spec", rule)
    return [
        (f"{g['name']}/{r.get('alert') or r.get('record')}", str(r["expr"]))
        for g in spec["groups"]
        for r in g["rules"]
    ]


def used_names(exprs: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """``{metric name: [where it is used, ...]}``."""
    used: dict[str, list[str]] = {}
    for where, expr in exprs:
        for name in metric_names(expr):
            used.setdefault(name, []).append(where)
    return used


def exposed_names(text: str) -> set[str]:
    """Series names a ``/metrics`` page exposes, including those of families that have no
    sample yet (a labelled counter never incremented still has its # TYPE line)."""
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.update(s.name for s in family.samples)
        names.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",)))
    return names


def exporter_names(path: Path = EXPORTERS) -> dict[str, str]:
    """``{metric name: exporter}`` from the documented exporter list."""
    data = yaml.safe_load(path.read_text())
    return {name: exporter for exporter, spec in data["exporters"].items() for name in spec["metrics"]}


def unknown(used: Mapping[str, list[str]], known: Iterable[str]) -> dict[str, list[str]]:
    """The used names nobody exports, with where they are used."""
    known_set = set(known)
    return {name: where for name, where in sorted(used.items()) if name not in known_set}
