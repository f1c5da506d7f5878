"""The model's answer as an untrusted user's: allowed actions, allowed links, no PII."""

from __future__ import annotations

import contextlib

import pytest

from app.answers import ModelAnswer, ProposedAction
from app.errors import InvalidModelOutput
from app.guard import ALLOWED_ACTIONS, check_answer

SHOP = frozenset({"shop.example", "help.example.org"})


def answer(
    text: str = "Happy to help.", actions: list[ProposedAction] | None = None
) -> ModelAnswer:
    return ModelAnswer(answer=text, intent="shipping", actions=actions or [], confidence=0.8)


def action(kind: str, detail: str = "") -> ProposedAction:
    return ProposedAction(type=kind, order_id="ORD-000001", detail=detail)


def test_the_allow_list() -> None:
    assert ALLOWED_ACTIONS == {
        "return_label",
        "return_denied",
        "track_order",
        "refund_request",
        "update_address",
        "send_reset_link",
    }


@pytest.mark.parametrize(
    ("proposed", "kept"),
    [
        (["track_order", "refund_request"], ["track_order", "refund_request"]),
        ([" Track_Order ", "SEND_RESET_LINK"], ["track_order", "send_reset_link"]),
        (
            ["return_label", "return_denied", "update_address"],
            [
                "return_label",
                "return_denied",
                "update_address",
            ],
        ),
        (["delete_account", "track_order"], ["track_order"]),
        (["refund_everything", "issue_credit", "run_sql", "   "], []),
        (["track order", "track_order_now", "track_orders"], []),
    ],
)
def test_only_allowed_actions_are_kept(proposed: list[str], kept: list[str]) -> None:
    checked = check_answer(
        answer(actions=[action(kind) for kind in proposed]), allowed_link_domains=SHOP
    )
    assert [a.type for a in checked.actions] == kept
    assert all(a.order_id == "ORD-000001" for a in checked.actions)


@pytest.mark.parametrize(
    "text",
    [
        "No link at all.",
        "Track it on https://shop.example/orders/ORD-000001.",
        "See http://shop.example",
        "Our help pages (https://help.example.org/returns) explain it.",
        "Subdomains are the shop's too: https://track.shop.example/x",
        "Deeper ones as well: https://eu.track.shop.example/x",
        "Case does not matter: HTTPS://Shop.Example/Returns",
        "With a port: https://shop.example:443/x.",
        "A trailing dot of the host: https://shop.example./x",
        "Bare: www.shop.example and shop.example/returns and help.example.org/faq.",
        "Markdown: [returns](https://shop.example/returns).",
        # In a path, a domain is not a link of its own.
        "https://shop.example/go/evil.com/x and shop.example/www.evil.com",
        # Not links: no path, no scheme, no "www.".
        "It arrives today.Thanks for waiting, see evil.com or ORD-000001.",
        "Prices went up 2.5/3 times; e.g./i.e. stay.",
    ],
)
def test_links_to_the_shops_domains_are_allowed(text: str) -> None:
    assert check_answer(answer(text), allowed_link_domains=SHOP).answer == text


def test_the_host_is_what_follows_the_user_name() -> None:
    # This link goes to shop.example; its "user@host" shape is then redacted as an address.
    checked = check_answer(answer("https://evil.example@shop.example/x"), allowed_link_domains=SHOP)
    assert checked.answer == "https://[EMAIL]/x"


