"""Cleaning of customers' text and of mail bodies (no Kafka needed)."""

from __future__ import annotations

import random
import sys
import unicodedata
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.loadgen import make_customer, make_email, make_query
from app.text import _CONTROL_CATEGORIES, _drop_controls, clean_text, normalise_email


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        # HTML tags and entities
        ("Hello<br>world", "Hello\nworld"),
        ("line one<br/>\nline two<br />", "line one\nline two"),
        ("<p>One</p><p>Two</p>", "One\n\nTwo"),
        ("<div>first</div><div>second</div>", "first\nsecond"),
        ("<div>first</div><div><br></div><div>after a blank</div>", "first\n\nafter a blank"),
        ("<ul>\n  <li>mug</li>\n  <li>lamp</li>\n</ul>", "mug\nlamp"),
        ("<table><tr><td>mug</td><td>12.50</td></tr></table>", "mug 12.50"),
        ("a <b>bold</b> and <I>loud</I> <span class='x'>word</span>", "a bold and loud word"),
        ("<o:p>Outlook</o:p> text", "Outlook text"),
        ("before<script type='text/javascript'>alert('x < y')</script>after", "beforeafter"),
        ("<style>p { color: red }</style>Hi", "Hi"),
        ("<html><head><title>t</title></head><body>Hi</body></html>", "Hi"),
        ("<!DOCTYPE html><!-- a <b>note</b> -->Hi", "Hi"),
        ("Fish &amp; chips, caf&eacute; &#233; &#x263A;", "Fish & chips, café é ☺"),
        ("a&nbsp;&nbsp;b", "a b"),
        ("&amp;lt;b&amp;gt;bold", "bold"),
        ("&lt;script&gt;x()&lt;/script&gt;Hi", "Hi"),
        # text that is not HTML survives
        ("5 < 6 and 7 > 3", "5 < 6 and 7 > 3"),
        ("I <3 this shop", "I <3 this shop"),
        ("a<b", "a<b"),
        ("Reply to Jane <jane@example.com>", "Reply to Jane <jane@example.com>"),
        ("see <https://shop.example/orders>", "see <https://shop.example/orders>"),
        ("AT&T and R&D", "AT&T and R&D"),
        # control and format characters
        ("a\x00b\x07c\x1bd\x7fe", "abcde"),
        ("in\u200bvis\ufeffible\u00ad", "invisible"),
        ("right\u202eleft", "rightleft"),
        # line breaks and whitespace
        ("a\r\nb\rc", "a\nb\nc"),
        ("a\u2028b\x0cc", "a\nb\nc"),
        ("a \t  b", "a b"),
        ("  padded line  \n\t next\t", "padded line\nnext"),
        ("a\n\n\n\n\nb", "a\n\nb"),
        ("a\n \n \n b", "a\n\nb"),
        ("\n\n  \n", ""),
        ("", ""),
        # Unicode normalisation
        ("Zoe\u0308", "Zoë"),
        ("\u212b", "\u00c5"),
    ],
)
def test_clean_text(raw: str, clean: str) -> None:
    assert clean_text(raw) == clean
    assert clean_text(clean) == clean


def test_clean_text_keeps_order_ids_and_numbers() -> None:
    text = "Order ORD-123456 of 25.11.2026, 10:30, $1,299.99 (2 items)"
    assert clean_text(text) == text


_HTML_BITS = st.sampled_from(
    [
        "<br>", "<br/>", "<p>", "</p>", "<div class='x'>", "</div>", "<li>", "<b>", "</b>",
        "<script>", "</script>", "<style>", "<!--", "-->", "<!DOCTYPE html>", "<", ">",
        "&amp;", "&lt;", "&gt;", "&nbsp;", "&#0;", "&#13;", "&#x200b;", "&amp;amp;", "&",
        "\r\n", "\r", "\n", "\t", "  ", "\x00", "\u200b", "\u2028", "e\u0301", "\u0301",
        "> ", "-- ",
    ]
)  # fmt: skip
_MESSY_TEXT = st.lists(st.one_of(st.text(max_size=8), _HTML_BITS), max_size=30).map("".join)


@settings(max_examples=300, deadline=None)
@given(_MESSY_TEXT)
def test_clean_text_is_idempotent_and_leaves_no_controls(raw: str) -> None:
    clean = clean_text(raw)
    assert clean_text(clean) == clean
    assert all(ch == "\n" or unicodedata.category(ch) not in ("Cc", "Cf") for ch in clean)
    assert "\t" not in clean and "\r" not in clean and "\n\n\n" not in clean
    assert unicodedata.is_normalized("NFC", clean)
    assert clean == clean.strip()
    assert all(line == line.strip() for line in clean.split("\n"))


# --- normalise_email -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "topic"),
    [
        ("Where is my order?", "Where is my order?"),
        ("Re: Where is my order?", "Where is my order?"),
        ("RE: Re: re: Fwd: FW: Fw: AW: WG: Refund", "Refund"),
        ("Re[2]: Refund", "Refund"),
        ("Re :  Refund", "Refund"),
        ("AW: Rücksendung", "Rücksendung"),
        ("Reply needed", "Reply needed"),
        ("Return request (ORD-123456)", "Return request (ORD-123456)"),
        ("  Folded\r\n subject  ", "Folded subject"),
    ],
)
def test_subject_loses_its_reply_prefixes(subject: str, topic: str) -> None:
    assert normalise_email(subject, "Body.") == f"{topic}\n\nBody."


