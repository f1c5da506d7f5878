"""Every rendered object is valid for Kubernetes and of an API version that is current.

Built-in kinds are validated against the Kubernetes JSON schemas bundled by
``kubernetes-validate`` (strict: an unknown or misspelt field fails), for the oldest
Kubernetes the manifests promise and the newest the package knows. Custom resources
(Prometheus Operator, KEDA) are not in those schemas; their shape is checked here.
"""

from __future__ import annotations

import re
from typing import Any

import kubernetes_validate
import pytest
from k8s_manifests import KUSTOMIZATIONS, Obj, render

#: k8s/README.md: "Needs Kubernetes 1.30 or newer".
OLDEST = "1.30"
NEWEST = kubernetes_validate.latest_version()

#: The API version of each built-in kind in use. A kind served under an older
#: version as well (autoscaling/v1, policy/v1beta1, ...) must use this one.
BUILT_IN = {
    "ConfigMap": "v1",
    "Secret": "v1",
    "Service": "v1",
    "ServiceAccount": "v1",
    "PersistentVolumeClaim": "v1",
    "Deployment": "apps/v1",
    "StatefulSet": "apps/v1",
    "PodDisruptionBudget": "policy/v1",
    "NetworkPolicy": "networking.k8s.io/v1",
    "HorizontalPodAutoscaler": "autoscaling/v2",
}
#: Custom resources and their CRDs' current versions.
CUSTOM = {
    "ServiceMonitor": "monitoring.coreos.com/v1",
    "ScaledObject": "keda.sh/v1alpha1",
    "TriggerAuthentication": "keda.sh/v1alpha1",
}
SECONDS = re.compile(r"^\d+(ms|s|m|h)$")


def objects(*, custom: bool | None = None) -> list[Any]:
    """Every rendered object (only custom resources, or only built-in ones, if asked)."""
    return [
        pytest.param(obj, id=f"{name}:{obj['kind']}/{obj['metadata']['name']}")
        for name in KUSTOMIZATIONS
        for obj in render(name)
        if custom is None or (obj["kind"] in CUSTOM) == custom
    ]


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_every_kustomization_renders(kustomization: str) -> None:
    assert render(kustomization), f"{kustomization} renders nothing"


@pytest.mark.parametrize("obj", objects())
def test_api_versions_are_current(obj: Obj) -> None:
    kind, api_version = obj["kind"], obj["apiVersion"]
    expected = BUILT_IN.get(kind) or CUSTOM.get(kind)
    assert expected, f"{kind} is neither a known built-in kind nor a known custom resource"
    assert api_version == expected, f"{kind} uses {api_version}, current is {expected}"


@pytest.mark.parametrize("version", [OLDEST, NEWEST])
@pytest.mark.parametrize("obj", objects(custom=False))
def test_built_in_objects_match_the_kubernetes_schemas(obj: Obj, version: str) -> None:
    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        pytest.fail(f"{obj['kind']}/{obj['metadata']['name']} (Kubernetes {version}): {exc}")


def _only_keys(where: str, mapping: dict[str, Any], allowed: set[str]) -> None:
    unknown = set(mapping) - allowed
    assert not unknown, f"{where}: unknown fields {sorted(unknown)}"


def _string_map(where: str, value: Any) -> None:
    assert isinstance(value, dict) and value, f"{where} must be a non-empty map"
    for key, item in value.items():
        assert isinstance(key, str) and isinstance(item, str), (
            f"{where}.{key}: {item!r} must be a string (quote numbers and booleans)"
        )


def check_service_monitor(obj: Obj) -> None:
    spec = obj["spec"]
    _only_keys(
        "ServiceMonitor.spec",
        spec,
        {"selector", "endpoints", "namespaceSelector", "jobLabel", "targetLabels"},
    )
    _string_map("ServiceMonitor.spec.selector.matchLabels", spec["selector"]["matchLabels"])
    assert spec["endpoints"], "a ServiceMonitor without endpoints scrapes nothing"
    for endpoint in spec["endpoints"]:
        _only_keys(
            "ServiceMonitor endpoint",
            endpoint,
            {"port", "path", "interval", "scrapeTimeout", "scheme", "honorLabels"},
        )
        assert isinstance(endpoint["port"], str), "endpoints name the Service port"
        assert endpoint["path"].startswith("/")
        for duration in ("interval", "scrapeTimeout"):
            if duration in endpoint:
                assert SECONDS.match(endpoint[duration]), f"{duration}: {endpoint[duration]!r}"


def check_scaled_object(obj: Obj) -> None:
    spec = obj["spec"]
    _only_keys(
        "ScaledObject.spec",
        spec,
        {
            "scaleTargetRef",
            "pollingInterval",
            "cooldownPeriod",
            "initialCooldownPeriod",
            "idleReplicaCount",
            "minReplicaCount",
            "maxReplicaCount",
            "advanced",
            "fallback",
            "triggers",
        },
    )
    _only_keys("scaleTargetRef", spec["scaleTargetRef"], {"apiVersion", "kind", "name"})
    for count in ("pollingInterval", "cooldownPeriod", "minReplicaCount", "maxReplicaCount"):
        assert isinstance(spec.get(count, 0), int), f"{count} must be an integer"
    assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
    assert spec["triggers"], "a ScaledObject needs a trigger"
    for trigger in spec["triggers"]:
        _only_keys("trigger", trigger, {"type", "name", "metadata", "authenticationRef"})
        assert isinstance(trigger["type"], str)
        # The CRD types trigger metadata as a map of strings: a bare number is refused.
        _string_map(f"{trigger['type']} trigger metadata", trigger["metadata"])
        if "authenticationRef" in trigger:
            _only_keys("authenticationRef", trigger["authenticationRef"], {"name", "kind"})


def check_trigger_authentication(obj: Obj) -> None:
    spec = obj["spec"]
    _only_keys("TriggerAuthentication.spec", spec, {"secretTargetRef", "env"})
    for ref in spec["secretTargetRef"]:
        _only_keys("secretTargetRef", ref, {"parameter", "name", "key"})
        _string_map("secretTargetRef", ref)


CHECKS = {
    "ServiceMonitor": check_service_monitor,
    "ScaledObject": check_scaled_object,
    "TriggerAuthentication": check_trigger_authentication,
}


@pytest.mark.parametrize("obj", objects(custom=True))
def test_custom_resources_have_their_crds_shape(obj: Obj) -> None:
    _only_keys(obj["kind"], obj, {"apiVersion", "kind", "metadata", "spec"})
    assert obj["metadata"].get("namespace"), "custom resources here are namespaced"
    CHECKS[obj["kind"]](obj)


def test_the_custom_checks_catch_what_the_crds_refuse() -> None:
    scaled = {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "x", "namespace": "y"},
        "spec": {
            "scaleTargetRef": {"name": "x"},
            "minReplicaCount": 1,
            "maxReplicaCount": 2,
            "triggers": [{"type": "kafka", "metadata": {"lagThreshold": 100}}],
        },
    }
    with pytest.raises(AssertionError, match="must be a string"):
        check_scaled_object(scaled)
    scaled["spec"]["maxReplicas"] = 3
    with pytest.raises(AssertionError, match="unknown fields"):
        check_scaled_object(scaled)


def test_the_schema_check_catches_a_misspelt_field() -> None:
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "x"},
        "spec": {"selectr": {"a": "b"}, "ports": [{"port": 1}]},
    }
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(service, NEWEST, strict=True)
