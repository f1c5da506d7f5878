"""Unit tests of the load generator's payloads and plan (no Kafka needed)."""

from __future__ import annotations

import random
import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app import loadgen
from app.loadgen import (
    CUSTOMERS_TOPIC,
    INBOUND,
    NON_RETURNABLE_CATEGORIES,
    ORDERS_TOPIC,
    Query,
    Traffic,
    asr_normalise,
    make_card_number,
    make_chat,
    make_customer,
    make_email,
    make_order,
    make_query,
    make_voice,
    plan,
    run_loadgen,
)

NOW = datetime(2026, 11, 5, 12, 0, tzinfo=UTC)

CHAT_FIELDS = {"message_id", "session_id", "customer_id", "text", "sent_at"}
EMAIL_FIELDS = {"message_id", "customer_id", "from", "subject", "body", "received_at"}
VOICE_FIELDS = {"call_id", "customer_id", "seq", "transcript", "final", "at"}
CUSTOMER_FIELDS = {"customer_id", "name", "email", "tier", "locale"}
ORDER_FIELDS = {"order_id", "customer_id", "status", "ordered_at", "delivered_at", "items"}
ITEM_FIELDS = {"sku", "name", "category", "price"}

# A card as SPEC section 4 defines it: 13-19 digits, spaces or dashes between them.
CARD_RE = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")


