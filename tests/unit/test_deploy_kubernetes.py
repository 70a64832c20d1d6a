"""Checks of deploy/kubernetes: every manifest validates against the Kubernetes API schemas
(kubernetes-validate ships them: offline, no cluster), and the manifests agree with the
service: probes on its health routes, the grace period its drain needs, roles it knows,
secrets only by reference, a PodDisruptionBudget per Deployment, scrape annotations."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from app.settings import ROLES, Settings

ROOT = Path(__file__).resolve().parents[2]
KUBE = ROOT / "deploy" / "kubernetes"
# The oldest Kubernetes release still maintained when these were written; strict rejects any
# field that release does not know (a typo is an unknown field).
KUBERNETES_VERSION = "1.31.0"
# Settings that are secrets: never written in a manifest, always read from the Secret.
SECRET_SETTINGS = frozenset(
    {
        "COPYTRADE_DATABASE_URL",
        "COPYTRADE_REDIS_URL",
        "COPYTRADE_ADMIN_TOKEN",
        "COPYTRADE_CREDENTIALS_KEY",
    }
)
KNOWN_ROLES = frozenset(ROLES)


def manifest_files() -> list[Path]:
    return sorted(KUBE.rglob("*.yaml"))


def documents() -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in manifest_files():
        for document in yaml.safe_load_all(path.read_text()):
            if document is not None:
                yield path, document


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [document for _, document in documents() if document["kind"] == kind]


def containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in container.get("env", [])}


def config_map_data() -> dict[str, str]:
    (config,) = of_kind("ConfigMap")
    data: dict[str, str] = config["data"]
    return data


@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: str(p.relative_to(KUBE)))
def test_manifest_validates_against_the_kubernetes_schema(path: Path) -> None:
    for document in yaml.safe_load_all(path.read_text()):
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_the_schema_check_can_fail() -> None:
    (deployment, *_) = of_kind("Deployment")
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["pth"] = "/"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_every_role_has_a_deployment_and_the_single_one_runs_them_all() -> None:
    roles_by_deployment = {
        d["metadata"]["name"]: env_of(d["spec"]["template"]["spec"]["containers"][0])[
            "COPYTRADE_ROLES"
        ]["value"].split(",")
        for d in of_kind("Deployment")
    }
    split = {name: roles for name, roles in roles_by_deployment.items() if len(roles) == 1}
    assert sorted(role for (role,) in split.values()) == sorted(KNOWN_ROLES)
    assert sorted(roles_by_deployment["copytrade"]) == sorted(KNOWN_ROLES)
    for roles in roles_by_deployment.values():
        assert set(roles) <= KNOWN_ROLES


def test_probes_use_the_health_routes() -> None:
    for deployment in of_kind("Deployment"):
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        port = container["readinessProbe"]["httpGet"]["port"]
        assert port in {p["name"] for p in container["ports"]}


def test_grace_period_covers_the_drain() -> None:
    grace_s = int(config_map_data()["COPYTRADE_SHUTDOWN_GRACE_S"])
    assert grace_s == Settings.model_fields["shutdown_grace_s"].default
    for deployment in of_kind("Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        # Fills get the grace, other requests as long again, then 5 s to exit (README).
        assert pod["terminationGracePeriodSeconds"] == 2 * grace_s + 5


def test_each_deployment_has_a_disruption_budget_selecting_its_pods() -> None:
    budgets = {b["metadata"]["name"]: b for b in of_kind("PodDisruptionBudget")}
    for deployment in of_kind("Deployment"):
        name = deployment["metadata"]["name"]
        assert name in budgets, f"{name} has no PodDisruptionBudget"
        selector = budgets[name]["spec"]["selector"]["matchLabels"]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items()
        if "minAvailable" in budgets[name]["spec"]:
            assert budgets[name]["spec"]["minAvailable"] < deployment["spec"]["replicas"]


def test_secrets_come_from_the_secret_and_never_from_the_manifest() -> None:
    workloads = [*of_kind("Deployment"), *of_kind("Job")]
    assert workloads
    for workload in workloads:
        for container in containers(workload):
            env = env_of(container)
            assert "COPYTRADE_DATABASE_URL" in env
            for name, item in env.items():
                if name in SECRET_SETTINGS:
                    assert "value" not in item, f"{name} is written in the manifest"
                    assert item["valueFrom"]["secretKeyRef"]["name"] == "copytrade"
    assert not SECRET_SETTINGS & config_map_data().keys()
    assert not of_kind("Secret"), "a Secret with values does not belong in the repository"


def test_every_pod_is_scraped_and_sized() -> None:
    for deployment in of_kind("Deployment"):
        template = deployment["spec"]["template"]
        annotations = template["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/path"] == "/metrics"
        assert annotations["prometheus.io/port"] == config_map_data()["COPYTRADE_PORT"]
        (container,) = template["spec"]["containers"]
        assert {"cpu", "memory"} <= container["resources"]["requests"].keys()
        assert "memory" in container["resources"]["limits"]
        assert template["spec"]["securityContext"]["runAsUser"] == 10001  # the image's user


def test_migration_job_runs_the_migrations() -> None:
    (job,) = of_kind("Job")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["copytrade", "migrate"]


def test_services_reach_the_pods_serving_them() -> None:
    pods = [d["spec"]["template"]["metadata"]["labels"] for d in of_kind("Deployment")]
    for service in of_kind("Service"):
        selector = service["spec"]["selector"]
        matched = [labels for labels in pods if selector.items() <= labels.items()]
        # The split Deployment and the all-roles one.
        assert len(matched) == 2, service["metadata"]["name"]
