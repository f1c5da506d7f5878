"""The README stays true: every setting is documented, with its real default."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import SecretStr

from app.settings import Settings

README = (Path(__file__).parent.parent / "README.md").read_text()


def test_every_setting_is_in_the_readme_with_its_default() -> None:
    rows = dict(re.findall(r"^\| `(FLOWDESK_[A-Z_]+)` \| ([^|]+) \|", README, re.M))
    for name, field in Settings.model_fields.items():
        variable = f"FLOWDESK_{name.upper()}"
        assert variable in rows, f"{variable} is not in the README's settings table"
        default = field.default
        if isinstance(default, SecretStr):
            default = default.get_secret_value()
        documented = rows[variable].strip()
        expected = f"`{default}`" if default != "" else "empty"
        assert documented == expected, f"{variable}: README says {documented}, code {expected}"
    unknown = set(rows) - {f"FLOWDESK_{n.upper()}" for n in Settings.model_fields}
    assert not unknown, f"the README documents settings that do not exist: {unknown}"


def test_every_metric_is_in_the_readme_and_every_named_one_exists() -> None:
    from prometheus_client import REGISTRY

    import app.metrics  # noqa: F401  (registers the metrics)

    exported = {
        metric.name.removesuffix("_total")
        for metric in REGISTRY.collect()
        if metric.name.startswith("flowdesk_")
    }
    documented = {
        name.removesuffix("_total") for name in re.findall(r"`(flowdesk_[a-z_]+)[{`]", README)
    }
    assert exported - documented == set(), "metrics missing from the README"
    assert documented - exported == set(), "the README names metrics that do not exist"
