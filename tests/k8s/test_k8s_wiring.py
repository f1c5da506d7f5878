"""The rendered overlays fit together and fit the app: ports, probes, selectors,
Secrets, autoscalers, settings."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import PurePosixPath
from urllib.parse import urlsplit

import pytest
from k8s_manifests import (
    DEPLOYMENTS,
    K8S,
    OVERLAYS,
    Obj,
    Render,
    external_secrets,
    load,
    pod_specs,
    selects,
)

from app.settings import SECRETS_DIR_VARIABLE, Settings
from app.topics import SPECS

SETTINGS = {f"FLOWDESK_{name.upper()}" for name in Settings.model_fields}
WORKER = "flowdesk-worker"
#: FLOWDESK_KAFKA_SASL_MECHANISM in the words of KEDA's kafka scaler.
KEDA_SASL = {"PLAIN": "plaintext", "SCRAM-SHA-256": "scram_sha256", "SCRAM-SHA-512": "scram_sha512"}


@pytest.fixture(params=DEPLOYMENTS)
def overlay(request: pytest.FixtureRequest) -> Render:
    return load(request.param)


def named_port(container: Obj, port: int | str) -> int:
    if isinstance(port, int):
        return port
    numbers = [p["containerPort"] for p in container["ports"] if p.get("name") == port]
    assert numbers, f"container {container['name']} has no port named {port!r}"
    return int(numbers[0])


def settings_from(values: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The Settings a worker builds from exactly these variables."""
    for name in list(os.environ):
        if name.startswith("FLOWDESK_"):
            monkeypatch.delenv(name)
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return Settings()


def test_everything_lands_in_one_namespace(overlay: Render) -> None:
    namespaces = {obj["metadata"].get("namespace") for obj in overlay.objects}
    assert len(namespaces) == 1 and None not in namespaces, namespaces


# --- Settings ----------------------------------------------------------------------------


def not_settings(variables: dict[str, str]) -> list[str]:
    """The names that no setting reads: typos, or settings that were renamed."""
    return sorted(set(variables) - SETTINGS)


def test_every_configmap_key_is_a_setting(overlay: Render) -> None:
    unknown = not_settings(overlay.settings)
    assert not unknown, f"{overlay.name}: not flowdesk settings: {unknown}"


def test_the_setting_names_check_catches_a_typo() -> None:
    config = {"FLOWDESK_KAFKA_URL": "kafka://a:9092", "FLOWDESK_KAFKA_URLS": "kafka://b:9092"}
    assert not_settings(config) == ["FLOWDESK_KAFKA_URLS"]