@pytest.mark.parametrize(
    ("subject", "body", "text"),
    [
        ("", "Just the body.", "Just the body."),
        ("Re: ", "Just the body.", "Just the body."),
        ("Only a subject", "", "Only a subject"),
        ("Only a subject", "> quoted\n-- \nJane", "Only a subject"),
        ("", "", ""),
        ("Fwd:", "   \n\n", ""),
    ],
)
def test_empty_subject_or_body(subject: str, body: str, text: str) -> None:
    assert normalise_email(subject, body) == text


@pytest.mark.parametrize(
    ("body", "text"),
    [
        # quoted lines, wherever they are
        ("My answer.\n> Your question?\n>> Older\n  > indented", "My answer."),
        ("Top.\n\n> quoted\n\nBottom.", "Top.\n\nBottom."),
        # an attribution line and everything after it
        (
            "Yes please.\n\nOn Tue, 3 Nov 2026 at 10:00, Support <support@shop.example> wrote:\n"
            "> Do you want a label?\nunquoted tail of the old mail",
            "Yes please.",
        ),
        (
            "Yes please.\nOn Tue, 3 Nov 2026 at 10:00, Support <\nsupport@shop.example> wrote:\n"
            "> Do you want a label?",
            "Yes please.",
        ),
        ("On Monday the parcel came.\nIt was late.", "On Monday the parcel came.\nIt was late."),
        # the signature
        ("Thanks,\nJane\n\n-- \nJane Smith\n+44 7700 900123", "Thanks,\nJane"),
        ("Thanks,\nJane\n--\nJane Smith", "Thanks,\nJane"),
        ("Thanks,\r\nJane\r\n-- \r\nJane Smith", "Thanks,\nJane"),
        ("It costs 10 -- too much.\n---\nstill mine", "It costs 10 -- too much.\n---\nstill mine"),
        # a forwarded or Outlook-style original message
        ("See below.\n-----Original Message-----\nFrom: Support", "See below."),
        ("Siehe unten.\n----- Ursprüngliche Nachricht -----\nVon: Support", "Siehe unten."),
        # the same in an HTML body
        ("<div>Hello</div><div>&gt; quoted</div><div>-- </div><div>Jane</div>", "Hello"),
        (
            "<p>Yes.</p><div>On Tue, 3 Nov 2026, Support wrote:</div><blockquote>x</blockquote>",
            "Yes.",
        ),
    ],
)
def test_body_loses_quotes_attribution_and_signature(body: str, text: str) -> None:
    assert normalise_email("", body) == text


def test_generated_emails_keep_only_the_customers_text() -> None:
    rng = random.Random(5)
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    customer = make_customer(rng, 1)
    seen_quote = seen_signature = False
    for _ in range(300):
        query = make_query(rng, pii_share=0.0)
        email = make_email(rng, customer, [], now, query=query)
        seen_quote |= "wrote:" in email["body"] or "\n> " in email["body"]
        seen_signature |= "\n-- \n" in email["body"]
        text = normalise_email(email["subject"], email["body"])
        assert clean_text(query.text) in text
        assert not text.startswith(("Re:", "RE:"))
        assert "wrote:" not in text and "Sent from my" not in text and "-- " not in text
        assert not any(line.startswith(">") for line in text.split("\n"))
    assert seen_quote and seen_signature


_LINE = st.text(st.characters(blacklist_characters="\n\r"), max_size=30)
_SIGNATURE_MARK = "ZZsignatureZZ"


@settings(max_examples=300, deadline=None)
@given(
    subject=st.text(st.sampled_from("ReFwdAW: abc?!()0123"), max_size=30),
    lines=st.lists(st.one_of(_LINE, _LINE.map(lambda line: "> " + line), _HTML_BITS), max_size=12),
    signature=st.sampled_from(["", "-- ", "--", " -- "]),
)
def test_normalise_email_drops_quoted_lines_and_the_signature(
    subject: str, lines: list[str], signature: str
) -> None:
    body = "\n".join(lines)
    if signature:
        body += f"\n{signature}\n{_SIGNATURE_MARK}\n> {_SIGNATURE_MARK}"
    text = normalise_email(subject, body)
    assert not any(line.startswith(">") for line in text.split("\n"))
    assert _SIGNATURE_MARK not in text


def test_every_control_and_format_character_is_dropped_and_nothing_else() -> None:
    """Over all of Unicode: printable text passes the control filter in one check, so no
    printable character may be in a control category, and each one that is goes."""
    for point in range(sys.maxunicode + 1):
        char = chr(point)
        dropped = unicodedata.category(char) in _CONTROL_CATEGORIES and char not in "\n\t"
        assert not (dropped and char.isprintable()), hex(point)
        assert _drop_controls(f"a{char}\tb") == ("a\tb" if dropped else f"a{char}\tb"), hex(point)
