# Customers write full-width letters and punctuation: these texts keep them on purpose.
# ruff: noqa: RUF001
"""Which language a customer is answered in, and the pipeline's own sentences in it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.answers import ModelAnswer
from app.enrich import Context
from app.formatting import format_answer
from app.language import (
    LANGUAGES,
    answer_language,
    detect_language,
    locale_language,
    sentence_language,
)
from app.pipeline import finalize, response_outcome
from app.prompts import build_messages
from app.records import Query
from app.rules import decide_return
from app.wording import categories_phrase, format_date, wording

ASKED = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)


def query(text: str, *, intent: str = "other", damaged: bool = False) -> Query:
    return Query(
        query_id="q-1",
        customer_id="c-1",
        channel="chat",
        text=text,
        received_at=ASKED.isoformat(),
        arrived_ms=0,
        source_topic="t",
        source_partition=0,
        source_offset=0,
        intent=intent,
        damaged=damaged,
    )


def delivered(days_ago: float, *, category: str = "kitchen") -> dict[str, Any]:
    return {
        "order_id": "A7-55-1023",
        "customer_id": "c-1",
        "status": "delivered",
        "ordered_at": (ASKED - timedelta(days=days_ago + 3)).isoformat(),
        "delivered_at": (ASKED - timedelta(days=days_ago)).isoformat(),
        "items": [{"sku": "S", "name": "Thing", "category": category, "price": 9.5}],
    }


# --- Detection ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("", "en"),
        ("ok", "en"),
        ("ORD-123456 #1000234", "en"),
        ("😀😀", "en"),
        ("ＷＨＥＲＥ ＩＳ ＭＹ ＯＲＤＥＲ", "en"),
        ("返品希望", "zh"),  # kanji alone reads as Chinese: no kana to tell
        ("返品希望です", "ja"),
        ("ｶﾀｶﾅだけ", "ja"),  # half-width katakana
        ("我的訂單到哪了", "zh"),  # traditional characters
        ("¿y mi pedido?", "es"),
        ("cadê", "pt"),
        ("Straße", "de"),
        ("ça va", "fr"),
    ],
)
def test_detect_language(text: str, language: str) -> None:
    assert detect_language(text) == language


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_detection_always_names_a_supported_language(text: str) -> None:
    assert detect_language(text) in LANGUAGES


@pytest.mark.parametrize(
    ("locale", "language"),
    [
        ("es-MX", "es"),
        ("pt_BR", "pt"),
        ("ZH", "zh"),
        ("ja-JP", "ja"),
        (" de-AT ", "de"),
        ("fr-CA.UTF-8", "fr"),
        ("nl-NL", "nl"),
        ("", None),
        (None, None),
        ("xx-YY", None),
        ("klingon", None),
    ],
)
def test_locale_language(locale: str | None, language: str | None) -> None:
    assert locale_language(locale) == language


def test_the_crm_locale_wins_over_the_text_and_only_when_set() -> None:
    assert answer_language({"locale": "es-ES"}, "where is my order?") == "es"
    assert answer_language({"locale": "en-GB"}, "我要退货") == "en"
    assert answer_language({"locale": ""}, "我要退货") == "zh"
    assert answer_language({"name": "Ana"}, "quiero devolverlo") == "es"
    assert answer_language(None, "返品したい") == "ja"
    assert answer_language({"locale": "xx"}, "Wo ist mein Paket?") == "de"
    # A language with a locale but no sentences of its own: the model answers in it,
    # the pipeline's sentences are English.
    assert answer_language({"locale": "nl-BE"}, "hallo") == "nl"
    assert sentence_language("nl") == "en"


# --- The prompt --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("profile", "text", "name"),
    [
        (None, "我的快递到哪了？", "Chinese"),
        ({"locale": "pt-BR"}, "where is my order", "Portuguese"),
        ({"locale": ""}, "¿Dónde está mi pedido?", "Spanish"),
        ({"locale": "nl-NL"}, "Waar is mijn pakket?", "Dutch"),
        ({}, "荷物はいつ届きますか", "Japanese"),
    ],
)
def test_the_prompt_names_the_language_to_answer_in(
    profile: dict[str, Any] | None, text: str, name: str
) -> None:
    for context in (None, Context(profile=profile)):
        if context is None and profile:
            continue  # without a context there is no profile to read
        system = build_messages(query(text), context)[0]["content"]
        assert f"Write the answer in {name}." in system


# --- The pipeline's own sentences --------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_decision_is_worded_in_every_language(language: str) -> None:
    words = wording(language)
    decisions = [
        decide_return(delivered(5), damaged=False, asked_at=ASKED, language=language),
        decide_return(delivered(60), damaged=True, asked_at=ASKED, language=language),
        decide_return(delivered(40), damaged=False, asked_at=ASKED, language=language),
        decide_return(
            delivered(5, category="Gift card"), damaged=False, asked_at=ASKED, language=language
        ),
        decide_return(
            {**delivered(5), "delivered_at": None}, damaged=False, asked_at=ASKED, language=language
        ),
    ]
    assert [d.reason for d in decisions] == [
        "eligible",
        "eligible_damaged",
        "window_expired",
        "non_returnable_category",
        "not_delivered",
    ]
    for decision in decisions:
        assert "A7-55-1023" in decision.detail
        assert "{" not in decision.detail and "}" not in decision.detail
    assert format_date(ASKED + timedelta(days=25), language) in decisions[0].detail
    if language != "en":
        english = decide_return(delivered(5), damaged=False, asked_at=ASKED)
        assert decisions[0].detail != english.detail
        assert words.return_accepted != wording("en").return_accepted


@pytest.mark.parametrize(
    ("language", "detail"),
    [
        ("es", "plazo de devolución de 30 días, que termina el 14 de abril de 2026"),
        ("pt", "prazo de devolução de 30 dias, que termina em 14 de abril de 2026"),
        ("de", "Rückgabefrist von 30 Tagen noch bis zum 14. April 2026"),
        ("fr", "délai de retour de 30 jours, qui se termine le 14 avril 2026"),
        ("zh", "30天退货期内，该期限至2026年4月14日结束"),
        ("ja", "30日間の返品期間内（2026年4月14日まで）"),
        ("en", "30-day return window, which ends on 14 April 2026"),
    ],
)
def test_the_window_reads_naturally(language: str, detail: str) -> None:
    decision = decide_return(delivered(5), damaged=False, asked_at=ASKED, language=language)
    assert detail in decision.detail


def test_category_lists_and_first_of_the_month() -> None:
    both = ["digital", "grocery"]
    assert categories_phrase(both, "en") == "items in the digital and grocery categories"
    assert categories_phrase(both, "es") == (
        "artículos de las categorías productos digitales y alimentación"
    )
    assert categories_phrase(["grocery"], "zh") == "食品类商品"
    assert format_date(datetime(2026, 3, 1, tzinfo=UTC), "fr") == "1er mars 2026"
    assert format_date(datetime(2026, 3, 1, tzinfo=UTC), "de") == "1. März 2026"


def test_a_chinese_return_request_is_answered_by_the_rules_in_chinese() -> None:
    request = query("杯子碎了，我要退货", intent="return", damaged=True)
    answer = ModelAnswer(answer="Sure, I will help.", intent="return", actions=[], confidence=0.9)
    outcome = response_outcome(request, answer, model="m", model_version="1", model_latency_ms=5)
    done = finalize(outcome, request, Context(profile={"name": "Li"}, order=delivered(60)))
    assert done.route == "response"
    assert [a.type for a in done.actions] == ["return_label"]
    assert done.text.startswith("您对订单 A7-55-1023 的退货申请已受理")
    assert "损坏商品的90天退货期" in done.actions[0].detail


def test_a_spanish_locale_gets_spanish_wording_for_an_english_message() -> None:
    request = query("can I return it?", intent="return")
    answer = ModelAnswer(answer="ok", intent="return", actions=[], confidence=0.9)
    outcome = response_outcome(request, answer, model="m", model_version="1", model_latency_ms=5)
    context = Context(profile={"locale": "es-MX"}, order=delivered(40))
    done = finalize(outcome, request, context)
    assert [a.type for a in done.actions] == ["return_denied"]
    assert done.text.startswith("El pedido A7-55-1023 ya no se puede devolver")


@pytest.mark.parametrize(
    ("language", "greeting", "sign_off"),
    [
        ("en", "Dear Ana,", "Kind regards,\nCustomer Support"),
        ("es", "Hola, Ana:", "Saludos cordiales,\nAtención al cliente"),
        ("pt", "Olá, Ana,", "Atenciosamente,\nAtendimento ao cliente"),
        ("de", "Hallo Ana,", "Viele Grüße\nIhr Kundenservice"),
        ("fr", "Bonjour Ana,", "Cordialement,\nLe service client"),
        ("zh", "Ana，您好：", "此致\n客户服务部"),
        ("ja", "Ana様", "よろしくお願いいたします。\nカスタマーサポート"),
    ],
)
def test_email_greeting_and_sign_off(language: str, greeting: str, sign_off: str) -> None:
    text = format_answer("Body.", channel="email", customer_name="Ana Souza", language=language)
    assert text == f"{greeting}\n\nBody.\n\n{sign_off}"
    anonymous = format_answer("Body.", channel="email", customer_name=None, language=language)
    assert anonymous.startswith(wording(language).greeting + "\n\n")


def test_voice_reads_the_number_sign_in_the_language() -> None:
    assert format_answer("Pedido #123.", channel="voice", customer_name=None, language="es") == (
        "Pedido número 123."
    )
    assert "Nummer 123" in format_answer(
        "Bestellung #123.", channel="voice", customer_name=None, language="de"
    )


def test_chat_counts_chinese_and_japanese_sentences() -> None:
    text = "您的订单已发货。预计明天送达！还有其他问题吗？"
    assert format_answer(text, channel="chat", customer_name=None, language="zh") == (
        "您的订单已发货。预计明天送达！"
    )
    japanese = "ご注文は発送済みです。明日届く予定です。ほかにご質問はありますか？"
    assert format_answer(japanese, channel="chat", customer_name=None, language="ja") == (
        "ご注文は発送済みです。明日届く予定です。"
    )


@pytest.mark.parametrize(
    ("text", "language", "kept"),
    [
        (
            "Hola Ana, su pedido llegará mañana. Saludos cordiales",
            "es",
            "Su pedido llegará mañana.",
        ),
        ("Olá, o pedido chegou? Atenciosamente", "pt", "O pedido chegou?"),
        (
            "Guten Tag, Ihr Paket ist unterwegs. Mit freundlichen Grüßen",
            "de",
            "Ihr Paket ist unterwegs.",
        ),
        ("Bonjour, votre colis arrive demain. Cordialement", "fr", "Votre colis arrive demain."),
        ("您好，您的订单已发货。此致", "zh", "您的订单已发货。"),
        (
            "こんにちは。ご注文は発送済みです。よろしくお願いいたします。",
            "ja",
            "ご注文は発送済みです。",
        ),
    ],
)
def test_the_models_own_greeting_and_sign_off_are_dropped(
    text: str, language: str, kept: str
) -> None:
    assert format_answer(text, channel="chat", customer_name=None, language=language) == kept
