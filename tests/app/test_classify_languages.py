# Customers write full-width letters and punctuation: these texts keep them on purpose.
# ruff: noqa: RUF001
"""The text rules in the seven languages customers write in (no Kafka needed).

``tests/data/multilingual.jsonl`` holds what customers write, one message a line, with
the intent and damage report a reader would take from it: written in each language as
customers write it (informal, misspelt, full-width, polite and rude), not translated
from the load generator's English. ``"negative": true`` marks a message that mentions a
person or damage without asking for one or reporting it.
"""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.classify import classify_intent, reports_damage
from app.language import LANGUAGES, detect_language
from app.prompts import INTENTS

DATA = Path(__file__).parent.parent / "data" / "multilingual.jsonl"
ROWS: list[dict[str, Any]] = [json.loads(line) for line in DATA.read_text().splitlines()]
#: The intents every language must have examples of.
COVERED = tuple(intent for intent in INTENTS if intent != "other")


def _id(row: dict[str, Any]) -> str:
    return f"{row['lang']}-{row['intent']}-{row['text'][:24]}"


def test_the_data_covers_every_language_and_intent() -> None:
    counts = Counter((row["lang"], row["intent"]) for row in ROWS if not row.get("negative"))
    short = {
        (language, intent): counts[language, intent]
        for language in LANGUAGES
        for intent in COVERED
        if counts[language, intent] < 6
    }
    assert not short, short
    negatives = Counter(row["lang"] for row in ROWS if row.get("negative"))
    assert all(negatives[language] >= 5 for language in LANGUAGES), negatives
    damaged = Counter(row["lang"] for row in ROWS if row["damaged"])
    assert all(damaged[language] >= 3 for language in LANGUAGES), damaged


@pytest.mark.parametrize("row", ROWS, ids=_id)
def test_intent(row: dict[str, Any]) -> None:
    assert classify_intent(row["text"]) == row["intent"]


@pytest.mark.parametrize("row", ROWS, ids=_id)
def test_damage_report(row: dict[str, Any]) -> None:
    assert reports_damage(row["text"]) is row["damaged"]


@pytest.mark.parametrize("row", ROWS, ids=_id)
def test_language_is_detected(row: dict[str, Any]) -> None:
    assert detect_language(row["text"]) == row["lang"]


