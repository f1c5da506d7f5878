"""Finding the order a customer names among their own orders, whatever the ids' format."""

from __future__ import annotations

import time

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from app.ordermatch import MAX_ORDER_ID_CHARS, lookalike_order_ids, named_order_ids

OWNED = ["HO-90001", "A7-55-1023", "1000234", "ORD-482913", "2024/INV_07"]


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("Where is #1000234?", ["1000234"]),
        ("my order (ho-90001).", ["HO-90001"]),
        ("order#1000234, please", ["1000234"]),
        ("ORDER 1000234!", ["1000234"]),
        ("a7-55-1023 and HO-90001", ["A7-55-1023", "HO-90001"]),
        ("HO-90001 then a7-55-1023 then ho-90001", ["HO-90001", "A7-55-1023"]),
        ("No.1000234 arrived", ["1000234"]),
        ("it is 2024/inv_07:", ["2024/INV_07"]),
        ("ord-482913", ["ORD-482913"]),
        ("ord\u2013482913", ["ORD-482913"]),  # an en dash typed for the hyphen
        ("\uff28\uff2f\uff0d\uff19\uff10\uff10\uff10\uff11", ["HO-90001"]),  # full-width
        ("HO-9\u200b0001", ["HO-90001"]),  # a zero-width space inside
        ("注文1000234が届きません", ["1000234"]),
        ("Bestellung «1000234»", ["1000234"]),
        ("HO-90001-", ["HO-90001"]),
        ("1000234.", ["1000234"]),
        # Inside a longer number or id, or a decimal: not named.
        ("10002345", []),
        ("91000234", []),
        ("A-1000234", []),
        ("1000234/7", []),
        ("1000234.5", []),
        ("1000234-B", []),
        ("XHO-90001", []),
        ("HO-900012", []),
        ("ORD-4829130", []),
        ("2024/INV_070", []),
        ("x1000234", []),
        ("no order id here", []),
        ("", []),
    ],
)
def test_an_owned_id_is_named_however_it_is_written(text: str, named: list[str]) -> None:
    assert named_order_ids(text, OWNED) == named


def test_a_shorter_id_inside_a_longer_one_of_the_same_customer_is_not_named() -> None:
    assert named_order_ids("Return #10002345, please.", ["1000234", "10002345"]) == ["10002345"]


def test_ids_are_given_as_the_crm_spells_them() -> None:
    assert named_order_ids("HO-90001", ["ho-90001"]) == ["ho-90001"]
    assert named_order_ids("hello", []) == []
    assert named_order_ids("  ", ["", " "]) == [], "an empty id names nothing"


def test_an_id_longer_than_the_limit_is_not_looked_for() -> None:
    long_id = "A" * (MAX_ORDER_ID_CHARS + 1)
    assert named_order_ids(f"order {long_id}", [long_id]) == []
    at_limit = "A" * MAX_ORDER_ID_CHARS
    assert named_order_ids(f"order {at_limit}", [at_limit]) == [at_limit]


@pytest.mark.parametrize(
    ("text", "lookalikes"),
    [
        ("return HO-90002 please", ["HO-90002"]),
        ("ho-90002 or HO-90002, not HO-90001", ["HO-90002"]),
        ("order 1000235", ["1000235"]),
        ("a7-55-1024?", ["A7-55-1024"]),
        ("注文HO-90002です", ["HO-90002"]),
        ("réf. 1000235, merci", ["1000235"]),
        # Not the shape of any of the customer's ids, or too few digits to say.
        ("I paid 1000 for 3 items in 2026", []),
        ("HO-9001 or HO-900011", []),
        ("HO-90001", []),
    ],
)
def test_a_word_shaped_like_the_customers_ids_is_a_lookalike(
    text: str, lookalikes: list[str]
) -> None:
    assert lookalike_order_ids(text, OWNED) == lookalikes


def test_short_ids_have_no_lookalikes() -> None:
    # With orders numbered 1, 2, 3, every small number would look like an order id.
    assert lookalike_order_ids("2 mugs and 3 plates, 4567 in total", ["1", "12", "1234"]) == []


# --- Generated ids, written as customers write them ---------------------------------------

_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_/"
_ALNUM = st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
# Ids start and end with a letter or a digit: one ending in "-" written before a "-"
# cannot be told from a longer id, whoever reads it.
ids = (
    st.builds(
        lambda first, middle, last: first + middle + last,
        _ALNUM,
        st.text(_ID_ALPHABET, max_size=20),
        _ALNUM,
    )
    | _ALNUM
)
# What may stand next to an id: punctuation, spaces and text in other scripts.
_BESIDE = " \t\n.,;:!?()[]{}<>\"'«»#*&%@+=~|\\—。、「」"
beside = st.text(_BESIDE, max_size=4)
# Words in another script may touch the id; words in its own script are apart from it.
before_words = st.sampled_from(
    ["", "注文", "заказ ", "номер", "طلب ", "הזמנה ", "Bestellung ", "commande n° ", "订单号"]
)
after_words = st.sampled_from(["", "です", " заказ", "номер", " طلب", "הזמנה", " bitte", "は"])


