"""The deployment files, checked by reading them: no Docker engine runs here.

compose.yaml is validated against the Compose specification's JSON schema (vendored in
tests/data, see its README), and against the worker's own settings; the Dockerfile's final
stage against the rules of issue 4; the Grafana dashboard against the metrics the worker
really exports.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import boto3
import jsonschema
import pytest
import yaml

from media_worker.config import Settings
from media_worker.observability.metrics import WorkerMetrics

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"
DOCKERFILE = ROOT / "Dockerfile.worker"
DASHBOARD = ROOT / "deploy" / "grafana" / "media-worker-dashboard.json"
INIT_SQS = ROOT / "deploy" / "localstack" / "init-sqs.sh"
OPERATIONS = ROOT / "docs" / "operations.md"
SCHEMA = Path(__file__).resolve().parents[1] / "data" / "compose-spec.json"


# --- compose.yaml ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def worker(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]["worker"]


def schema_errors(document: object) -> list[str]:
    # The schema declares draft 2019-09 under an old spelling of its URI that jsonschema does
    # not recognise, so the draft is named here. No format checker: the schema's "duration"
    # means Compose durations (45s), not the ISO 8601 ones (PT45S) a checker would demand.
    validator = jsonschema.Draft201909Validator(json.loads(SCHEMA.read_text()))
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(document)]


def test_compose_file_follows_the_compose_specification(compose: dict[str, Any]) -> None:
    assert schema_errors(compose) == []


def test_the_schema_check_catches_a_misspelt_key(compose: dict[str, Any]) -> None:
    broken = json.loads(json.dumps(compose))
    broken["services"]["worker"]["stop_grace_perod"] = "45s"
    assert schema_errors(broken) != []


def test_reference_setup_has_every_service(compose: dict[str, Any]) -> None:
    assert {"postgres", "minio", "minio-init", "localstack", "imagorvideo", "migrate",
            "worker"} <= set(compose["services"])


def test_worker_can_be_scaled(worker: dict[str, Any]) -> None:
    assert "container_name" not in worker
    assert "ports" not in worker  # a published host port would clash between replicas


def test_worker_sets_only_real_settings(worker: dict[str, Any]) -> None:
    settings = {name.upper() for name in Settings.model_fields}
    assert set(worker["environment"]) - settings == set()


def test_worker_points_at_the_services(worker: dict[str, Any]) -> None:
    env = worker["environment"]
    assert env["DATABASE_URL"].startswith("postgresql://")
    assert env["SQS_QUEUE_URL"].endswith("/media-jobs")
    assert env["SQS_DLQ_URL"].endswith("/media-jobs-dlq")
    assert env["MINIO_ENDPOINT"] == "http://minio:9000"


def test_stop_grace_period_exceeds_the_shutdown_grace(worker: dict[str, Any]) -> None:
    grace = float(worker["environment"]["SHUTDOWN_GRACE_SECONDS"])
    assert duration_seconds(worker["stop_grace_period"]) > grace


def test_every_dependency_has_a_condition(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        for dependency, rule in service.get("depends_on", {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            assert "condition" in rule, f"{name} -> {dependency} has no condition"


def test_localstack_runs_the_queue_script(compose: dict[str, Any]) -> None:
    volumes = compose["services"]["localstack"]["volumes"]
    source = next(v.split(":")[0] for v in volumes if "init-sqs.sh" in v)
    script = (ROOT / source).resolve()
    assert script == INIT_SQS
    assert script.stat().st_mode & stat.S_IXUSR, "LocalStack runs init hooks as executables"


def duration_seconds(text: str) -> float:
    """A Compose duration such as `45s`, `1m30s` or `2m`, in seconds."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", text)
    assert "".join(n + u for n, u in parts) == text, f"not a duration: {text}"
    return sum(float(number) * units[unit] for number, unit in parts)


