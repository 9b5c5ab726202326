"""Every service of the loop running as its own process (the e2e stack: api, llm-worker,
retry-worker, score-worker, storage-writer, scorer, dashboard and traffic-gen, on real Kafka,
PostgreSQL and Redis, with a fake LLM answering 10% 429s and 5% 503s). Mid-run:

1. every /metrics is scraped, and every metric name the Grafana dashboard and the alerts use
   is on one of them or in the documented exporter list (Strimzi Kafka exporter, Flink's
   reporter); a misspelt name is caught;
2. the dashboard page is opened in Debian's chromium (headless, driven by Playwright): no
   console errors, every chart drew data, the numbers refresh; a screenshot is saved under
   the test's tmp directory (and in docs/img/dashboard.png with UPDATE_DOCS_SCREENSHOT=1).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.conftest import ServiceStack
from tests.e2e.loop import start_flaky_llm
from tests.observability.names import (
    REPO,
    dashboard_exprs,
    exporter_names,
    exposed_names,
    load_dashboard,
    rule_exprs,
    unknown,
    used_names,
)
from tests.pg import terminal_count

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.timeout(600)]

SAMPLE = REPO / "data" / "sample.csv"
DOCS_SCREENSHOT = REPO / "docs" / "img" / "dashboard.png"
# Flags that work in this sandbox (no GPU, no user namespaces, no network but loopback);
# Playwright adds --headless and a fresh --user-data-dir (launch_persistent_context).
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]
CHARTS = ("throughput", "latency", "scores", "generations", "bygen")  # the page's <svg id=...>
# The page's figures, {data-k: text shown}.
FIGURES = "() => Object.fromEntries([...document.querySelectorAll('[data-k]')].map(e => [e.dataset.k, e.textContent]))"


def start_loop(stack: ServiceStack) -> dict[str, Any]:
    """Every service, and traffic-gen sending the sample at 4/s (about 50 s)."""
    # a price table, so the cost counter, the dashboard's cost figures and the Grafana cost panel have data
    fake = start_flaky_llm(stack, QAFLOW_SHUTDOWN_GRACE_S="5", QAFLOW_LLM_PRICES='{"*": [0.15, 0.6]}')
    services = [stack.start(name) for name in ("storage-writer", "api", "llm-worker", "retry-worker", "score-worker",
                                               "scorer")]
    for proc in services:
        proc.wait_ready(120)
    api = stack.procs["api"]
    dashboard = stack.start("dashboard", QAFLOW_DASHBOARD_REFRESH_S="1", QAFLOW_DASHBOARD_API_URL=api.url)
    dashboard.wait_ready(60)
    stack.mark("services ready")
    traffic = stack.start(
        "traffic-gen", "--json",
        QAFLOW_TRAFFIC_API_URL=api.url, QAFLOW_TRAFFIC_DATASET=str(SAMPLE), QAFLOW_TRAFFIC_RATE="4",
        QAFLOW_TRAFFIC_REPEAT_SHARE="0.2", QAFLOW_TRAFFIC_SEED="7", QAFLOW_TRAFFIC_WAIT_S="240",
    )
    return {"fake": fake, "api": api, "dashboard": dashboard, "traffic": traffic}


def wait_mid_run(stack: ServiceStack, traffic: Any, at_least: int, timeout_s: float = 240) -> int:
    """Until ``at_least`` questions are terminal while traffic-gen still runs."""
    deadline = time.monotonic() + timeout_s
    while (n := terminal_count(stack.backends.store_url)) < at_least:
        assert traffic.running(), f"traffic-gen ended before the mid-run checks\n{traffic.tail()}"
        assert time.monotonic() < deadline, f"only {n} terminal after {timeout_s} s\n{stack.dump_logs()}"
        time.sleep(0.5)
    return n


def scrape_all(stack: ServiceStack) -> dict[str, str]:
    """``{service: /metrics text}`` of every qaflow process (the fake LLM is not one)."""
    pages: dict[str, str] = {}
    for key, proc in stack.procs.items():
        if key == "fake-llm":
            continue
        r = requests.get(proc.url + "/metrics", timeout=10)
        assert r.status_code == 200, (key, r.status_code, r.text[:200])
        pages[key] = r.text
    return pages


def misspell(dashboard: dict[str, Any], name: str, typo: str) -> dict[str, Any]:
    """A copy of ``dashboard`` with ``name`` misspelt in the first panel query that uses it."""
    copy: dict[str, Any] = json.loads(json.dumps(dashboard))
    for panel in copy["panels"]:
        for target in panel.get("targets", ()):
            if name in target.get("expr", ""):
                target["expr"] = target["expr"].replace(name, typo)
                return copy
    raise AssertionError(name)


def check_metric_names(pages: dict[str, str], rule: dict[str, Any]) -> dict[str, Any]:
    exposed: dict[str, set[str]] = {key: exposed_names(text) for key, text in pages.items()}
    on_services = set().union(*exposed.values())
    external = exporter_names()
    dashboard = load_dashboard()
    used = used_names([*dashboard_exprs(dashboard), *rule_exprs(rule)])
    missing = unknown(used, on_services | set(external))
    assert not missing, "metric names used by the dashboard or the alerts that nobody exports:\n" + "\n".join(
        f"  {name}: {', '.join(where)}" for name, where in missing.items()
    )
    # The exporter list holds only names no qaflow service exports, and only names something uses.
    assert not set(external) & on_services, set(external) & on_services
    assert not set(external) - set(used), set(external) - set(used)

    # The check can fail: one misspelt name in (a copy of) the dashboard is reported, alone.
    typo = misspell(dashboard, "qaflow_llm_calls_total", "qaflow_llm_call_total")
    caught = unknown(used_names([*dashboard_exprs(typo), *rule_exprs(rule)]), on_services | set(external))
    assert list(caught) == ["qaflow_llm_call_total"], caught
    return {"services": {k: len(v) for k, v in exposed.items()}, "used": len(used),
            "from_services": len(set(used) & on_services), "from_exporters": len(set(used) & set(external))}


def open_dashboard(url: str, chromium: Path, out_dir: Path) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    profile = out_dir / "chromium-profile"  # fresh for every run
    shutil.rmtree(profile, ignore_errors=True)
    errors: list[str] = []
    polls: list[int] = []
    with sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(
            str(profile), executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1000},
        )
        try:
            page = ctx.new_page()
            page.on("console", lambda m: errors.append(f"console.{m.type}: {m.text} ({m.location.get('url')})")
                    if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
            page.on("response", lambda r: errors.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)
            page.on("response", lambda r: polls.append(r.status) if r.url.endswith("/api/summary") else None)
            page.goto(url + "/", wait_until="load")

            # Every chart has drawn bars (not "no data yet"), and the loop's stacked bar has parts.
            drawn = page.wait_for_function(
                """(ids) => {
                  const out = {};
                  for (const id of ids) {
                    const svg = document.getElementById(id);
                    if (!svg || svg.textContent.includes("no data yet")) return false;
                    const bars = [...svg.querySelectorAll("rect")]
                      .filter(r => parseFloat(r.getAttribute("height")) > 0);
                    if (!bars.length) return false;
                    out[id] = bars.length;
                  }
                  out.stack = document.querySelectorAll("#stack span").length;
                  return out.stack > 0 ? out : false;
                }""",
                arg=list(CHARTS), timeout=30_000,
            ).json_value()
            before = page.evaluate(FIGURES)
            # The numbers refresh: the page polls /api/summary and the figures change as results arrive.
            page.wait_for_function(
                "(before) => [...document.querySelectorAll('[data-k]')]"
                ".some(e => before[e.dataset.k] !== e.textContent)",
                arg=before, timeout=30_000,
            )
            after = page.evaluate(FIGURES)
            shot = out_dir / "dashboard-mid-run.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            ctx.close()
    assert not errors, errors
    assert polls and set(polls) == {200}, polls
    changed = {k: (before[k], after[k]) for k in before if before[k] != after.get(k)}
    assert changed
    return {"drawn": drawn, "changed": changed, "polls": len(polls), "screenshot": shot}


def test_metric_names_and_the_dashboard_page_mid_run(
    stack: ServiceStack, chromium: Path, prometheus_rule: dict[str, Any], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    procs = start_loop(stack)
    at = wait_mid_run(stack, procs["traffic"], at_least=20)
    stack.mark("mid-run")

    names = check_metric_names(scrape_all(stack), prometheus_rule)
    stack.mark("metrics checked")
    page = open_dashboard(procs["dashboard"].url, chromium, tmp_path)
    stack.mark("page checked")
    still_running = procs["traffic"].running()
    terminal_after = terminal_count(stack.backends.store_url)
    assert terminal_after < 209 or still_running  # the page was read while the loop ran
    if os.environ.get("UPDATE_DOCS_SCREENSHOT") == "1":
        DOCS_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(page["screenshot"], DOCS_SCREENSHOT)
    with capsys.disabled():
        print(
            f"\nobservability: {at} terminal at the scrape, {terminal_after} after the page checks "
            f"(traffic-gen running: {still_running}); series names per service {names['services']}; "
            f"{names['used']} names used by the dashboard and alerts: {names['from_services']} on the services' "
            f"/metrics, {names['from_exporters']} from the exporter list; charts drawn {page['drawn']}; "
            f"{page['polls']} polls, changed {page['changed']}; screenshot {page['screenshot']}\n"
            "timeline: " + ", ".join(f"{k} at {v} s" for k, v in stack.timings.items())
        )
