"""The Containerfile builds in stages, runs the worker as a non-root user, and agrees
with the manifests (port, user, entry point)."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field

from k8s_manifests import ROOT, load

from app.settings import Settings

CONTAINERFILE = ROOT / "Containerfile"


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]

    def last(self, keyword: str) -> str | None:
        found = self.all(keyword)
        return found[-1] if found else None


def stages() -> list[Stage]:
    """The build stages, each with its instructions (continuation lines joined)."""
    text = re.sub(r"\\\n", " ", CONTAINERFILE.read_text())
    result: list[Stage] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, args = line.partition(" ")
        keyword, args = keyword.upper(), args.strip()
        if keyword == "FROM":
            words = args.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            result.append(Stage(base=words[0], name=name))
        elif result:
            result[-1].instructions.append((keyword, args))
    return result


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list), f"{args} is not in exec form"
    return value


def test_it_builds_in_stages_from_a_slim_python() -> None:
    found = stages()
    assert len(found) >= 2, "a build stage and a runtime stage"
    build, runtime = found[0], found[-1]
    assert build.name, "the build stage is named, for the runtime stage to copy from"
    assert any("wheel" in run for run in build.all("RUN")), "the build stage makes wheels"
    assert runtime.base.startswith("python:") and runtime.base.endswith("-slim")
    uses_build = [
        args
        for kw, args in runtime.instructions
        if (kw == "COPY" and f"--from={build.name}" in args)
        or (kw == "RUN" and f"from={build.name}" in args)
    ]
    assert uses_build, "the runtime stage installs what the build stage made"
    assert not any("gcc" in run or "build-essential" in run for run in runtime.all("RUN"))


def test_the_runtime_installs_the_rocksdb_extra() -> None:
    runtime = stages()[-1]
    assert any("flowdesk[rocksdb]" in run for run in runtime.all("RUN"))


def test_it_runs_as_the_non_root_user_the_manifests_expect() -> None:
    user = stages()[-1].last("USER")
    assert user, "the runtime stage sets USER"
    uid, _, gid = user.partition(":")
    # Numeric, so that Kubernetes' runAsNonRoot can check it without /etc/passwd.
    assert uid.isdigit() and int(uid) != 0
    assert not gid or (gid.isdigit() and int(gid) != 0)
    context = load("overlays/prod").pod["spec"]["securityContext"]
    assert context["runAsUser"] == int(uid)
    if gid:
        assert context["runAsGroup"] == int(gid)


def test_the_exposed_port_is_the_web_port() -> None:
    runtime = stages()[-1]
    exposed = {int(port.split("/")[0]) for args in runtime.all("EXPOSE") for port in args.split()}
    default = Settings.model_fields["web_port"].default
    container = load("overlays/prod").worker
    ports = {p["containerPort"] for p in container["ports"] if p["name"] == "web"}
    assert exposed == {default} == ports


def test_the_entry_point_is_flowdesk_worker() -> None:
    runtime = stages()[-1]
    entrypoint, cmd = runtime.last("ENTRYPOINT"), runtime.last("CMD")
    assert entrypoint and cmd
    assert exec_form(entrypoint) == ["flowdesk"]
    assert exec_form(cmd) == ["worker"]


def test_the_image_environment_agrees_with_the_manifests() -> None:
    env = " ".join(stages()[-1].all("ENV"))
    values = dict(word.split("=", 1) for word in shlex.split(env) if "=" in word)
    settings = {f"FLOWDESK_{name.upper()}" for name in Settings.model_fields}
    assert {name for name in values if name.startswith("FLOWDESK_")} <= settings
    base = load("base").settings
    for name in ("FLOWDESK_WEB_HOST", "FLOWDESK_WEB_PORT", "FLOWDESK_DATA_DIR"):
        assert values[name] == base[name], name
