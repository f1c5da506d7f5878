"""Model definitions and the catalog: validation, weights, stickiness, run-time changes."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from factories import Clock
from pydantic import ValidationError as PydanticValidationError

from app.catalog import (
    REFRESH_SECONDS,
    Endpoint,
    ModelCatalog,
    ModelDefinition,
    parse_definition,
)
from app.errors import DecodeError, ValidationError
from app.resilience import CircuitBreaker

CUSTOMERS = [f"C{n:05d}" for n in range(10_000)]


def definition(name: str = "support", version: str = "1", **fields: object) -> dict:
    return {"name": name, "version": version, "base_url": "http://models:8000/v1", **fields}


def default_endpoint() -> Endpoint:
    return Endpoint(
        name="primary",
        base_url="http://settings:8000/v1",
        model="settings-model",
        version="s",
        api_key="settings-key",
        breaker=CircuitBreaker(name="primary"),
    )


def catalog_of(*definitions: dict, environ: dict[str, str] | None = None) -> ModelCatalog:
    table = {f"{d['name']}@{d['version']}".encode(): d for d in definitions}
    catalog = ModelCatalog(
        defaults=[default_endpoint()],
        source=table.items,
        api_key="settings-key",
        environ=environ or {},
    )
    catalog.refresh(force=True)
    return catalog


def shares(catalog: ModelCatalog) -> Counter[str]:
    return Counter(catalog.route(c)[0].name for c in CUSTOMERS)


# --- definitions -------------------------------------------------------------------------


def test_a_definition_parses_with_its_defaults() -> None:
    parsed = parse_definition(b"support@2", json.dumps(definition(version="2")).encode())
    assert parsed.id == "support@2"
    assert parsed.served_model == "support"
    assert parsed.weight == 1.0 and parsed.fallback is False
    assert parsed.params.request_params() == {}


@pytest.mark.parametrize(
    ("key", "value", "error", "says"),
    [
        (b"support@1", b"{not json", DecodeError, "JSON object"),
        (b"support@1", b"[1, 2]", DecodeError, "got list"),
        (b"other@1", json.dumps(definition()).encode(), ValidationError, "must be the variant id"),
        (b"support@1", json.dumps(definition(weight=-1)).encode(), ValidationError, "weight"),
        (
            b"support@1",
            json.dumps(definition(base_url="models:8000")).encode(),
            ValidationError,
            "http(s) URL",
        ),
        (
            b"support@1",
            json.dumps(definition(params={"temprature": 0.1})).encode(),
            ValidationError,
            "params.temprature",
        ),
        (
            b"support@1",
            json.dumps(definition(api_key="sk-123")).encode(),
            ValidationError,
            "api_key",
        ),
        (b"a b@1", json.dumps(definition(name="a b")).encode(), ValidationError, "name"),
    ],
)
def test_a_bad_definition_says_what_is_wrong(
    key: bytes, value: bytes, error: type[Exception], says: str
) -> None:
    with pytest.raises(error) as raised:
        parse_definition(key, value)
    assert says in str(raised.value)


def test_a_definition_without_a_key_is_accepted() -> None:
    assert parse_definition(None, json.dumps(definition()).encode()).id == "support@1"


# --- routing -----------------------------------------------------------------------------


def test_without_definitions_the_settings_endpoint_answers() -> None:
    catalog = catalog_of()
    assert [e.name for e in catalog.route("C1")] == ["primary"]
    assert catalog.describe()[0]["source"] == "settings"


def test_traffic_splits_by_weight() -> None:
    catalog = catalog_of(definition(version="1", weight=9), definition(version="2", weight=1))
    split = shares(catalog)
    assert split["support@2"] / len(CUSTOMERS) == pytest.approx(0.1, abs=0.015)
    assert split["support@1"] + split["support@2"] == len(CUSTOMERS)


def test_a_customer_stays_with_its_variant() -> None:
    catalog = catalog_of(definition(version="1"), definition(version="2"))
    first = {c: catalog.route(c)[0].name for c in CUSTOMERS[:500]}
    again = {c: catalog.route(c)[0].name for c in CUSTOMERS[:500]}
    assert first == again
    assert set(first.values()) == {"support@1", "support@2"}


def test_raising_a_weight_moves_customers_only_towards_that_variant() -> None:
    before = catalog_of(definition(version="1", weight=9), definition(version="2", weight=1))
    after = catalog_of(definition(version="1", weight=5), definition(version="2", weight=5))
    moved = Counter(
        (before.route(c)[0].name, after.route(c)[0].name)
        for c in CUSTOMERS
        if before.route(c)[0].name != after.route(c)[0].name
    )
    assert set(moved) == {("support@1", "support@2")}
    assert moved["support@1", "support@2"] / len(CUSTOMERS) == pytest.approx(0.4, abs=0.02)


def test_a_new_variant_takes_customers_from_the_others_and_none_move_between_them() -> None:
    before = catalog_of(definition(version="1"), definition(version="2"))
    after = catalog_of(definition(version="1"), definition(version="2"), definition(version="3"))
    for customer in CUSTOMERS[:2000]:
        was, now = before.route(customer)[0].name, after.route(customer)[0].name
        assert now in (was, "support@3")


def test_a_drained_variant_gets_no_new_queries() -> None:
    catalog = catalog_of(definition(version="1", weight=0), definition(version="2"))
    assert shares(catalog) == Counter({"support@2": len(CUSTOMERS)})


def test_fallbacks_follow_the_chosen_variant_and_take_no_share() -> None:
    catalog = catalog_of(definition(version="1"), definition(name="backup", fallback=True))
    assert [e.name for e in catalog.route("C7")] == ["support@1", "backup@1"]
    assert catalog.describe()[0]["share"] == 0.0  # backup@1 sorts first
    assert catalog.describe()[1]["share"] == 1.0


def test_with_every_variant_drained_only_fallbacks_answer() -> None:
    catalog = catalog_of(definition(weight=0), definition(name="backup", fallback=True))
    assert [e.name for e in catalog.route("C7")] == ["backup@1"]
    assert catalog_of(definition(weight=0)).route("C7") == ()


# --- run-time changes --------------------------------------------------------------------


def test_changes_are_read_within_the_refresh_interval() -> None:
    clock = Clock()
    table: dict[bytes, dict] = {}
    catalog = ModelCatalog(defaults=[default_endpoint()], source=table.items, clock=clock)
    assert catalog.route("C1")[0].name == "primary"
    table[b"support@1"] = definition()
    assert catalog.route("C1")[0].name == "primary", "not re-read before the interval"
    clock.now += REFRESH_SECONDS
    assert catalog.route("C1")[0].name == "support@1"
    del table[b"support@1"]
    clock.now += REFRESH_SECONDS
    assert catalog.route("C1")[0].name == "primary", "an empty table gives the settings back"


def test_a_variant_keeps_its_breaker_unless_its_server_changes() -> None:
    table = {b"support@1": definition()}
    catalog = ModelCatalog(defaults=[default_endpoint()], source=table.items)
    catalog.refresh(force=True)
    breaker = catalog.endpoints[0].breaker
    table[b"support@1"] = definition(weight=3)
    catalog.refresh(force=True)
    assert catalog.endpoints[0].weight == 3
    assert catalog.endpoints[0].breaker is breaker
    table[b"support@1"] = definition(base_url="http://elsewhere:8000/v1")
    catalog.refresh(force=True)
    assert catalog.endpoints[0].breaker is not breaker


def test_an_endpoint_taken_before_a_removal_still_works() -> None:
    table = {b"support@1": definition()}
    catalog = ModelCatalog(defaults=[default_endpoint()], source=table.items)
    catalog.refresh(force=True)
    in_flight = catalog.route("C1")
    table.clear()
    table[b"support@2"] = definition(version="2")
    catalog.refresh(force=True)
    assert in_flight[0].name == "support@1" and in_flight[0].breaker.allow()
    assert catalog.route("C1")[0].name == "support@2"


def test_api_keys_come_from_the_named_variable_and_are_never_described() -> None:
    catalog = catalog_of(
        definition(version="1", api_key_env="VENDOR_KEY"),
        definition(version="2"),
        environ={"VENDOR_KEY": "sk-vendor"},
    )
    keys = {e.name: e.api_key for e in catalog.endpoints}
    assert keys == {"support@1": "sk-vendor", "support@2": "settings-key"}
    described = json.dumps(catalog.describe())
    assert "sk-vendor" not in described and "settings-key" not in described


def test_an_invalid_table_value_is_ignored_not_fatal() -> None:
    catalog = catalog_of(definition(version="1"), {"name": "broken", "version": "1"})
    assert [e.name for e in catalog.endpoints] == ["support@1"]


def test_parameters_and_the_served_name_reach_the_endpoint() -> None:
    catalog = catalog_of(
        definition(model="smol-135m", params={"temperature": 0.7, "max_tokens": 64})
    )
    endpoint = catalog.endpoints[0]
    assert endpoint.model == "smol-135m" and endpoint.label == "support"
    assert dict(endpoint.params) == {"temperature": 0.7, "max_tokens": 64}


def test_model_definition_is_frozen() -> None:
    parsed = ModelDefinition.model_validate(definition())
    with pytest.raises(PydanticValidationError, match="frozen"):
        parsed.weight = 2  # type: ignore[misc]