# --- deploy/localstack/init-sqs.sh, run against a real SQS-compatible server ---------------
@pytest.mark.services
def test_init_sqs_creates_queues_with_a_redrive_policy(
    moto_endpoint: str, unique_name: str, tmp_path: Path
) -> None:
    if shutil.which("aws") is None:
        pytest.skip("the aws command line is not installed")
    awslocal = tmp_path / "awslocal"  # LocalStack's wrapper, pointed at the moto server
    awslocal.write_text(
        f'#!/bin/sh\nexec aws --endpoint-url={moto_endpoint} --region us-east-1 "$@"\n'
    )
    awslocal.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}",
           "QUEUE_NAME": unique_name, "DLQ_NAME": f"{unique_name}-dlq"}
    for _ in range(2):  # a second run must be harmless
        subprocess.run(["sh", str(INIT_SQS)], env=env, check=True, capture_output=True,
                       timeout=120)

    sqs = boto3.client("sqs", endpoint_url=moto_endpoint, region_name="us-east-1")
    url = sqs.get_queue_url(QueueName=unique_name)["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    policy = json.loads(attributes["RedrivePolicy"])
    assert policy["deadLetterTargetArn"].endswith(f":{unique_name}-dlq")
    assert int(policy["maxReceiveCount"]) == 10


# --- Dockerfile.worker -------------------------------------------------------------------
def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """Instructions as (KEYWORD, arguments), grouped by stage (each starts at a FROM)."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    stages: list[list[tuple[str, str]]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, arguments = line.partition(" ")
        if keyword.upper() == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((keyword.upper(), arguments.strip()))
    return stages


@pytest.fixture(scope="module")
def final_stage() -> list[tuple[str, str]]:
    stages = dockerfile_stages()
    assert len(stages) >= 2, "a builder stage and a final stage"
    return stages[-1]


def instruction(stage: list[tuple[str, str]], keyword: str) -> str:
    values = [arguments for kw, arguments in stage if kw == keyword]
    assert values, f"no {keyword} in the final stage"
    return values[-1]


def test_final_stage_runs_as_a_non_root_user(final_stage: list[tuple[str, str]]) -> None:
    user = instruction(final_stage, "USER").split(":")[0]
    assert user not in {"root", "0", ""}


def test_final_stage_has_a_healthcheck_on_healthz(final_stage: list[tuple[str, str]]) -> None:
    healthcheck = instruction(final_stage, "HEALTHCHECK")
    command = healthcheck.split(" CMD ", 1)[1].strip()
    argv = json.loads(command)  # exec form: invalid JSON would silently become a shell command
    assert argv[0] == "python"
    assert "/healthz" in argv[-1]
    assert "METRICS_PORT" in argv[-1]


def test_final_stage_has_no_build_tools(final_stage: list[tuple[str, str]]) -> None:
    text = " ".join(arguments for _, arguments in final_stage)
    for tool in ("gcc", "build-essential", "g++", "make ", "pip install"):
        assert tool not in text


def test_final_stage_copies_the_venv_and_runs_the_worker(
    final_stage: list[tuple[str, str]],
) -> None:
    assert "--from=builder" in instruction(final_stage, "COPY")
    assert json.loads(instruction(final_stage, "ENTRYPOINT")) == ["media-worker"]
    assert json.loads(instruction(final_stage, "CMD")) == ["run"]
    assert instruction(final_stage, "STOPSIGNAL") == "SIGTERM"
    assert instruction(final_stage, "WORKDIR") == "/app"


def test_exposed_port_is_the_metrics_port(final_stage: list[tuple[str, str]]) -> None:
    env = instruction(final_stage, "ENV")
    assert "METRICS_PORT=9100" in env
    assert "LOG_FORMAT=json" in env
    assert instruction(final_stage, "EXPOSE") == "9100"


# --- Grafana dashboard and docs ----------------------------------------------------------
PROMQL_WORDS = {"by", "without", "and", "or", "unless", "on", "ignoring", "bool", "offset",
                "group_left", "group_right", "inf", "nan"}


def metric_names_in(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (functions, labels and keywords removed)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)  # string literals
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # range selectors
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    expr = re.sub(r"\$\{?\w+\}?", "", expr)  # Grafana variables
    identifiers = re.findall(r"([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?", expr)
    return {name for name, call in identifiers if not call} - PROMQL_WORDS


def dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    panels = dashboard["panels"]
    panels += [child for panel in panels for child in panel.get("panels", [])]
    return [target["expr"] for panel in panels for target in panel.get("targets", [])]


def test_metric_names_are_found_in_promql() -> None:
    expr = ('histogram_quantile(0.95, sum by (le, kind) (rate(x_bucket{a="b"}[5m])))'
            ' / on(instance) group_left y_total')
    assert metric_names_in(expr) == {"x_bucket", "y_total"}


def test_dashboard_reads_only_metrics_the_worker_exports() -> None:
    exported = WorkerMetrics().metric_names()
    exprs = dashboard_exprs()
    assert exprs
    for expr in exprs:
        used = metric_names_in(expr)
        assert used, f"no metric in {expr}"
        assert used <= exported, f"unknown metric {used - exported} in {expr}"


def test_dashboard_covers_the_issue_panels() -> None:
    joined = "\n".join(dashboard_exprs())
    for needle in ("media_worker_jobs_total", "histogram_quantile",
                   "media_worker_job_duration_seconds_bucket", "media_worker_queue_messages",
                   "media_worker_queue_oldest_message_age_seconds",
                   "media_worker_jobs_in_flight", "media_worker_engine_errors_total"):
        assert needle in joined


def test_operations_doc_describes_every_metric() -> None:
    text = OPERATIONS.read_text()
    exposed = {re.sub(r"_(bucket|sum|count)$", "", name)
               for name in WorkerMetrics().metric_names()}
    missing = {name for name in exposed if f"`{name}`" not in text}
    assert missing == set()
