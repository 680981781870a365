"""The Kubernetes manifests under deploy/kubernetes, checked statically (no cluster): they parse,
use known kinds, run real ``paygate`` commands with real flags, set only variables Paygate reads,
probe, stop gracefully, and wire selectors, Services, HPAs and PDBs to what exists.

Each check is a function returning the problems it finds, so the tests can also plant a defect
and prove the check catches it."""

from __future__ import annotations

import argparse
import copy
import dataclasses
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from paygate.cli import build_parser
from paygate.config import PLUGIN_ENV_PREFIX, Settings

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy" / "kubernetes"
TEMPLATES = {"secret.example.yaml"}  # never applied by kustomize: see kustomization.yaml
KNOWN_KINDS = {
    ("v1", "Namespace"),
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
    ("v1", "Service"),
    ("apps/v1", "Deployment"),
    ("batch/v1", "Job"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("policy/v1", "PodDisruptionBudget"),
    ("networking.k8s.io/v1", "Ingress"),
    ("kustomize.config.k8s.io/v1beta1", "Kustomization"),
}
# Variables the manifests may set that Settings does not read: none today. Add one here only
# with the reason it is read (e.g. by the image's entrypoint).
OTHER_VARIABLES: dict[str, str] = {}
SECRET_VARIABLES = {"DATABASE_URL", "REDIS_URL", "PAYGATE_SECRET_KEY", "PAYGATE_ENCRYPTION_KEYS"}
TIERS = {"api": 8000, "dashboard": 3000, "checkout": 3001}
PRE_STOP = re.compile(r"^sleep$")


def documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def manifest_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*.yaml") if p.name != "kustomization.yaml")


def all_objects() -> list[dict]:
    return [doc for path in manifest_files() for doc in documents(path)]


def of_kind(objects: list[dict], kind: str) -> list[dict]:
    return [o for o in objects if o["kind"] == kind]


def pod_spec(obj: dict) -> dict:
    return obj["spec"]["template"]["spec"]


def containers(obj: dict) -> list[dict]:
    return pod_spec(obj)["containers"]


def settings_variables() -> set[str]:
    return {
        f.metadata["env"]
        for f in dataclasses.fields(Settings)
        if "env" in f.metadata and "parse" in f.metadata
    }


def stop_timeout_default() -> float:
    return Settings.from_env({}).stop_timeout_seconds


# -- the checks ----------------------------------------------------------------------------


def unknown_kinds(objects: list[dict]) -> list[str]:
    return [
        f"{o.get('apiVersion')} {o.get('kind')}"
        for o in objects
        if (o.get("apiVersion"), o.get("kind")) not in KNOWN_KINDS
    ]


def unknown_variables(objects: list[dict]) -> list[str]:
    """Every variable a ConfigMap, Secret or container env sets is one Paygate reads."""
    known = settings_variables() | set(OTHER_VARIABLES)
    names = []
    for obj in objects:
        if obj["kind"] == "ConfigMap":
            names += list(obj.get("data", {}))
        elif obj["kind"] == "Secret":
            names += list(obj.get("stringData", {})) + list(obj.get("data", {}))
        elif obj["kind"] in ("Deployment", "Job"):
            names += [e["name"] for c in containers(obj) for e in c.get("env", [])]
    return [n for n in names if n not in known and not n.startswith(PLUGIN_ENV_PREFIX)]


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def bad_commands(objects: list[dict]) -> list[str]:
    """Every container runs ``paygate <subcommand>`` with flags that subcommand accepts."""
    problems = []
    commands = _subparsers(build_parser())
    for obj in of_kind(objects, "Deployment") + of_kind(objects, "Job"):
        for c in containers(obj):
            argv = [*c.get("command", []), *c.get("args", [])]
            probes = [
                c.get(kind, {}).get("exec", {}).get("command")
                for kind in ("livenessProbe", "readinessProbe")
            ]
            for line in [argv] + [probe for probe in probes if probe]:
                if not line or line[0] != "paygate" or len(line) < 2 or line[1] not in commands:
                    problems.append(f"{obj['metadata']['name']}: {line} is no paygate command")
                    continue
                try:
                    build_parser().parse_args(line[1:])
                except SystemExit:
                    problems.append(f"{obj['metadata']['name']}: {line} does not parse")
    return problems


def web_tier(container: dict) -> bool:
    """A container serving traffic through a Service (its ``http`` port); the worker's
    ``metrics`` port is only scraped."""
    return any(p.get("name") == "http" for p in container.get("ports", []))


def ungraceful(objects: list[dict]) -> list[str]:
    """Web tiers sleep in preStop, then get PAYGATE_STOP_TIMEOUT and a margin before SIGKILL;
    the worker gets PAYGATE_STOP_TIMEOUT; rolling updates never drop below the replicas."""
    problems = []
    stop = stop_timeout_default()
    for configmap in of_kind(objects, "ConfigMap"):
        stop = float(configmap["data"].get("PAYGATE_STOP_TIMEOUT", stop))
    for obj in of_kind(objects, "Deployment"):
        name = obj["metadata"]["name"]
        grace = pod_spec(obj).get("terminationGracePeriodSeconds", 30)
        sleep = 0.0
        for c in containers(obj):
            pre = c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command")
            if pre:
                assert PRE_STOP.match(pre[0]), pre
                sleep = float(pre[1])
            elif web_tier(c):
                problems.append(f"{name}: a web tier without a preStop sleep")
        if not grace > stop + sleep:
            problems.append(f"{name}: grace {grace} s is not above {stop} + {sleep} s")
        rolling = obj["spec"].get("strategy", {}).get("rollingUpdate", {})
        if rolling.get("maxUnavailable") != 0:
            problems.append(f"{name}: maxUnavailable is not 0")
    return problems


def unguarded(objects: list[dict]) -> list[str]:
    """Probes, resources and a locked-down security context on every Deployment (and Job)."""
    problems = []
    for obj in of_kind(objects, "Deployment") + of_kind(objects, "Job"):
        name = obj["metadata"]["name"]
        pod = pod_spec(obj).get("securityContext", {})
        if not pod.get("runAsNonRoot") or not pod.get("runAsUser"):
            problems.append(f"{name}: not run as a non-root user")
        for c in containers(obj):
            sec = c.get("securityContext", {})
            if sec.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{name}: privilege escalation allowed")
            if sec.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{name}: root filesystem writable")
            if sec.get("capabilities", {}).get("drop") != ["ALL"]:
                problems.append(f"{name}: capabilities not dropped")
            res = c.get("resources", {})
            for part in ("requests", "limits"):
                if not {"cpu", "memory"} <= set(res.get(part, {})):
                    problems.append(f"{name}: no cpu/memory {part}")
            if obj["kind"] == "Deployment":
                if "livenessProbe" not in c:
                    problems.append(f"{name}: no liveness probe")
                if "ports" in c and "readinessProbe" not in c:
                    problems.append(f"{name}: a web tier without a readiness probe")
            names = {e["name"] for e in c.get("env", [])}
            refs = {
                ref.get("configMapRef", ref.get("secretRef", {})).get("name")
                for ref in c.get("envFrom", [])
            }
            if not ({"paygate-config", "paygate-secrets"} <= refs or names):
                problems.append(f"{name}: takes neither the ConfigMap nor the Secret")
    return problems


def miswired(objects: list[dict]) -> list[str]:
    """Selectors match pod labels; Services reach a port a selected container declares;
    HPAs and PDBs target Deployments that exist; probes use declared ports."""
    problems = []
    deployments = {d["metadata"]["name"]: d for d in of_kind(objects, "Deployment")}
    labels = {name: d["spec"]["template"]["metadata"]["labels"] for name, d in deployments.items()}

    def selected(selector: dict) -> list[str]:
        return [n for n, lab in labels.items() if selector.items() <= lab.items()]

    for name, d in deployments.items():
        if not d["spec"]["selector"]["matchLabels"].items() <= labels[name].items():
            problems.append(f"{name}: selector does not match its pod labels")
        ports = {p["name"]: p["containerPort"] for c in containers(d) for p in c.get("ports", [])}
        for c in containers(d):
            for probe in ("readinessProbe", "livenessProbe"):
                port = c.get(probe, {}).get("httpGet", {}).get("port")
                if port is not None and port not in ports and port not in ports.values():
                    problems.append(f"{name}: {probe} on undeclared port {port}")
            argv = c.get("command", [])
            if "--port" in argv and int(argv[argv.index("--port") + 1]) not in ports.values():
                problems.append(f"{name}: listens on a port it does not declare")
    for svc in of_kind(objects, "Service"):
        targets = selected(svc["spec"]["selector"])
        if len(targets) != 1:
            problems.append(f"service {svc['metadata']['name']} selects {targets}")
            continue
        d = deployments[targets[0]]
        ports = {p["name"]: p["containerPort"] for c in containers(d) for p in c["ports"]}
        for port in svc["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            if target not in ports and target not in ports.values():
                problems.append(f"service {svc['metadata']['name']}: no container port {target}")
    for hpa in of_kind(objects, "HorizontalPodAutoscaler"):
        ref = hpa["spec"]["scaleTargetRef"]
        if ref["kind"] != "Deployment" or ref["name"] not in deployments:
            problems.append(f"hpa {hpa['metadata']['name']}: no Deployment {ref['name']}")
    for pdb in of_kind(objects, "PodDisruptionBudget"):
        if len(selected(pdb["spec"]["selector"]["matchLabels"])) != 1:
            problems.append(f"pdb {pdb['metadata']['name']} selects no single Deployment")
    return problems


# -- the tests -----------------------------------------------------------------------------


def test_every_manifest_parses_and_uses_known_kinds():
    objects = all_objects()
    assert objects
    assert unknown_kinds(objects) == []
    assert unknown_kinds([*objects, {"apiVersion": "extensions/v1beta1", "kind": "Ingress"}])


def test_every_tier_the_migration_and_the_autoscaling_are_there():
    objects = all_objects()
    deployments = {d["metadata"]["name"] for d in of_kind(objects, "Deployment")}
    assert deployments == {f"paygate-{t}" for t in (*TIERS, "worker")}
    assert {s["metadata"]["name"] for s in of_kind(objects, "Service")} == {
        f"paygate-{t}" for t in TIERS
    }
    scaled = {
        h["spec"]["scaleTargetRef"]["name"] for h in of_kind(objects, "HorizontalPodAutoscaler")
    }
    assert scaled == {"paygate-api", "paygate-checkout", "paygate-worker"}
    assert len(of_kind(objects, "PodDisruptionBudget")) == len(deployments)
    (job,) = of_kind(objects, "Job")
    assert containers(job)[0]["command"] == ["paygate", "migrate"]


def test_every_variable_set_is_one_paygate_reads():
    objects = all_objects()
    assert unknown_variables(objects) == []
    (secret,) = of_kind(objects, "Secret")
    assert set(secret["stringData"]) == SECRET_VARIABLES
    (configmap,) = of_kind(objects, "ConfigMap")
    assert not SECRET_VARIABLES & set(configmap["data"])
    assert configmap["data"]["PAYGATE_ENV"] == "production"
    assert configmap["data"]["PAYGATE_BIND"] == "0.0.0.0"
    planted = copy.deepcopy(objects)
    of_kind(planted, "ConfigMap")[0]["data"]["PAYGATE_WEBHOOKS_CONCURRENCY"] = "4"
    containers(of_kind(planted, "Deployment")[0])[0].setdefault("env", []).append(
        {"name": "PAYGATE_PLUGIN_SLOWBANK_URL", "value": "https://bank.example.com"}
    )
    assert unknown_variables(planted) == ["PAYGATE_WEBHOOKS_CONCURRENCY"]


def test_the_secret_template_holds_only_placeholders_production_refuses():
    (secret,) = documents(DEPLOY / "secret.example.yaml")
    values = secret["stringData"]
    assert all("REPLACE-ME" in value for value in values.values())
    with pytest.raises(ValueError, match="PAYGATE_ENCRYPTION_KEYS"):
        Settings.from_env({**values, "PAYGATE_ENV": "production"})
    del values["PAYGATE_ENCRYPTION_KEYS"]
    with pytest.raises(ValueError, match="PAYGATE_SECRET_KEY"):
        Settings.from_env({**values, "PAYGATE_ENV": "production"}).check_startup()


def test_every_container_runs_a_real_paygate_command_with_real_flags():
    objects = all_objects()
    assert bad_commands(objects) == []
    for planted_argv in (["paygate", "api", "--no-migrations"], ["paygate", "serve"]):
        planted = copy.deepcopy(objects)
        containers(of_kind(planted, "Deployment")[0])[0]["command"] = planted_argv
        assert len(bad_commands(planted)) == 1, planted_argv


def test_web_tiers_listen_on_their_settings_ports_with_no_migration():
    for d in of_kind(all_objects(), "Deployment"):
        tier = d["metadata"]["name"].removeprefix("paygate-")
        argv = containers(d)[0]["command"]
        if tier in TIERS:
            assert argv[:3] == ["paygate", tier, "--no-migrate"]
            assert int(argv[argv.index("--port") + 1]) == TIERS[tier]


def test_deployments_stop_gracefully_and_roll_without_losing_capacity():
    objects = all_objects()
    assert ungraceful(objects) == []
    planted = copy.deepcopy(objects)
    api = next(d for d in of_kind(planted, "Deployment") if d["metadata"]["name"] == "paygate-api")
    pod_spec(api)["terminationGracePeriodSeconds"] = 30  # 25 s stop + 5 s sleep: not above
    assert ungraceful(planted) == ["paygate-api: grace 30 s is not above 25.0 + 5.0 s"]


def test_deployments_have_probes_resources_and_a_locked_down_security_context():
    objects = all_objects()
    assert unguarded(objects) == []
    planted = copy.deepcopy(objects)
    worker = containers(of_kind(planted, "Deployment")[-1])[0]
    del worker["livenessProbe"]
    worker["securityContext"]["readOnlyRootFilesystem"] = False
    assert len(unguarded(planted)) == 2


def test_liveness_never_depends_on_the_databases():
    """/health and /readyz answer 503 while PostgreSQL is away: as a liveness probe either
    would restart every pod during an outage. The web tiers' liveness is /livez (touches neither
    database), their readiness /readyz."""
    for d in of_kind(all_objects(), "Deployment"):
        live = containers(d)[0]["livenessProbe"]
        assert live.get("httpGet", {}).get("path") not in ("/health", "/readyz"), d["metadata"]
    for tier in ("api", "dashboard", "checkout"):
        d = next(
            d
            for d in of_kind(all_objects(), "Deployment")
            if d["metadata"]["name"] == f"paygate-{tier}"
        )
        assert containers(d)[0]["readinessProbe"]["httpGet"]["path"] == "/readyz", tier
        assert containers(d)[0]["livenessProbe"]["httpGet"]["path"] == "/livez", tier


def test_prometheus_scrapes_the_api_and_the_worker_on_declared_ports():
    """The scrape annotations name a port the container declares (the worker's metrics port is
    PAYGATE_WORKER_METRICS_PORT's default), and nothing publishes the worker's port in compose."""
    default = str(Settings.from_env({}).worker_metrics_port)
    for tier, port in (("api", "8000"), ("worker", default)):
        d = next(
            d
            for d in of_kind(all_objects(), "Deployment")
            if d["metadata"]["name"] == f"paygate-{tier}"
        )
        notes = d["spec"]["template"]["metadata"]["annotations"]
        assert notes["prometheus.io/scrape"] == "true" and notes["prometheus.io/path"] == "/metrics"
        assert notes["prometheus.io/port"] == port, tier
        declared = {str(p["containerPort"]) for p in containers(d)[0]["ports"]}
        assert port in declared, tier
    compose = (ROOT / "docker-compose.yml").read_text()
    assert default not in compose


def test_selectors_services_autoscalers_and_budgets_point_at_what_exists():
    objects = all_objects()
    assert miswired(objects) == []
    planted = copy.deepcopy(objects)
    of_kind(planted, "Service")[0]["spec"]["ports"][0]["targetPort"] = 9999
    of_kind(planted, "HorizontalPodAutoscaler")[0]["spec"]["scaleTargetRef"]["name"] = "paygate-web"
    assert len(miswired(planted)) == 2


def test_the_image_is_the_one_docker_compose_builds_from_the_dockerfile():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    built = {
        s["image"].partition(":")[0] for s in compose["services"].values() if "build" in s
    } or {
        v["image"].partition(":")[0]
        for k, v in compose.items()
        if k.startswith("x-") and isinstance(v, dict) and "image" in v
    }
    assert built == {"paygate"}
    for obj in of_kind(all_objects(), "Deployment") + of_kind(all_objects(), "Job"):
        assert {c["image"] for c in containers(obj)} == {"paygate"}
    for path in DEPLOY.rglob("kustomization.yaml"):
        (image,) = documents(path)[0]["images"]
        assert image["name"] == "paygate"


def test_each_kustomization_lists_every_manifest_beside_it_but_the_secret_template():
    kustomizations = sorted(DEPLOY.rglob("kustomization.yaml"))
    assert [p.parent for p in kustomizations] == [DEPLOY, DEPLOY / "migrate"]
    for path in kustomizations:
        (k,) = documents(path)
        assert k["kind"] == "Kustomization" and k["namespace"] == "paygate"
        beside = {p.name for p in path.parent.glob("*.yaml")} - {"kustomization.yaml"}
        assert set(k["resources"]) == beside - TEMPLATES, path
    assert TEMPLATES <= {p.name for p in DEPLOY.glob("*.yaml")}


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kustomize_renders_both_kustomizations_into_the_namespace_with_the_image():
    """What ``kubectl apply -k`` would send (``kubectl kustomize`` needs no cluster)."""
    for path in (DEPLOY, DEPLOY / "migrate"):
        (k,) = documents(path / "kustomization.yaml")
        listed = [o for name in k["resources"] for o in documents(path / name)]
        rendered = subprocess.run(
            ["kubectl", "kustomize", str(path)], capture_output=True, text=True, timeout=60
        )
        assert rendered.returncode == 0, rendered.stderr
        objects = [o for o in yaml.safe_load_all(rendered.stdout) if o]
        assert sorted((o["kind"], o["metadata"]["name"]) for o in objects) == sorted(
            (o["kind"], o["metadata"]["name"]) for o in listed
        )
        for obj in objects:
            if obj["kind"] != "Namespace":
                assert obj["metadata"]["namespace"] == "paygate", obj["metadata"]["name"]
            if obj["kind"] in ("Deployment", "Job"):
                assert containers(obj)[0]["image"] == "registry.example.com/paygate:REPLACE-ME"


def pinned_under_autoscaler(objects: list[dict]) -> list[str]:
    """A Deployment an HPA scales must not set spec.replicas: every `kubectl apply -k` would
    reset the scaled-out count to it."""
    scaled = {
        h["spec"]["scaleTargetRef"]["name"] for h in of_kind(objects, "HorizontalPodAutoscaler")
    }
    return [
        f"{d['metadata']['name']}: replicas {d['spec']['replicas']} under an autoscaler"
        for d in of_kind(objects, "Deployment")
        if d["metadata"]["name"] in scaled and "replicas" in d["spec"]
    ]


def test_autoscaled_deployments_leave_the_replica_count_to_their_autoscaler():
    objects = all_objects()
    assert pinned_under_autoscaler(objects) == []
    planted = copy.deepcopy(objects)
    for d in of_kind(planted, "Deployment"):
        d["spec"]["replicas"] = 2
    assert len(pinned_under_autoscaler(planted)) == 3


def worker_pool_short(objects: list[dict]) -> list[str]:
    """The worker's one pool serves its task threads, its webhook delivery threads and the
    janitor (paygate/jobs/worker.py, webhook_consumer.py): max must cover all of them."""
    defaults = Settings.from_env({})
    config = {}
    for configmap in of_kind(objects, "ConfigMap"):
        config.update(configmap["data"])
    problems = []
    (worker,) = [
        d for d in of_kind(objects, "Deployment") if d["metadata"]["name"].endswith("worker")
    ]
    for c in containers(worker):
        env = {**config, **{e["name"]: e["value"] for e in c.get("env", []) if "value" in e}}
        tasks = int(env.get("PAYGATE_WORKER_CONCURRENCY", defaults.worker_concurrency))
        hooks = int(env.get("PAYGATE_WEBHOOK_CONCURRENCY", defaults.webhook_concurrency))
        pool = int(env.get("PAYGATE_DB_POOL_MAX", defaults.db_pool_max))
        if pool < tasks + hooks + 1:
            problems.append(f"worker pool {pool} < {tasks} tasks + {hooks} webhooks + janitor")
    return problems


def test_the_workers_pool_covers_task_webhook_and_janitor_threads():
    objects = all_objects()
    assert worker_pool_short(objects) == []
    planted = copy.deepcopy(objects)
    for d in of_kind(planted, "Deployment"):
        for c in containers(d):
            for e in c.get("env", []):
                if e["name"] == "PAYGATE_DB_POOL_MAX":
                    e["value"] = "16"  # what worker.yaml had: task threads only
    assert len(worker_pool_short(planted)) == 1


def test_the_worker_is_ready_only_once_it_has_beaten():
    """Without a readiness probe a rollout takes a starting worker as ready at once."""
    (worker,) = [
        d for d in of_kind(all_objects(), "Deployment") if d["metadata"]["name"] == "paygate-worker"
    ]
    (c,) = containers(worker)
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert c["livenessProbe"]["exec"]["command"] == ["paygate", "worker-alive"]
    assert bad_commands([worker]) == []


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_the_pgbouncer_overlay_pools_only_the_web_tiers():
    """deploy/pgbouncer: web tiers take the pooled DATABASE_URL (a Secret after paygate-secrets,
    so it wins) and never prepare; the worker, which migrates, keeps the direct one."""
    rendered = subprocess.run(
        ["kubectl", "kustomize", str(ROOT / "deploy" / "pgbouncer")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert rendered.returncode == 0, rendered.stderr
    objects = [o for o in yaml.safe_load_all(rendered.stdout) if o]
    assert unknown_variables(objects) == []
    assert bad_commands(objects) == []
    for obj in of_kind(objects, "Deployment"):
        (c,) = containers(obj)
        sources = [ref.get("secretRef", ref.get("configMapRef"))["name"] for ref in c["envFrom"]]
        env = {e["name"]: e.get("value") for e in c.get("env", [])}
        if obj["metadata"]["name"] == "paygate-worker":
            assert sources == ["paygate-config", "paygate-secrets"]
            assert "PAYGATE_DB_PREPARE_THRESHOLD" not in env
        else:
            assert "--no-migrate" in c["command"]
            assert sources == ["paygate-config", "paygate-secrets", "paygate-pooled-db"]
            assert env["PAYGATE_DB_PREPARE_THRESHOLD"] == "-1"
