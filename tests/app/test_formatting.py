"""An answer's text shaped for chat, e-mail and voice."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.formatting import CHANNELS, CHAT_MAX_CHARS, EMAIL_SIGN_OFF, first_name, format_answer


def chat(text: str) -> str:
    return format_answer(text, channel="chat", customer_name="Jane Smith")


def voice(text: str) -> str:
    return format_answer(text, channel="voice", customer_name="Jane Smith")


# --- chat -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Your order ships today.", "Your order ships today."),
        ("  It ships today.\n\nIt arrives Friday.  ", "It ships today. It arrives Friday."),
        # Two sentences at most: whole sentences read finished, so no "…".
        (
            "It ships today. It arrives Friday! Anything else? Just ask.",
            "It ships today. It arrives Friday!",
        ),
        # No greeting, no sign-off.
        ("Hi Jane, your order ships today.", "Your order ships today."),
        ("Hello there! It ships today.", "It ships today."),
        ("Dear valued customer,\nit ships today.", "It ships today."),
        ("It ships today.\n\nBest regards,\nThe Shop Team", "It ships today."),
        ("It ships today. Kind regards.", "It ships today."),
        # A greeting that is the whole answer stays.
        ("Hello!", "Hello!"),
        # Not greetings.
        ("Hiking boots ship today.", "Hiking boots ship today."),
        ("Hello your order ships today.", "Hello your order ships today."),
        # Abbreviations and initials do not end a sentence.
        (
            "Use e.g. the kettle. Mr. J. Smith signed. It arrived.",
            "Use e.g. the kettle. Mr. J. Smith signed.",
        ),
        ("ORD-000001 shipped. It costs 12.50 EUR. Bye.", "ORD-000001 shipped. It costs 12.50 EUR."),
        ("", ""),
    ],
)
def test_chat_is_two_short_sentences(text: str, expected: str) -> None:
    assert chat(text) == expected


def test_chat_keeps_whole_sentences_that_fit() -> None:
    first = "Your order ORD-000001 left our warehouse this morning " + "and " * 30 + "ships."
    second = "It should arrive within three working days, depending on the carrier " * 3 + "."
    assert len(first) < CHAT_MAX_CHARS < len(first) + len(second)
    assert chat(f"{first} {second}") == first


def test_a_long_sentence_is_cut_at_a_word_boundary() -> None:
    text = "Your order " + "really " * 60 + "ships today."
    result = chat(text)
    assert len(result) <= CHAT_MAX_CHARS
    assert result.endswith("really…")
    assert text.startswith(result[:-1])


def test_a_cut_does_not_leave_punctuation_before_the_ellipsis() -> None:
    text = "word, " * 100
    assert chat(text).endswith("word…")


def test_a_single_long_word_is_cut_where_it_must() -> None:
    result = chat("x" * 1000)
    assert result == "x" * (CHAT_MAX_CHARS - 1) + "…"


# --- e-mail -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "greeting"),
    [
        ("Jane Smith", "Dear Jane,"),
        ("  Jane  ", "Dear Jane,"),
        ("Dr. Jane Smith", "Dear Jane,"),
        ("Mrs Jane Smith", "Dear Jane,"),
        ("Prof.", "Hello,"),
        ("", "Hello,"),
        ("   ", "Hello,"),
        (None, "Hello,"),
    ],
)
def test_email_is_a_letter(name: str | None, greeting: str) -> None:
    text = "Your order ships today.\nIt arrives Friday."
    assert format_answer(text, channel="email", customer_name=name) == (
        f"{greeting}\n\nYour order ships today.\nIt arrives Friday.\n\n"
        "Kind regards,\nCustomer Support"
    )


def test_email_replaces_the_models_greeting_and_sign_off() -> None:
    text = "Hello Jane,\n\nYour order ships today.   \n\n\n\nIt arrives Friday.\n\nCheers,\nBot"
    assert format_answer(text, channel="email", customer_name="Jane Smith") == (
        "Dear Jane,\n\nYour order ships today.\n\nIt arrives Friday.\n\n" + EMAIL_SIGN_OFF
    )


def test_email_is_not_shortened() -> None:
    text = "It ships today. " * 40
    assert text.strip() in format_answer(text, channel="email", customer_name=None)


# --- voice ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Your order **ORD-000001** ships _today_.", "Your order ORD-000001 ships today."),
        ("Use the `RETURN` code.", "Use the RETURN code."),
        ("# Returns\nYou have 30 days.", "Returns. You have 30 days."),
        (
            "Steps:\n- Print the label\n* Pack the item\n2. Drop it off",
            "Steps: Print the label. Pack the item. Drop it off.",
        ),
        ("> quoted\nanswer", "quoted answer"),
        ("Track it at https://shop.example/t/ORD-000001.", "Track it at."),
        ("See www.shop.example or shop.example/help for more.", "See or for more."),
        ("Read [our policy](https://shop.example/returns).", "Read our policy."),
        ("Item #5 ships 🚚 today 🎉!", "Item number 5 ships today!"),
        ("Thanks \u2764\ufe0f \U0001f44d\U0001f3fd", "Thanks"),
        ("A → B, 50% off, 20°C, 3 + 4 & €10.", "A B, 50% off, 20°C, 3 + 4 & €10."),
        ("Spaces\t\tand\n\nlines   collapse .", "Spaces and lines collapse."),
        ("Order ORD-000001 and ORD-000002 are late.", "Order ORD-000001 and ORD-000002 are late."),
        ("Hi Jane! Your order ships today. Best regards, Anna", "Your order ships today."),
        (
            "Plain http is gone, so is ftp://x and (https://shop.example).",
            "Plain is gone, so is and.",
        ),
    ],
)
def test_voice_is_plain_sentences(text: str, expected: str) -> None:
    assert voice(text) == expected


# --- channels ---------------------------------------------------------------------------


@pytest.mark.parametrize("channel", ["sms", "Chat", "", "e-mail"])
def test_an_unknown_channel_is_refused(channel: str) -> None:
    with pytest.raises(ValueError, match="unknown channel"):
        format_answer("Hello", channel=channel, customer_name=None)


def test_first_name() -> None:
    assert first_name("Jane Ann Smith") == "Jane"
    assert first_name("Mr. Smith") == "Smith"
    assert first_name(None) is None


pieces = st.one_of(
    st.text(),
    st.sampled_from(
        [
            "https://shop.example/x",
            "HTTP://EVIL.COM",
            "http",
            "www.evil.com",
            "evil.com/path",
            "[label](https://evil.com)",
            "h**ttp://x",
            "ht_tp",
            "**bold**",
            "# Heading",
            "\n- item",
            "Hello,",
            "Best regards, Bot",
            "e.g.",
            "😀",
            ". ",
            "\n",
        ]
    ),
)


@given(
    text=st.lists(pieces, max_size=12).map("".join),
    channel=st.sampled_from(CHANNELS),
    name=st.none() | st.text(max_size=30),
)
def test_format_answer_never_fails(text: str, channel: str, name: str | None) -> None:
    result = format_answer(text, channel=channel, customer_name=name)
    assert isinstance(result, str)
    if channel == "chat":
        assert len(result) <= CHAT_MAX_CHARS
    if channel == "voice":
        assert "http" not in result.lower()
    if channel == "email":
        assert result.endswith(EMAIL_SIGN_OFF)


@given(text=st.text(min_size=CHAT_MAX_CHARS, max_size=2000))
def test_chat_is_never_longer_than_its_limit(text: str) -> None:
    assert len(chat(text)) <= CHAT_MAX_CHARS


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    "unit", ["a.", "e.g. ", "[](", "[", "http:.", "a-", "www.", "\n", "Hi ", "Regards "]
)
@pytest.mark.parametrize("channel", CHANNELS)
def test_long_texts_are_formatted_in_linear_time(unit: str, channel: str) -> None:
    assert isinstance(format_answer(unit * 30_000, channel=channel, customer_name=None), str)
