"""The Kubernetes base renders with ``kubectl kustomize`` and every object validates against the
Kubernetes schemas (``kubernetes-validate``, offline); each service is wired as the stack runs
it."""

import shutil
import subprocess

import kubernetes_validate
import pytest
import yaml

from dmzwatch.stack import DEFAULT_PORTS, SERVICES
from tests.conftest import REPO

BASE = REPO / "deploy/k8s"
INSTALLER = REPO / "deploy/install-ops-tools.sh"
# The oldest Kubernetes release the base is meant for, and a recent one.
KUBERNETES_VERSIONS = ("1.25.0", "1.33.0")


def kubectl() -> str:
    """kubectl, installed from Debian's kubernetes-client (`make ops-tools`) when missing."""
    found = shutil.which("kubectl")
    if found is None:
        if shutil.which("apt-get") is None:
            pytest.skip(
                "kubectl is missing and apt-get is unavailable to install kubernetes-client"
            )
        subprocess.run(["sh", str(INSTALLER)], check=True, timeout=900)
        found = shutil.which("kubectl")
    assert found, "kubectl missing after installing kubernetes-client"
    return found


@pytest.fixture(scope="module")
def rendered() -> list[dict]:
    done = subprocess.run(
        [kubectl(), "kustomize", str(BASE)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def objects(rendered: list[dict], kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in rendered if o["kind"] == kind}


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_object_validates_against_the_kubernetes_schemas(
    rendered: list[dict], version: str
) -> None:
    assert len(rendered) >= 11
    for obj in rendered:
        kubernetes_validate.validate(obj, version, strict=True)  # raises on any error


def test_an_invalid_object_is_refused() -> None:
    """The validator is not a no-op: a wrong type fails."""
    broken = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}}
    broken["spec"] = {"replicas": "one"}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[-1], strict=True)


def test_a_deployment_and_a_service_per_stage_with_probes_scrape_annotations_and_limits(
    rendered: list[dict],
) -> None:
    deployments = objects(rendered, "Deployment")
    services = objects(rendered, "Service")
    assert set(deployments) == {f"dmzwatch-{s}" for s in SERVICES}
    for stage in SERVICES:
        port = DEFAULT_PORTS[stage]
        deployment = deployments[f"dmzwatch-{stage}"]
        pod = deployment["spec"]["template"]
        assert (
            deployment["spec"]["selector"]["matchLabels"].items()
            <= pod["metadata"]["labels"].items()
        )
        annotations = pod["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/port"] == str(port)
        assert annotations["prometheus.io/path"] == "/metrics"
        spec = pod["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] != 0
        (container,) = spec["containers"]
        assert container["args"] == [stage]
        ports = container["ports"]
        assert ports[0] == {"name": "metrics", "containerPort": port}
        assert [p["name"] for p in ports[1:]] == (["websub"] if stage == "poller" else [])
        env = {e["name"]: e for e in container["env"]}
        assert env[f"DMZWATCH_{stage.upper()}_PORT"]["value"] == str(port)
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
        assert {"cpu", "memory"} <= set(container["resources"]["requests"])
        assert "memory" in container["resources"]["limits"]
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
        service = services[f"dmzwatch-{stage}"]
        assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
        assert service["spec"]["ports"][0]["port"] == port


def test_the_poller_serves_the_websub_callback_and_names_replicas_after_their_pods(
    rendered: list[dict],
) -> None:
    from dmzwatch.poller.settings import PollerSettings

    defaults = PollerSettings.model_fields
    deployment = objects(rendered, "Deployment")["dmzwatch-poller"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    port = int(env["DMZWATCH_WEBSUB_LISTEN_PORT"]["value"])
    assert port == defaults["websub_listen_port"].default
    assert {"name": "websub", "containerPort": port} in container["ports"]
    # The default 127.0.0.1 would be unreachable from outside the pod.
    assert env["DMZWATCH_WEBSUB_LISTEN_HOST"]["value"] == "0.0.0.0"
    assert env["DMZWATCH_POLLER_REPLICA_ID"]["valueFrom"] == {
        "fieldRef": {"fieldPath": "metadata.name"}
    }
    service = objects(rendered, "Service")["dmzwatch-poller"]
    assert {"name": "websub", "port": port, "targetPort": "websub"} in service["spec"]["ports"]
    # Off by default: an empty callback URL means no WebSub (the settings turn "" into None).
    callback = objects(rendered, "ConfigMap")["dmzwatch-env"]["data"][
        "DMZWATCH_WEBSUB_CALLBACK_URL"
    ]
    assert PollerSettings(websub_callback_url=callback).websub_callback_url is None
    # Leases and WebSub subscriptions live in Redis, so the poller runs several replicas.
    assert deployment["spec"]["replicas"] >= 2


def test_config_map_and_secret_references_resolve(rendered: list[dict]) -> None:
    config_maps = objects(rendered, "ConfigMap")
    workloads = [*objects(rendered, "Deployment").values(), *objects(rendered, "Job").values()]
    secrets = set()
    for workload in workloads:
        pod = workload["spec"]["template"]["spec"]
        for container in pod["containers"]:
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    assert source["configMapRef"]["name"] in config_maps
                if "secretRef" in source:
                    secrets.add(source["secretRef"]["name"])
            for var in container.get("env", []):
                ref = var.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    secrets.add(ref["name"])
        for volume in pod.get("volumes", []):
            if "configMap" in volume:
                assert volume["configMap"]["name"] in config_maps
    # Secrets are the operator's (config.yaml says how to create them), never in the base.
    assert secrets == {"dmzwatch-redis", "dmzwatch-notifier"}
    assert not objects(rendered, "Secret")
    readme = (REPO / "README.md").read_text()
    for name in config_maps["dmzwatch-env"]["data"]:
        assert f"`{name}`" in readme, f"{name} is not a documented setting"


def test_the_example_files_match_deploy_config(rendered: list[dict]) -> None:
    files = objects(rendered, "ConfigMap")["dmzwatch-files"]["data"]
    for name, text in files.items():
        assert yaml.safe_load(text) == yaml.safe_load((REPO / "deploy/config" / name).read_text())


def test_the_topic_creation_job_runs_the_topics_command(rendered: list[dict]) -> None:
    (job,) = objects(rendered, "Job").values()
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["topics", "create"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "OnFailure"
    images = {
        c["image"]
        for o in rendered
        if o["kind"] in {"Deployment", "Job"}
        for c in o["spec"]["template"]["spec"]["containers"]
    }
    assert images == {"dmzwatch:0.1.0"}