def _random_case(draw: st.DrawFn, text: str) -> str:
    flips = draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    return "".join(c.swapcase() if flip else c for c, flip in zip(text, flips, strict=True))


@st.composite
def written(draw: st.DrawFn, order_id: str) -> str:
    """``order_id`` as a customer might write it in a sentence."""
    hashed = "#" if draw(st.booleans()) else ""
    return (
        draw(before_words)
        + draw(beside)
        + hashed
        + _random_case(draw, order_id)
        + draw(beside)
        + draw(after_words)
    )


owned_ids = st.lists(ids, min_size=1, max_size=6, unique_by=str.casefold)


@settings(max_examples=500, deadline=None)
@given(st.data(), owned_ids)
def test_a_generated_id_is_named_however_it_is_written(
    data: st.DataObject, owned: list[str]
) -> None:
    named = data.draw(st.sampled_from(owned), label="named")
    text = data.draw(written(named), label="text")
    found = named_order_ids(text, owned)
    assert named in found
    assert set(found) <= set(owned)


@settings(max_examples=300, deadline=None)
@given(
    st.data(),
    st.builds(
        lambda part, sep, number, first: part + sep + number if first else number + sep + part,
        ids,
        st.sampled_from(["", "-", "_", "/"]),
        st.text("0123456789", min_size=5, max_size=9),
        st.booleans(),
    ),
)
def test_a_generated_id_one_digit_off_is_a_lookalike(data: st.DataObject, order_id: str) -> None:
    digits = [n for n, c in enumerate(order_id) if c.isdigit()]
    at = data.draw(st.sampled_from(digits), label="at")
    digit = data.draw(st.sampled_from("0123456789").filter(lambda d: d != order_id[at]))
    other = order_id[:at] + digit + order_id[at + 1 :]
    text = data.draw(written(other), label="text")
    assert named_order_ids(text, [order_id]) == []
    assert lookalike_order_ids(text, [order_id]) == [other.upper()]


@settings(max_examples=500, deadline=None)
@given(
    st.data(),
    ids,
    st.sampled_from(["0", "7", "x", "Z", "-7", "_x", "/0", ".5"]),
    st.booleans(),
)
def test_a_generated_id_inside_a_longer_id_or_number_is_not_named(
    data: st.DataObject, order_id: str, extra: str, before: bool
) -> None:
    if before:
        if extra == ".5":
            extra = "5."
        glued = extra[::-1] + order_id if extra[0] in "-_/" else extra + order_id
    else:
        glued = order_id + extra
    assume(not (extra == ".5" and not order_id[-1].isdecimal()))  # "HO-A.5" ends a sentence
    assume(not (extra == "5." and not order_id[0].isdecimal()))
    assume(glued.casefold().count(order_id.casefold()) == 1)
    text = data.draw(beside) + _random_case_plain(glued, data) + data.draw(beside)
    assert named_order_ids(text, [order_id]) == []


def _random_case_plain(text: str, data: st.DataObject) -> str:
    return "".join(c.swapcase() if data.draw(st.booleans()) else c for c in text)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300), owned_ids)
def test_any_text_gives_owned_ids_and_lookalikes_that_are_not(text: str, owned: list[str]) -> None:
    found = named_order_ids(text, owned)
    assert len(found) == len(set(found)) and set(found) <= set(owned)
    mine = {order_id.casefold() for order_id in owned}
    assert not {lookalike.casefold() for lookalike in lookalike_order_ids(text, owned)} & mine


def _search_time(text: str, owned: list[str]) -> float:
    """The time to search ``text``, the best of three runs (the machine may be busy)."""
    runs = []
    for _ in range(3):
        started = time.perf_counter()
        named_order_ids(text, owned)
        lookalike_order_ids(text, owned)
        runs.append(time.perf_counter() - started)
    return min(runs)


@pytest.mark.parametrize(
    ("unit", "owned"),
    [
        # Every position starts a near-match of every id: the worst case for str.find.
        ("a", ["a" * (MAX_ORDER_ID_CHARS - 1) + str(n) for n in range(20)]),
        # Every other position holds an id, each inside a longer one: checked, refused.
        ("1-", ["1", "1-1", "11111"]),
    ],
)
def test_hostile_text_is_searched_in_linear_time(unit: str, owned: list[str]) -> None:
    short = _search_time(unit * 20_000, owned)
    long = _search_time(unit * 80_000, owned)
    # Four times the text takes about four times as long; a quadratic search, sixteen.
    assert long < 10 * max(short, 0.005), (short, long)