def accuracy(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per language: the share of ``rows`` whose intent, damage report, request for a
    person (escalated or not) and language come out as expected."""
    hits: dict[str, Counter[str]] = defaultdict(Counter)
    for row in rows:
        intent = classify_intent(row["text"])
        tally = hits[row["lang"]]
        tally["n"] += 1
        tally["intent"] += intent == row["intent"]
        tally["damage"] += reports_damage(row["text"]) is row["damaged"]
        tally["person"] += (intent == "human_request") is (row["intent"] == "human_request")
        tally["language"] += detect_language(row["text"]) == row["lang"]
    return {
        language: {k: tally[k] / tally["n"] for k in ("intent", "damage", "person", "language")}
        | {"n": tally["n"]}
        for language, tally in hits.items()
    }


def test_accuracy_per_language(capsys: pytest.CaptureFixture[str]) -> None:
    table = accuracy(ROWS)
    with capsys.disabled():
        print("\n| language | messages | intent | damage | person | language detected |")
        for language in LANGUAGES:
            row = table[language]
            print(
                f"| {language} | {row['n']:.0f} | {row['intent']:.3f} | {row['damage']:.3f} "
                f"| {row['person']:.3f} | {row['language']:.3f} |"
            )
    assert set(table) == set(LANGUAGES)
    assert all(row["person"] == 1.0 for row in table.values()), table


# --- Negation where the English rules have it --------------------------------------------


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("I don't want a person, where is my order?", "order_status"),
        ("no quiero hablar con un humano, ¿dónde está mi pedido?", "order_status"),
        ("não quero falar com atendente, cadê meu pedido", "order_status"),
        ("je ne veux pas parler à un conseiller, où est mon colis ?", "order_status"),
        ("ich will nicht mit einem Mitarbeiter sprechen, wo ist mein Paket?", "order_status"),
        ("我不要人工，我的快递到哪了", "order_status"),
        ("オペレーターと話したくないです。荷物はいつ届きますか", "order_status"),
        # Not wanting a bot is asking for a person, in every language.
        ("no quiero un bot", "human_request"),
        ("não quero falar com robô", "human_request"),
        ("pas de robot svp", "human_request"),
        ("keinen Chatbot bitte", "human_request"),
        ("不要机器人", "human_request"),
        ("ＡＩじゃなくて人と話したい", "human_request"),
        # A negated wish ends at its clause: the request after it counts.
        ("no quiero un reembolso, quiero cambiarlo por otro", "return"),
        ("je ne veux pas de remboursement, je veux l'échanger", "return"),
        ("我不要退款，我想换一个", "return"),
    ],
)
def test_negated_wishes(text: str, intent: str) -> None:
    assert classify_intent(text) == intent


@pytest.mark.parametrize(
    ("text", "damaged"),
    [
        ("no está dañado", False),
        ("não veio quebrado", False),
        ("nicht beschädigt", False),
        ("rien n'est abîmé", False),
        ("没有坏", False),
        ("包装没有被压坏", False),
        ("割れていません", False),
        ("壊れやすいですか", False),
        ("mi perro rompió la lámpara", False),
        ("el código de descuento no funciona", False),
        ("クーポンが使えない", False),
        ("链接打不开", False),
        ("la lámpara llegó rota", True),
        ("o vaso chegou trincado", True),
        ("le bol est fendu", True),
        ("der Akku ist defekt", True),
        ("屏幕裂了", True),
        ("電源が入らない", True),
        ("ＴＨＥ ＬＡＭＰ ＩＳ ＢＲＯＫＥＮ", True),
    ],
)
def test_damage_in_each_language(text: str, damaged: bool) -> None:
    assert reports_damage(text) is damaged


# --- Mixed languages ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "intent", "language"),
    [
        ("Hi, 我要退货 please", "return", "zh"),
        ("Hola! I want to talk to a real person", "human_request", "en"),
        ("hello, quiero hablar con una persona", "human_request", "es"),
        ("Bonjour, wo ist mein Paket? Danke", "order_status", "de"),
        ("ORD-482913 返品したいです、thanks", "return", "ja"),
        ("obrigado! where is my order?", "order_status", "en"),
        ("转人工 please!!", "human_request", "zh"),
        ("Sorry for my English, je voudrais un remboursement", "refund", "fr"),
    ],
)
def test_mixed_language_messages(text: str, intent: str, language: str) -> None:
    assert classify_intent(text) == intent
    assert detect_language(text) == language


# --- Any surroundings --------------------------------------------------------------------

# One clear phrase per language and intent; what surrounds it must not change its intent.
CLEAR: tuple[tuple[str, str], ...] = (
    ("我要退货", "return"),
    ("转人工", "human_request"),
    ("我要退款", "refund"),
    ("我的快递到哪了", "order_status"),
    ("返品したいです", "return"),
    ("オペレーターと話したい", "human_request"),
    ("返金してください", "refund"),
    ("quiero devolver la chaqueta", "return"),
    ("quiero hablar con una persona", "human_request"),
    ("quiero un reembolso", "refund"),
    ("¿dónde está mi pedido?", "order_status"),
    ("quero falar com um atendente", "human_request"),
    ("cadê meu pedido", "order_status"),
    ("je voudrais retourner la robe", "return"),
    ("passez-moi un conseiller", "human_request"),
    ("ich möchte die Schuhe zurückschicken", "return"),
    ("ich möchte mit einem Menschen sprechen", "human_request"),
    ("I want to speak to a human", "human_request"),
)
# Surroundings that ask for nothing: greetings, thanks, ids, emoji, noise, in any language.
_FILLER = st.lists(
    st.sampled_from(
        [
            "hola",
            "gracias",
            "buenos días",
            "你好",
            "谢谢",
            "亲",
            "こんにちは",
            "よろしく",
            "danke",
            "hallo",
            "merci",
            "bonjour",
            "olá",
            "obrigado",
            "hi",
            "thanks",
            "ORD-482913",
            "#1000234",
            "HO-90001",
            "😀",
            "🙏",
            "!!!",
            "???",
            "...",
            "ｈｅｌｌｏ",
            "１２３",
            "lol",
            "jaja",
            "kkkk",
            "www",
            "哈哈",
        ]
    )
    | st.text(alphabet=st.characters(categories=["Nd", "Zs", "So", "Pe", "Ps"]), max_size=12),
    max_size=8,
).map(" ".join)
_BREAK = st.sampled_from([". ", "。", "\n", "! ", "？", " — "])


@settings(max_examples=400, deadline=None)
@given(
    clear=st.sampled_from(CLEAR),
    before=_FILLER,
    after=_FILLER,
    breaks=st.tuples(_BREAK, _BREAK),
    upper=st.booleans(),
)
def test_surroundings_do_not_change_a_clear_phrase(
    clear: tuple[str, str], before: str, after: str, breaks: tuple[str, str], upper: bool
) -> None:
    phrase, intent = clear
    text = f"{before}{breaks[0]}{phrase.upper() if upper else phrase}{breaks[1]}{after}"
    assert classify_intent(text) == intent


_FULL_WIDTH = str.maketrans({code: code + 0xFEE0 for code in range(0x21, 0x7F)})


@settings(max_examples=200, deadline=None)
@given(clear=st.sampled_from(CLEAR), widen=st.booleans())
def test_full_width_letters_read_as_plain_ones(clear: tuple[str, str], widen: bool) -> None:
    phrase, intent = clear
    assert classify_intent(phrase.translate(_FULL_WIDTH) if widen else phrase) == intent


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_any_text_gets_a_language(text: str) -> None:
    assert detect_language(text) in LANGUAGES
    assert classify_intent(text) in INTENTS
    assert isinstance(reports_damage(text), bool)


# --- Linear time -------------------------------------------------------------------------


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "unit",
    [
        "不想", "不要人", "人工智", "退", "必要", "話したくない", "壊れ", "到哪", "快递在", "发到",
        "no quiero ", "no ", "devolver ", "nao ", "je ne veux pas ", "brauche nicht ", "kaputt ",
        "mi hermano ", "hablar con ", "a ", "é", "、", "。", "bruder hat ", "quand ", "钱", "有",
        "支持", "donde esta mi ", "弟弟", "人", "担当の方", "pas de ",
    ],
)  # fmt: skip
def test_hostile_repetition_is_read_in_linear_time(unit: str) -> None:
    """Four times the text takes about four times as long, never sixteen."""

    def seconds(chars: int) -> float:
        text = unit * (chars // len(unit))
        started = time.perf_counter()
        classify_intent(text)
        reports_damage(text)
        detect_language(text)
        return time.perf_counter() - started

    # Up to twice the longest text ingest accepts (FLOWDESK_MAX_TEXT_CHARS, 8000).
    small = min(seconds(4_000) for _ in range(3))
    large = min(seconds(16_000) for _ in range(3))
    assert large < max(small, 0.01) * 10, (small, large)