@pytest.mark.parametrize(
    ("text", "host"),
    [
        ("Go to https://evil.com/win", "evil.com"),
        ("Go to http://evil.com", "evil.com"),
        # Look-alikes: the shop's name inside another domain.
        ("https://shop.example.evil.com/returns", "shop.example.evil.com"),
        ("https://evil-shop.example/returns", "evil-shop.example"),
        ("https://myshop.example/returns", "myshop.example"),
        ("https://shop.example-returns.com/", "shop.example-returns.com"),
        ("shop.example.evil.com/returns", "shop.example.evil.com"),
        ("evil-shop.example/returns", "evil-shop.example"),
        ("visit www.evil.com today", "www.evil.com"),
        ("visit www.shop.example.evil.com", "www.shop.example.evil.com"),
        ("evil.com/x", "evil.com"),
        ("https://evil.com:8443/x", "evil.com"),
        # Tricks with the authority: browsers go to evil.com.
        ("https://shop.example@evil.com/", "evil.com"),
        ("https://evil.com\\@shop.example/", "evil.com"),
        ("https://evil.com#@shop.example/", "evil.com"),
        ("https:evil.com", "evil.com"),
        ("https:\\\\evil.com\\x", "evil.com"),
        # A link nested in an allowed one's path is a link too.
        ("https://shop.example/login?next=https://evil.com/", "evil.com"),
        ("https://shop.example/ https://evil.com", "evil.com"),
        # Hosts that cannot be read plainly.
        ("https://203.0.113.5/", "203.0.113.5"),
        ("https://[::1]/", "[::1"),
        ("https://shop%2Eexample/", "shop%2Eexample"),
        ("https://xn--shp-ddd.example/", "xn--shp-ddd.example"),
        ("https://sh\u043ep.example/", "sh\u043ep.example"),  # a Cyrillic "o"
        ("https://shop\uff0eexample/", "shop\uff0eexample"),  # a full-width full stop
        # Other schemes.
        ("ftp://evil.com/file", "evil.com"),
        ("[click](javascript:alert(1))", "javascript:alert(1))"),
        ("data:text/html,hi", "data:text"),
    ],
)
def test_links_elsewhere_are_refused(text: str, host: str) -> None:
    with pytest.raises(InvalidModelOutput, match="not an allowed domain") as refused:
        check_answer(answer(text), allowed_link_domains=SHOP)
    assert repr(host) in str(refused.value)


def test_a_link_in_an_actions_detail_is_refused_too() -> None:
    model = answer(actions=[action("track_order", "Track it at https://evil.com/t")])
    with pytest.raises(InvalidModelOutput):
        check_answer(model, allowed_link_domains=SHOP)


def test_a_refused_actions_detail_is_checked_as_well() -> None:
    model = answer(actions=[action("phish", "https://evil.com/t")])
    with pytest.raises(InvalidModelOutput):
        check_answer(model, allowed_link_domains=SHOP)


def test_without_allowed_domains_every_link_is_refused() -> None:
    with pytest.raises(InvalidModelOutput):
        check_answer(answer("https://shop.example/"), allowed_link_domains=frozenset())


def test_allowed_domains_are_read_loosely() -> None:
    allowed = frozenset({" Shop.Example. ", ""})
    checked = check_answer(answer("https://shop.example/x"), allowed_link_domains=allowed)
    assert checked.answer == "https://shop.example/x"
    with pytest.raises(InvalidModelOutput):
        check_answer(answer("https://evil.com/"), allowed_link_domains=allowed)


def test_personal_data_is_redacted_in_the_text_and_the_details() -> None:
    model = answer(
        "We wrote to jane.doe@example.com and will call +44 20 7946 0958.",
        [
            action("refund_request", "Refund to card 4111 1111 1111 1111"),
            action("update_address", "Confirm with jane.doe@example.com"),
            action("delete_account", "jane.doe@example.com"),
        ],
    )
    checked = check_answer(model, allowed_link_domains=SHOP)
    assert checked.answer == "We wrote to [EMAIL] and will call [PHONE]."
    assert [a.detail for a in checked.actions] == [
        "Refund to card [CARD]",
        "Confirm with [EMAIL]",
    ]


def test_a_new_answer_is_returned_and_the_rest_is_kept() -> None:
    model = answer("Mail me at jane@example.com", [action("Track_Order"), action("nope")])
    checked = check_answer(model, allowed_link_domains=SHOP)
    assert checked is not model
    assert model.answer == "Mail me at jane@example.com"
    assert [a.type for a in model.actions] == ["Track_Order", "nope"]
    assert isinstance(checked, ModelAnswer)
    assert (checked.intent, checked.confidence) == ("shipping", 0.8)


def test_redaction_may_lengthen_a_full_length_answer() -> None:
    text = "x" * 233 + " a@b.io"  # 240 characters, the most the model may write
    checked = check_answer(answer(text), allowed_link_domains=SHOP)
    assert checked.answer == "x" * 233 + " [EMAIL]"


def test_a_long_scheme_is_still_a_link() -> None:
    with pytest.raises(InvalidModelOutput):
        check_answer(answer("a" * 40 + "://evil.com"), allowed_link_domains=SHOP)


@pytest.mark.timeout(10)
@pytest.mark.parametrize("unit", ["a.", "a-", "a:", "www.", "x@", "ab.cd/", "https://a"])
def test_long_details_are_checked_in_linear_time(unit: str) -> None:
    # An action's detail has no length limit; the link search must not be quadratic.
    model = answer(actions=[action("track_order", unit * 50_000)])
    with contextlib.suppress(InvalidModelOutput):
        check_answer(model, allowed_link_domains=SHOP)