def luhn_valid(number: str) -> bool:
    """The Luhn check, written independently of the generator's."""
    digits = [int(ch) for ch in number if ch.isdigit()]
    total = 0
    for i, digit in enumerate(reversed(digits)):
        if i % 2 == 1:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def parse_ts(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    assert moment.tzinfo is not None, f"timestamp without offset: {value}"
    return moment


@pytest.fixture
def make_traffic() -> Any:
    """Factory: a Traffic with a fixed clock and small defaults."""

    def factory(**overrides: Any) -> Traffic:
        options: dict[str, Any] = {"count": 300, "customers": 30, "seed": 7, "now": NOW}
        options.update(overrides)
        return Traffic(**options)

    return factory


def records_by_topic(records: list[loadgen.Record]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for topic, _, value in records:
        grouped[topic].append(value)
    return grouped


# --- Payload shapes (SPEC section 3) --------------------------------------------------


def test_every_record_matches_spec_fields(make_traffic: Any) -> None:
    records = list(make_traffic(count=600))
    grouped = records_by_topic(records)
    assert set(grouped) == {CUSTOMERS_TOPIC, ORDERS_TOPIC, *INBOUND.values()}

    for value in grouped[CUSTOMERS_TOPIC]:
        assert set(value) == CUSTOMER_FIELDS
        assert re.fullmatch(r"C\d{6}", value["customer_id"])
        assert value["tier"] in {"standard", "gold", "vip"}
        assert value["locale"] in {"en-GB", "en-US", "de-DE", "fr-FR", "nl-NL"}
        assert re.fullmatch(r"[a-z0-9.]+@[a-z.]+\.[a-z]+", value["email"]), value["email"]
    for value in grouped[ORDERS_TOPIC]:
        assert set(value) == ORDER_FIELDS
        assert re.fullmatch(r"ORD-\d{6}", value["order_id"])
        assert value["status"] in {"placed", "shipped", "delivered", "cancelled"}
        parse_ts(value["ordered_at"])
        assert (value["delivered_at"] is not None) == (value["status"] == "delivered")
        assert 1 <= len(value["items"]) <= 3
        for item in value["items"]:
            assert set(item) == ITEM_FIELDS
            assert isinstance(item["price"], float) and item["price"] > 0
    for value in grouped[INBOUND["chat"]]:
        assert set(value) == CHAT_FIELDS
        assert value["text"].strip()
        parse_ts(value["sent_at"])
    for value in grouped[INBOUND["email"]]:
        assert set(value) == EMAIL_FIELDS
        assert value["subject"] and value["body"].strip()
        parse_ts(value["received_at"])
    for value in grouped[INBOUND["voice"]]:
        assert set(value) == VOICE_FIELDS
        assert isinstance(value["seq"], int) and isinstance(value["final"], bool)
        parse_ts(value["at"])


def test_keys_are_the_customer_id_of_the_value(make_traffic: Any) -> None:
    for _, key, value in make_traffic():
        assert isinstance(key, str) and key == value["customer_id"]


def test_timestamps_use_several_offsets(make_traffic: Any) -> None:
    grouped = records_by_topic(list(make_traffic(count=400)))
    offsets = {parse_ts(v["sent_at"]).utcoffset() for v in grouped[INBOUND["chat"]]}
    assert timedelta(0) in offsets
    assert len(offsets) >= 3


def test_customer_tiers_are_weighted() -> None:
    rng = random.Random(1)
    tiers = Counter(make_customer(rng, i)["tier"] for i in range(4000))
    assert 0.75 < tiers["standard"] / 4000 < 0.85
    assert 0.11 < tiers["gold"] / 4000 < 0.19
    assert 0.03 < tiers["vip"] / 4000 < 0.07


def test_customer_id_is_idx_in_six_digits() -> None:
    assert make_customer(random.Random(0), 123)["customer_id"] == "C000123"
    with pytest.raises(ValueError, match="idx"):
        make_customer(random.Random(0), -1)


def test_orders_spread_over_the_return_windows() -> None:
    rng = random.Random(2)
    orders = [make_order(rng, "C000001", NOW) for _ in range(3000)]
    statuses = Counter(o["status"] for o in orders)
    assert statuses.most_common(1)[0][0] == "delivered"
    assert set(statuses) == {"placed", "shipped", "delivered", "cancelled"}
    ages = [(NOW - parse_ts(o["delivered_at"])).days for o in orders if o["status"] == "delivered"]
    assert all(0 <= age <= 120 for age in ages)
    assert any(age < 30 for age in ages)
    assert any(30 < age < 90 for age in ages)
    assert any(age > 90 for age in ages)
    for order in orders:
        if order["delivered_at"]:
            assert parse_ts(order["ordered_at"]) < parse_ts(order["delivered_at"])
        assert parse_ts(order["ordered_at"]) <= NOW
    categories = {item["category"] for o in orders for item in o["items"]}
    assert categories >= {"apparel", "electronics", "home", "toys", "books"}
    assert categories >= NON_RETURNABLE_CATEGORIES


def test_order_items_are_distinct() -> None:
    rng = random.Random(3)
    for _ in range(500):
        skus = [item["sku"] for item in make_order(rng, "C000001", NOW)["items"]]
        assert len(skus) == len(set(skus))


def test_order_ids_are_unique_within_a_plan(make_traffic: Any) -> None:
    ids = [v["order_id"] for t, _, v in make_traffic(count=0, customers=2000) if t == ORDERS_TOPIC]
    assert len(ids) == len(set(ids)) > 1000


# --- Query texts ----------------------------------------------------------------------


def test_every_intent_is_generated_with_several_phrasings() -> None:
    rng = random.Random(4)
    texts: dict[str, set[str]] = defaultdict(set)
    for _ in range(4000):
        query = make_query(rng, pii_share=0, injection_share=0)
        texts[query.intent].add(query.text)
    assert set(texts) == set(loadgen.INTENTS)
    assert all(len(phrasings) >= 5 for phrasings in texts.values())


def test_forced_intent_is_kept() -> None:
    rng = random.Random(5)
    assert all(make_query(rng, intent="refund").intent == "refund" for _ in range(50))
    with pytest.raises(ValueError, match="unknown intent"):
        make_query(rng, intent="weather")  # type: ignore[arg-type]


def test_mentioned_order_id_is_in_the_text_and_is_the_customers() -> None:
    rng = random.Random(6)
    orders = [make_order(rng, "C000001", NOW) for _ in range(3)]
    own_ids = {o["order_id"] for o in orders}
    mentioned = 0
    for _ in range(500):
        query = make_query(rng, orders=orders, intent="return")
        if query.order_id is not None:
            mentioned += 1
            assert query.order_id in own_ids
            assert query.order_id in query.text
        else:
            assert not re.search(r"ORD-\d{6}", query.text)
    assert 0 < mentioned < 500


def test_damage_is_said_with_a_rule_word() -> None:
    rng = random.Random(7)
    queries = [make_query(rng, intent="return") for _ in range(500)]
    damaged = [q for q in queries if q.damaged]
    assert 0 < len(damaged) < len(queries)
    for query in damaged:
        assert re.search(r"damaged|broken|defective", query.text, re.IGNORECASE)


def test_pii_share_is_respected_and_values_appear() -> None:
    rng = random.Random(8)
    queries = [make_query(rng, pii_share=0.3, injection_share=0) for _ in range(3000)]
    with_pii = [q for q in queries if q.pii]
    assert 0.25 < len(with_pii) / len(queries) < 0.35
    kinds = {kind for q in with_pii for kind, _ in q.pii}
    assert kinds == {"card", "email", "phone"}
    for query in with_pii:
        for _kind, value in query.pii:
            assert value in query.text
    none = [make_query(rng, pii_share=0.0, injection_share=0) for _ in range(500)]
    assert not any(q.pii for q in none)
    assert not any(CARD_RE.search(q.text) for q in none)


def test_card_numbers_are_luhn_valid_and_well_formed() -> None:
    rng = random.Random(9)
    separators = set()
    for _ in range(5000):
        card = make_card_number(rng)
        digits = re.sub(r"[ -]", "", card)
        assert digits.isdigit() and 13 <= len(digits) <= 19, card
        assert luhn_valid(card), card
        assert CARD_RE.fullmatch(card), card
        separators |= set(card) - set("0123456789")
    assert separators == {" ", "-"}


def test_cards_found_in_generated_texts_are_luhn_valid(make_traffic: Any) -> None:
    traffic = make_traffic(count=2000, pii_share=0.5)
    list(traffic)
    cards = [value for q in traffic.queries for kind, value in q.query.pii if kind == "card"]
    assert len(cards) > 100
    assert all(luhn_valid(card) for card in cards)
    for info in traffic.queries:
        for match in CARD_RE.findall(info.query.text):
            assert luhn_valid(match), match


def test_luhn_helper_catches_a_wrong_digit() -> None:
    # Guards the test's own check: a single changed digit must fail it.
    card = make_card_number(random.Random(10))
    last = card[-1]
    wrong = card[:-1] + str((int(last) + 1) % 10)
    assert luhn_valid(card) and not luhn_valid(wrong)


def test_phone_numbers_look_international() -> None:
    rng = random.Random(11)
    for _ in range(200):
        assert re.fullmatch(r"\+\d{1,2}( \d{2,7}){2,3}", loadgen.make_phone_number(rng))


def test_injection_share_is_respected() -> None:
    rng = random.Random(12)
    queries = [make_query(rng, injection_share=0.1) for _ in range(3000)]
    attacks = [q for q in queries if q.injection]
    assert 0.07 < len(attacks) / len(queries) < 0.13
    for query in attacks:
        assert "ignore all previous instructions" in query.text.lower()
    for query in queries:
        if not query.injection:
            assert "ignore all previous" not in query.text.lower()


@pytest.mark.parametrize("share", [-0.1, 1.5])
def test_shares_out_of_range_are_rejected(share: float) -> None:
    with pytest.raises(ValueError, match="pii_share"):
        make_query(random.Random(0), pii_share=share)
    with pytest.raises(ValueError, match="injection_share"):
        Traffic(count=1, injection_share=share)


# --- Channels -------------------------------------------------------------------------


def customer_and_orders(seed: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    rng = random.Random(seed)
    customer = make_customer(rng, 1)
    return customer, [make_order(rng, customer["customer_id"], NOW) for _ in range(2)]


def test_chat_keeps_the_query_text() -> None:
    customer, orders = customer_and_orders(1)
    query = Query(text="Where is order ORD-123456?", intent="order_status", order_id="ORD-123456")
    rng = random.Random(1)
    for _ in range(100):
        chat = make_chat(rng, customer, orders, NOW, query=query)
        assert chat["text"].lower() == query.text.lower()
        assert "ORD-123456" in chat["text"]  # ids survive even when the rest is lowercased
        assert chat["customer_id"] == customer["customer_id"]
        assert chat["message_id"] != chat["session_id"]


def test_email_body_has_query_signature_and_quotes() -> None:
    customer, orders = customer_and_orders(2)
    rng = random.Random(2)
    bodies = []
    for _ in range(400):
        query = make_query(rng, orders=orders)
        email = make_email(rng, customer, orders, NOW, query=query)
        assert query.text in email["body"]
        assert customer["email"] in email["from"]
        bodies.append(email)
    signed = [e for e in bodies if "\n-- \n" in e["body"]]
    quoted = [e for e in bodies if re.search(r"^> ", e["body"], re.MULTILINE)]
    attributed = [e for e in bodies if re.search(r"^On .+ wrote:$", e["body"], re.MULTILINE)]
    assert 0 < len(signed) < len(bodies)
    assert 0 < len(attributed) < len(quoted) < len(bodies)
    for email in signed:
        lines = email["body"].split("\n")
        assert "-- " in lines  # exactly dash-dash-space, the trailing space kept
        signature = email["body"].split("\n-- \n", 1)[1]
        assert customer["name"] in signature
    for email in quoted:
        assert email["subject"].startswith("Re: ")
    header = re.search(r"^On (\w{3}), (\d{1,2}) (\w{3}) (\d{4}) at (\d\d:\d\d), (.+) wrote:$",
                       attributed[0]["body"], re.MULTILINE)  # fmt: skip
    assert header is not None
    day, date = (
        header.group(1),
        datetime.strptime(f"{header.group(2)} {header.group(3)} {header.group(4)}", "%d %b %Y"),
    )
    assert date.strftime("%a") == day  # the weekday matches the date
    assert header.group(6) == "Support <support@shop.example>"


def test_voice_segments_are_contiguous_with_one_final_last() -> None:
    customer, orders = customer_and_orders(3)
    rng = random.Random(3)
    lengths: Counter[int] = Counter()
    for _ in range(500):
        query = make_query(rng, orders=orders, pii_share=0.3)
        segments = make_voice(rng, customer, orders, NOW, query=query)
        lengths[len(segments)] += 1
        assert [s["seq"] for s in segments] == list(range(len(segments)))
        assert [s["final"] for s in segments] == [False] * (len(segments) - 1) + [True]
        assert len({s["call_id"] for s in segments}) == 1
        assert all(s["transcript"] for s in segments)
        times = [parse_ts(s["at"]) for s in segments]
        assert times == sorted(times)
        utterance = " ".join(s["transcript"] for s in segments)
        assert asr_normalise(query.text) in utterance
        for _kind, value in query.pii:
            # Spoken numbers are not torn apart between segments.
            assert any(value.lower() in s["transcript"].lower() for s in segments), value
        if query.order_id:
            assert query.order_id in utterance
    assert set(lengths) == {1, 2, 3, 4}


def test_voice_transcripts_read_like_asr_output() -> None:
    customer, orders = customer_and_orders(4)
    rng = random.Random(4)
    for _ in range(300):
        for segment in make_voice(rng, customer, orders, NOW):
            words = segment["transcript"].split(" ")
            for word in words:
                assert word, segment["transcript"]  # no double spaces
                if not any(ch.isdigit() for ch in word) and "@" not in word:
                    assert word == word.lower(), word
                    assert re.fullmatch(r"[\w'\-]+", word), word
                assert word[-1] not in ".,!?;:", word


# --- The plan -------------------------------------------------------------------------


def test_same_seed_same_plan(make_traffic: Any) -> None:
    first = list(make_traffic(seed=42))
    again = list(make_traffic(seed=42))
    other = list(make_traffic(seed=43))
    assert first == again
    assert first != other


def test_replaying_a_traffic_gives_the_same_plan(make_traffic: Any) -> None:
    traffic = make_traffic(seed=None)
    first, first_queries = list(traffic), list(traffic.queries)
    assert list(traffic) == first
    assert traffic.queries == first_queries
    assert isinstance(traffic.seed, int)


def test_crm_state_comes_before_any_query(make_traffic: Any) -> None:
    topics = [topic for topic, _, _ in make_traffic(customers=50)]
    crm = {CUSTOMERS_TOPIC, ORDERS_TOPIC}
    last_crm = max(i for i, topic in enumerate(topics) if topic in crm)
    first_query = min(i for i, topic in enumerate(topics) if topic not in crm)
    assert last_crm < first_query
    assert topics.count(CUSTOMERS_TOPIC) == 50


def test_orders_follow_their_customer(make_traffic: Any) -> None:
    seen: set[str] = set()
    for topic, key, _ in make_traffic(count=0, customers=100):
        if topic == CUSTOMERS_TOPIC:
            seen.add(key)
        else:
            assert topic == ORDERS_TOPIC and key in seen


def test_query_ids_unique_over_5000_queries(make_traffic: Any) -> None:
    traffic = make_traffic(count=5000, customers=200)
    ids = []
    for topic, _, value in traffic:
        if topic == INBOUND["voice"]:
            if value["seq"] == 0:
                ids.append(value["call_id"])
        elif topic in (INBOUND["chat"], INBOUND["email"]):
            ids.append(value["message_id"])
    assert len(ids) == 5000
    assert len(set(ids)) == 5000
    assert [info.query_id for info in traffic.queries] == ids
    assert all(re.fullmatch(r"[0-9a-f]{32}", query_id) for query_id in ids)


def test_queries_metadata_matches_the_payloads(make_traffic: Any) -> None:
    traffic = make_traffic(count=500)
    by_id: dict[str, tuple[str, str]] = {}
    for topic, key, value in traffic:
        query_id = value.get("message_id") or value.get("call_id")
        if query_id:
            by_id[query_id] = (topic, key)
    for info in traffic.queries:
        assert by_id[info.query_id] == (INBOUND[info.channel], info.customer_id)


@pytest.mark.parametrize(
    "channels", [("chat",), ("email",), ("voice",), ("chat", "voice"), "email,voice"]
)
def test_plan_respects_channel_selection(channels: Any) -> None:
    wanted = set(channels.split(",") if isinstance(channels, str) else channels)
    topics = {
        topic for topic, _, _ in plan(count=300, channels=channels, customers=20, seed=1, now=NOW)
    }
    assert topics - {CUSTOMERS_TOPIC, ORDERS_TOPIC} == {INBOUND[c] for c in wanted}


def test_voice_calls_are_complete_and_ordered_when_interleaved(make_traffic: Any) -> None:
    traffic = make_traffic(count=400, channels=("voice", "chat"))
    calls: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for topic, _, value in traffic:
        if topic == INBOUND["voice"]:
            calls[value["call_id"]].append(value)
    assert len(calls) == sum(1 for q in traffic.queries if q.channel == "voice")
    for segments in calls.values():
        assert [s["seq"] for s in segments] == list(range(len(segments)))
        assert [s["final"] for s in segments].count(True) == 1 and segments[-1]["final"]
    # Interleaving really happens: some call's segment follows another query's start.
    starts = [
        (v["call_id"], v["seq"])
        for t, _, v in make_traffic(count=400, channels=("voice",))
        if t == INBOUND["voice"]
    ]
    assert any(a[0] != b[0] and b[1] > 0 for a, b in pairwise(starts))


def test_plan_without_interleaving_keeps_calls_together(make_traffic: Any) -> None:
    traffic = make_traffic(count=200, channels=("voice",), interleave_voice=False)
    current, expected_seq = None, 0
    for _, _, value in traffic:
        if "call_id" not in value:
            continue
        if value["seq"] == 0:
            assert current is None
            current = value["call_id"]
        assert value["call_id"] == current and value["seq"] == expected_seq
        expected_seq += 1
        if value["final"]:
            current, expected_seq = None, 0


def test_clock_stamps_queries_when_generated() -> None:
    ticks: Iterator[datetime] = (NOW + timedelta(hours=h) for h in range(10_000))
    traffic = Traffic(count=50, channels="chat", customers=5, seed=1, clock=lambda: next(ticks))
    stamps = [parse_ts(v["sent_at"]) for t, _, v in traffic if t == INBOUND["chat"]]
    assert stamps == sorted(stamps) and stamps[-1] - stamps[0] >= timedelta(hours=40)


def test_intent_mix_covers_all_intents(make_traffic: Any) -> None:
    traffic = make_traffic(count=2000)
    list(traffic)
    intents = Counter(info.query.intent for info in traffic.queries)
    assert set(intents) == set(loadgen.INTENTS)
    assert intents["return"] > intents["human_request"]


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**63), count=st.integers(0, 40))
def test_any_seed_gives_a_well_formed_plan(seed: int, count: int) -> None:
    traffic = Traffic(count=count, customers=5, seed=seed, now=NOW)
    records = list(traffic)
    assert len(traffic.queries) == count
    finals = [v for t, _, v in records if t == INBOUND["voice"] and v["final"]]
    assert len(finals) == sum(1 for q in traffic.queries if q.channel == "voice")


# --- Argument validation --------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"count": -1}, "count"),
        ({"count": 1.5}, "count"),
        ({"count": 1, "customers": 0}, "customers"),
        ({"count": 1, "channels": ()}, "no channel"),
        ({"count": 1, "channels": ("chat", "sms")}, "unknown channel 'sms'"),
        ({"count": 1, "channels": "chat,fax"}, "unknown channel 'fax'"),
        ({"count": 1, "now": datetime(2026, 1, 1)}, "timezone-aware"),
    ],
)
def test_traffic_rejects_bad_arguments(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Traffic(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rate": 0}, "rate"),
        ({"rate": -5}, "rate"),
        ({"rate": float("nan")}, "rate"),
        ({"rate": 10, "count": -1}, "count"),
        ({"rate": 10, "channels": ["chat", "pigeon"]}, "pigeon"),
        ({"rate": 10, "customers": 0}, "customers"),
        ({"rate": 10, "bootstrap_servers": []}, "bootstrap_servers"),
        ({"rate": 10, "bootstrap_servers": "127.0.0.1:9"}, "bootstrap_servers"),
    ],
)
async def test_run_loadgen_rejects_bad_arguments_before_connecting(
    kwargs: dict[str, Any], message: str
) -> None:
    # Port 9 (discard) has no broker: an error other than ValueError would mean the
    # function tried to connect before validating.
    options: dict[str, Any] = {"bootstrap_servers": ["127.0.0.1:9"], "count": 5}
    options.update(kwargs)
    with pytest.raises(ValueError, match=message):
        await run_loadgen(progress=False, **options)


def test_report_summary_mentions_the_numbers() -> None:
    report = loadgen.LoadgenReport(
        seed=99,
        sent_queries=12,
        sent_records=40,
        customers=5,
        orders=9,
        query_ids=[("chat", "a" * 32)],
        elapsed_s=4.0,
        by_intent={"return": 7, "refund": 5},
        by_channel={"chat": 12},
        with_pii=2,
        injections=1,
    )
    text = report.summary()
    assert report.rate == 3.0
    for fragment in ("12 queries", "40 records", "3.0 q/s", "seed 99", "5 customers", "9 orders",
                     "chat 12", "return 7", "refund 5", "PII: 2", "injections: 1"):  # fmt: skip
        assert fragment in text, fragment