def test_the_configmap_values_are_valid_settings(
    overlay: Render, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_from(overlay.settings, monkeypatch)
    assert settings.table_store == "rocksdb"
    assert settings.web_host == "0.0.0.0"
    assert settings.log_format == "json"


def test_container_environment_names_are_settings(overlay: Render) -> None:
    for env in overlay.worker.get("env", ()):
        if env["name"].startswith("FLOWDESK_"):
            assert env["name"] in SETTINGS | {SECRETS_DIR_VARIABLE}, env["name"]


def test_secrets_never_travel_in_the_environment(overlay: Render) -> None:
    secret_settings = {
        f"FLOWDESK_{name.upper()}"
        for name, field in Settings.model_fields.items()
        if "SecretStr" in str(field.annotation)
    }
    assert secret_settings >= {"FLOWDESK_LLM_API_KEY", "FLOWDESK_KAFKA_SASL_PASSWORD"}
    assert not secret_settings & set(overlay.settings)
    for env in overlay.worker.get("env", ()):
        assert "secretKeyRef" not in env.get("valueFrom", {}), env["name"]
        assert env["name"] not in secret_settings
    for source in overlay.worker.get("envFrom", ()):
        assert "secretRef" not in source


# --- The worker container ------------------------------------------------------------------


def test_the_container_runs_a_worker(overlay: Render) -> None:
    worker = overlay.worker
    argv = [*worker["command"], *worker.get("args", ())]
    assert argv[:2] == ["flowdesk", "worker"]
    defined = {env["name"] for env in worker.get("env", ())}
    for arg in argv:
        if arg.startswith("$(") and arg.endswith(")"):
            assert arg[2:-1] in defined, f"{arg} expands to nothing"


def test_probes_hit_health_and_ready_on_the_web_port(overlay: Render) -> None:
    worker = overlay.worker
    web_port = int(overlay.settings["FLOWDESK_WEB_PORT"])
    paths = {}
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        get = worker[probe]["httpGet"]
        assert isinstance(get["port"], str), f"{probe} names the port"
        assert named_port(worker, get["port"]) == web_port
        paths[probe] = get["path"]
    assert paths == {
        "startupProbe": "/health",
        "livenessProbe": "/health",
        "readinessProbe": "/ready",
    }


def test_data_dir_is_a_claim_per_pod_and_secrets_dir_a_secret(overlay: Render) -> None:
    spec, worker = overlay.statefulset["spec"], overlay.worker
    mounts = {m["mountPath"]: m["name"] for m in worker["volumeMounts"]}
    claims = {t["metadata"]["name"] for t in spec["volumeClaimTemplates"]}
    assert mounts[overlay.settings["FLOWDESK_DATA_DIR"]] in claims
    volumes = {v["name"]: v for v in overlay.pod["spec"]["volumes"]}
    secrets_dir = next(e["value"] for e in worker["env"] if e["name"] == SECRETS_DIR_VARIABLE)
    assert "secret" in volumes[mounts[secrets_dir]]
    assert "emptyDir" in volumes[mounts["/tmp"]]


def test_the_worker_runs_locked_down(overlay: Render) -> None:
    pod, worker = overlay.pod["spec"], overlay.worker
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["automountServiceAccountToken"] is False
    context = worker["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"]
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(worker["resources"][kind]), kind


def test_images_are_pinned() -> None:
    for name in (*OVERLAYS, "examples/vllm"):
        for _, spec in pod_specs(load(name).objects):
            for container in spec["containers"]:
                image = container["image"]
                tag = image.rsplit("/", 1)[-1].partition(":")[2]
                assert tag and tag != "latest", f"{name}: {image} has no fixed tag"


# --- Services, selectors, budgets, monitoring -------------------------------------------------


def test_the_statefulset_is_governed_by_a_headless_service(overlay: Render) -> None:
    spec = overlay.statefulset["spec"]
    service = overlay.one("Service", spec["serviceName"])
    assert service["spec"]["clusterIP"] == "None"
    assert selects(spec["selector"]["matchLabels"], overlay.pod["metadata"]["labels"])


def test_services_select_the_workers_on_the_web_port(overlay: Render) -> None:
    labels = overlay.pod["metadata"]["labels"]
    web_port = int(overlay.settings["FLOWDESK_WEB_PORT"])
    assert overlay.names("Service") == {WORKER, f"{WORKER}-headless"}
    for service in overlay.of_kind("Service"):
        assert selects(service["spec"]["selector"], labels), service["metadata"]["name"]
        for port in service["spec"]["ports"]:
            assert named_port(overlay.worker, port["targetPort"]) == web_port
            assert port["port"] == web_port


def test_the_disruption_budget_covers_the_workers(overlay: Render) -> None:
    budget = overlay.one("PodDisruptionBudget", WORKER)["spec"]
    assert budget["maxUnavailable"] == 1
    assert selects(budget["selector"]["matchLabels"], overlay.pod["metadata"]["labels"])


def test_the_service_monitor_scrapes_metrics_of_a_worker_service(overlay: Render) -> None:
    monitor = overlay.one("ServiceMonitor", WORKER)["spec"]
    matched = [
        s
        for s in overlay.of_kind("Service")
        if selects(monitor["selector"]["matchLabels"], s["metadata"].get("labels", {}))
    ]
    assert len(matched) == 1, "scraping two Services would count every worker twice"
    port_names = {p["name"] for p in matched[0]["spec"]["ports"]}
    for endpoint in monitor["endpoints"]:
        assert endpoint["path"] == "/metrics"
        assert endpoint["port"] in port_names


def test_the_grafana_dashboard_is_in_a_labelled_configmap(overlay: Render) -> None:
    config_map = overlay.one("ConfigMap", "flowdesk-grafana-dashboard")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = K8S / "grafana" / "flowdesk-dashboard.json"
    assert json.loads(config_map["data"]["flowdesk-dashboard.json"]) == json.loads(
        dashboard.read_text()
    )


# --- Network policy --------------------------------------------------------------------------


def _egress_ports(policy: Obj) -> set[int | str]:
    return {port["port"] for rule in policy["spec"]["egress"] for port in rule.get("ports", ())}


def _addresses(settings: dict[str, str]) -> Iterator[tuple[str, int]]:
    """(setting, port) of every address a worker connects to."""
    for broker in settings["FLOWDESK_KAFKA_URL"].split(";"):
        yield "FLOWDESK_KAFKA_URL", int(broker.rsplit(":", 1)[1])
    for name in (
        "FLOWDESK_REDIS_URL",
        "FLOWDESK_LLM_BASE_URL",
        "FLOWDESK_LLM_FALLBACK_BASE_URL",
        "FLOWDESK_SCHEMA_REGISTRY_URL",
    ):
        if settings.get(name):
            url = urlsplit(settings[name])
            yield name, url.port or {"https": 443, "http": 80}.get(url.scheme, 0)


def test_the_network_policy_admits_only_the_web_port(overlay: Render) -> None:
    policy = overlay.one("NetworkPolicy", WORKER)
    assert selects(policy["spec"]["podSelector"]["matchLabels"], overlay.pod["metadata"]["labels"])
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    web_port = int(overlay.settings["FLOWDESK_WEB_PORT"])
    for rule in policy["spec"]["ingress"]:
        assert rule["ports"], "an ingress rule without ports opens every port"
        for port in rule["ports"]:
            assert named_port(overlay.worker, port["port"]) == web_port


def test_the_network_policy_lets_the_worker_reach_what_its_settings_name(
    overlay: Render,
) -> None:
    policy = overlay.one("NetworkPolicy", WORKER)
    allowed = _egress_ports(policy)
    for setting, port in _addresses(overlay.settings):
        assert port in allowed, f"{setting}: port {port} is not allowed out"
    dns = [p for r in policy["spec"]["egress"] for p in r.get("ports", ()) if p["port"] == 53]
    assert {p["protocol"] for p in dns} == {"UDP", "TCP"}
    # Other workers' web port, for requests forwarded to a key's owner.
    labels, web_port = overlay.pod["metadata"]["labels"], int(overlay.settings["FLOWDESK_WEB_PORT"])
    to_workers = [
        rule
        for rule in policy["spec"]["egress"]
        for peer in rule.get("to", ())
        if "podSelector" in peer and selects(peer["podSelector"]["matchLabels"], labels)
    ]
    assert to_workers, "no egress rule reaches the other workers"
    assert any(named_port(overlay.worker, p["port"]) == web_port for p in to_workers[0]["ports"])


# --- Secrets and ConfigMaps ------------------------------------------------------------------


def _references(render: Render) -> Iterator[tuple[str, str, str | None]]:
    """(kind, name, key or None for all keys) of every Secret and ConfigMap referenced."""
    for _, spec in pod_specs(render.objects):
        for container in spec["containers"]:
            for source in container.get("envFrom", ()):
                for kind, ref in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
                    if ref in source:
                        yield kind, source[ref]["name"], None
            for env in container.get("env", ()):
                for kind, ref in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
                    selector = env.get("valueFrom", {}).get(ref)
                    if selector and not selector.get("optional"):
                        yield kind, selector["name"], selector["key"]
        for volume in spec.get("volumes", ()):
            for kind, field, name_field in (
                ("Secret", "secret", "secretName"),
                ("ConfigMap", "configMap", "name"),
            ):
                if field in volume:
                    items = volume[field].get("items")
                    keys: list[str | None] = [i["key"] for i in items] if items else [None]
                    for key in keys:
                        yield kind, volume[field][name_field], key
    for auth in render.of_kind("TriggerAuthentication"):
        for ref in auth["spec"].get("secretTargetRef", ()):
            yield "Secret", ref["name"], ref["key"]


@pytest.mark.parametrize("name", [*DEPLOYMENTS, "examples/vllm"])
def test_every_referenced_secret_and_configmap_exists(name: str) -> None:
    render = load(name)
    external = external_secrets()
    for kind, ref, key in _references(render):
        created = [o for o in render.of_kind(kind) if o["metadata"]["name"] == ref]
        if created:
            data = {**created[0].get("data", {}), **created[0].get("stringData", {})}
            assert key is None or key in data, f"{name}: {kind} {ref} has no key {key!r}"
            continue
        assert kind == "Secret", f"{name}: ConfigMap {ref} is not in the render"
        assert ref in external, f"{name}: Secret {ref} is neither rendered nor in k8s/README.md"
        assert key is None or key in external[ref], f"{name}: k8s/README.md lists no {ref}.{key}"


def test_secret_files_are_named_like_settings() -> None:
    """The keys listed for the mounted Secret become files the settings read."""
    files = {f"flowdesk_{name}" for name in Settings.model_fields}
    keys = external_secrets()["flowdesk-secrets"]
    assert keys and keys <= files, keys - files
    dev = load("overlays/dev")
    for secret in dev.of_kind("Secret"):
        assert set(secret["data"]) <= files


# --- Autoscaling --------------------------------------------------------------------------------


def test_one_autoscaler_targets_the_statefulset(overlay: Render) -> None:
    autoscalers = overlay.of_kind("ScaledObject") + overlay.of_kind("HorizontalPodAutoscaler")
    assert len(autoscalers) == 1, "KEDA and an HPA would fight over the size"
    target = autoscalers[0]["spec"]["scaleTargetRef"]
    assert target == {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": WORKER}


def test_autoscaling_stays_within_the_partitions(overlay: Render) -> None:
    partitions = int(overlay.settings["FLOWDESK_TOPIC_PARTITIONS"])
    for scaled in overlay.of_kind("ScaledObject"):
        assert scaled["spec"]["maxReplicaCount"] <= partitions
    for hpa in overlay.of_kind("HorizontalPodAutoscaler"):
        assert hpa["spec"]["maxReplicas"] <= partitions


def test_keda_watches_the_workers_consumer_group(
    overlay: Render, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_from(overlay.settings, monkeypatch)
    auths = overlay.names("TriggerAuthentication")
    for scaled in overlay.of_kind("ScaledObject"):
        topics = set()
        for trigger in scaled["spec"]["triggers"]:
            assert trigger["type"] == "kafka"
            meta = trigger["metadata"]
            assert meta["consumerGroup"] == settings.app_id
            assert meta["bootstrapServers"].split(",") == settings.bootstrap_servers
            assert SPECS[meta["topic"]].role in ("inbound", "internal")
            topics.add(meta["topic"])
            security = settings.kafka_security
            if security.startswith("sasl_"):
                assert meta["sasl"] == KEDA_SASL[settings.kafka_sasl_mechanism]
                assert trigger["authenticationRef"]["name"] in auths
            else:
                assert "sasl" not in meta
            tls = "enable" if security in ("ssl", "sasl_ssl") else "disable"
            assert meta.get("tls", "disable") == tls
        assert "support.chat.inbound" in topics


def test_each_overlay_picks_its_autoscaler() -> None:
    assert load("overlays/prod").names("ScaledObject") == {WORKER}
    assert load("overlays/dev").names("HorizontalPodAutoscaler") == {WORKER}


# --- The overlays' differences ------------------------------------------------------------------


def _memory_mib(quantity: str) -> float:
    units = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024}
    return float(quantity[:-2]) * units[quantity[-2:]]


def test_dev_is_one_small_worker_on_plaintext_kafka() -> None:
    dev = load("overlays/dev")
    assert dev.statefulset["spec"]["replicas"] == 1
    assert dev.settings["FLOWDESK_KAFKA_SECURITY"] == "plaintext"
    assert _memory_mib(dev.worker["resources"]["limits"]["memory"]) <= 1024


def test_prod_is_three_larger_workers_on_sasl_ssl(monkeypatch: pytest.MonkeyPatch) -> None:
    prod, dev = load("overlays/prod"), load("overlays/dev")
    assert prod.statefulset["spec"]["replicas"] == 3
    assert prod.one("ScaledObject")["spec"]["minReplicaCount"] == 3
    for kind in ("requests", "limits"):
        assert _memory_mib(prod.worker["resources"][kind]["memory"]) > _memory_mib(
            dev.worker["resources"][kind]["memory"]
        )
    settings = settings_from(prod.settings, monkeypatch)
    assert settings.kafka_security == "sasl_ssl"
    assert settings.kafka_sasl_mechanism == "SCRAM-SHA-512"
    assert settings.kafka_sasl_username
    assert "flowdesk_kafka_sasl_password" in external_secrets()["flowdesk-secrets"]


def test_prod_ca_file_is_mounted_from_a_secret() -> None:
    prod = load("overlays/prod")
    cafile = PurePosixPath(prod.settings["FLOWDESK_KAFKA_SSL_CAFILE"])
    volumes = {v["name"]: v for v in prod.pod["spec"]["volumes"]}
    mount = next(
        m for m in prod.worker["volumeMounts"] if PurePosixPath(m["mountPath"]) == cafile.parent
    )
    secret = volumes[mount["name"]]["secret"]
    assert cafile.name in {item["path"] for item in secret["items"]}


# --- The model server example --------------------------------------------------------------------


def test_the_vllm_example_serves_what_the_workers_ask_for() -> None:
    example = load("examples/vllm")
    deployment = example.one("Deployment", "vllm")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"].startswith("vllm/vllm-openai:")
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    pod = deployment["spec"]["template"]["spec"]
    assert pod["nodeSelector"]
    assert any(t["key"] == "nvidia.com/gpu" for t in pod["tolerations"])
    service = example.one("Service", "vllm")
    assert selects(
        service["spec"]["selector"], deployment["spec"]["template"]["metadata"]["labels"]
    )

    base = load("base").settings
    args = container["args"]
    assert args[args.index("--served-model-name") + 1] == base["FLOWDESK_LLM_MODEL"]
    url = urlsplit(base["FLOWDESK_LLM_BASE_URL"])
    assert url.hostname == f"vllm.{service['metadata']['namespace']}.svc"
    assert url.port == service["spec"]["ports"][0]["port"]
    assert url.path == "/v1"


def test_the_readmes_document_the_deployment() -> None:
    readme = (K8S.parent / "README.md").read_text()
    assert SECRETS_DIR_VARIABLE in readme
    assert "k8s/README.md" in readme
    guide = (K8S / "README.md").read_text()
    for name in ("overlays/dev", "overlays/prod", "components/keda", "components/hpa"):
        assert f"`{name}`" in guide, name
