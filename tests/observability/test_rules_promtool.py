"""The PrometheusRule's groups are a valid Prometheus rules file (promtool parses it strictly:
unknown fields, bad PromQL, bad durations and templates are errors), and the alerts fire on
the series they are meant for and stay quiet otherwise (promtool test rules)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.charts


def promtool_run(promtool: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(promtool), *args], capture_output=True, text=True, timeout=120, cwd=cwd, check=False)


def write_rules(rule: dict[str, Any], path: Path) -> Path:
    path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}, sort_keys=False))
    return path


def test_promtool_checks_the_rules(promtool: Path, prometheus_rule: dict[str, Any], tmp_path: Path) -> None:
    rules = write_rules(prometheus_rule, tmp_path / "rules.yaml")
    proc = promtool_run(promtool, "check", "rules", str(rules), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS: 8 rules found" in proc.stdout, proc.stdout


def test_promtool_refuses_a_broken_expression(promtool: Path, prometheus_rule: dict[str, Any], tmp_path: Path) -> None:
    """Guards the test above: a PromQL syntax error in one alert fails the check."""
    broken = yaml.safe_load(yaml.safe_dump(prometheus_rule))
    broken["spec"]["groups"][0]["rules"][0]["expr"] += " and ("
    proc = promtool_run(promtool, "check", "rules", str(write_rules(broken, tmp_path / "rules.yaml")), cwd=tmp_path)
    assert proc.returncode != 0


NS = 'namespace="qaflow"'
# promtool unit tests, series in and alerts out:
# https://prometheus.io/docs/prometheus/latest/configuration/unit_testing_rules/
RUNBOOK = "https://github.com/qaflow/qaflow/blob/main/docs/operations.md"
STUCK = 'consumergroup="qaflow-llm-worker", topic="qa.questions", partition="0"'
SLOW = 'consumergroup="qaflow-score", topic="qa.answers", partition="0"'
FLINK_JOB = {"severity": "warning", "namespace": "qaflow", "job_name": "qaflow-score"}
UNIT_TESTS: list[dict[str, Any]] = [
    {   # 30% of calls answered 429 for 20 minutes: the quota alert fires after its 15 minutes.
        "interval": "1m",
        "input_series": [
            {"series": f'qaflow_llm_calls_total{{{NS}, outcome="error", error_class="quota"}}', "values": "0+30x30"},
            {"series": f'qaflow_llm_calls_total{{{NS}, outcome="ok", error_class="none"}}', "values": "0+70x30"},
        ],
        "alert_rule_test": [
            {"eval_time": "10m", "alertname": "QaflowLlmQuotaShareHigh", "exp_alerts": []},
            {"eval_time": "28m", "alertname": "QaflowLlmQuotaShareHigh", "exp_alerts": [
                {"exp_labels": {"severity": "warning"}, "exp_annotations": {
                    "summary": "The LLM provider answers 429 to many calls.",
                    "description": "30% of LLM calls got 429 for 15m (threshold 0.2).",
                    "runbook_url": f"{RUNBOOK}#qaflowllmquotasharehigh",
                }},
            ]},
        ],
    },
    {   # 5% of 429s is normal: quiet.
        "interval": "1m",
        "input_series": [
            {"series": f'qaflow_llm_calls_total{{{NS}, outcome="error", error_class="quota"}}', "values": "0+5x30"},
            {"series": f'qaflow_llm_calls_total{{{NS}, outcome="ok", error_class="none"}}', "values": "0+95x30"},
        ],
        "alert_rule_test": [{"eval_time": "28m", "alertname": "QaflowLlmQuotaShareHigh", "exp_alerts": []}],
    },
    {   # The store unreachable for 3 minutes, then back.
        "interval": "1m",
        "input_series": [{"series": f"qaflow_store_unavailable{{{NS}, pod=\"w\"}}", "values": "0 1 1 1 1 0 0"}],
        "alert_rule_test": [
            {"eval_time": "2m", "alertname": "QaflowStoreUnavailable", "exp_alerts": []},
            {"eval_time": "4m", "alertname": "QaflowStoreUnavailable",
             "exp_alerts": [{"exp_labels": {"severity": "critical"}}]},
            {"eval_time": "6m", "alertname": "QaflowStoreUnavailable", "exp_alerts": []},
        ],
    },
    {   # A group with 500 messages waiting whose committed offset stands still; another that moves.
        "interval": "1m",
        "input_series": [
            {"series": f"kafka_consumergroup_lag{{{STUCK}}}", "values": "500x30"},
            {"series": f"kafka_consumergroup_current_offset{{{STUCK}}}", "values": "1000x30"},
            {"series": f"kafka_consumergroup_lag{{{SLOW}}}", "values": "500+20x30"},
            {"series": f"kafka_consumergroup_current_offset{{{SLOW}}}", "values": "0+100x30"},
        ],
        "alert_rule_test": [
            {"eval_time": "25m", "alertname": "QaflowNoConsumption",
             "exp_alerts": [{"exp_labels": {"severity": "critical", "consumergroup": "qaflow-llm-worker"}}]},
            {"eval_time": "30m", "alertname": "QaflowConsumerLagGrowing",
             "exp_alerts": [{"exp_labels": {"severity": "warning", "consumergroup": "qaflow-score"}}]},
        ],
    },
    {   # 3 dead letters a minute from the services, 0 from the Flink job.
        "interval": "1m",
        "input_series": [
            {"series": f'qaflow_records_produced_total{{{NS}, topic="qa.dead-letter"}}', "values": "0+3x20"},
            {"series": f'qaflow_records_produced_total{{{NS}, topic="qa.answers"}}', "values": "0+300x20"},
        ],
        "alert_rule_test": [{"eval_time": "15m", "alertname": "QaflowDeadLetters",
                             "exp_alerts": [{"exp_labels": {"severity": "warning"}}]}],
    },
    {   # 10% failed results; the Flink job restarted once; a checkpoint failed once.
        "interval": "1m",
        "input_series": [
            {"series": f'qaflow_storage_results_total{{{NS}, status="failed"}}', "values": "0+1x40"},
            {"series": f'qaflow_storage_results_total{{{NS}, status="validated"}}', "values": "0+9x40"},
            {"series": f'flink_jobmanager_job_numRestarts{{{NS}, job_name="qaflow-score"}}', "values": "0x20 1x20"},
            {"series": f'flink_jobmanager_job_numberOfFailedCheckpoints{{{NS}, job_name="qaflow-score"}}',
             "values": "0x20 1x20"},
        ],
        "alert_rule_test": [
            {"eval_time": "35m", "alertname": "QaflowFailedShareHigh",
             "exp_alerts": [{"exp_labels": {"severity": "warning"}}]},
            {"eval_time": "10m", "alertname": "QaflowFlinkJobRestarting", "exp_alerts": []},
            {"eval_time": "25m", "alertname": "QaflowFlinkJobRestarting",
             "exp_alerts": [{"exp_labels": FLINK_JOB}]},
            {"eval_time": "25m", "alertname": "QaflowFlinkCheckpointsFailing",
             "exp_alerts": [{"exp_labels": FLINK_JOB}]},
        ],
    },
]


def test_the_alerts_fire_on_their_symptoms(promtool: Path, prometheus_rule: dict[str, Any], tmp_path: Path) -> None:
    """The first case checks the rendered annotations too; promtool compares annotations
    exactly, so the others run on a copy of the rules without annotations."""
    bare = yaml.safe_load(yaml.safe_dump(prometheus_rule))
    for group in bare["spec"]["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    write_rules(prometheus_rule, tmp_path / "rules.yaml")
    write_rules(bare, tmp_path / "bare-rules.yaml")
    runs = (("annotated", "rules.yaml", UNIT_TESTS[:1]), ("bare", "bare-rules.yaml", UNIT_TESTS[1:]))
    for name, rules, cases in runs:
        (tmp_path / f"{name}-tests.yaml").write_text(yaml.safe_dump(
            {"rule_files": [rules], "evaluation_interval": "1m", "tests": cases}, sort_keys=False))
        proc = promtool_run(promtool, "test", "rules", f"{name}-tests.yaml", cwd=tmp_path)
        assert proc.returncode == 0, proc.stdout + proc.stderr
