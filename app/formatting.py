"""An answer's text shaped for the channel it goes out on.

Chat gets two short sentences, e-mail a letter, voice plain sentences a text-to-speech
engine reads well. The greeting and sign-off a model tends to write are dropped first:
the channel adds its own, or none.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Literal

from app.wording import wording

Channel = Literal["chat", "email", "voice"]
CHANNELS: tuple[Channel, ...] = ("chat", "email", "voice")

#: Longest chat answer, in characters, and most sentences in one.
CHAT_MAX_CHARS = 280
CHAT_MAX_SENTENCES = 2
ELLIPSIS = "\u2026"

#: The English sign-off; each language has its own (``app.wording``).
EMAIL_SIGN_OFF = wording("en").sign_off

# A greeting opening the text: "Hello,", "Hi there!", "Dear Jane Smith,", "Good morning:",
# and the same in the other languages of app.language ("Hola,", "Guten Tag,", "您好").
_GREETING = re.compile(
    r"^\s*(?i:hi|hello|hey|dear|greetings|good\s+(?:morning|afternoon|evening)|hola"
    r"|buen[oa]s(?:\s+(?:d[ií]as|tardes|noches))?|estimad[oa]|ol[áa]|oi|prezad[oa]|bom\s+dia"
    r"|boa\s+(?:tarde|noite)|hallo|guten\s+(?:tag|morgen|abend)|liebe[rs]?"
    r"|sehr\s+geehrte[rs]?|bonjour|bonsoir|salut|ch[eè]re?|您好|你好|こんにちは)"
    r"(?:\s+(?:(?i:there|all|everyone|again|valued|customer)|[A-Z][\w'.-]*)){0,3}"
    r"\s*(?:[,!.:;\uff0c\uff01\uff1a\u3001\u3002]|\s[-\u2013\u2014]|\n)\s*"
)
# A sign-off closing the text, after a sentence or on its own line, and the name under it.
_SIGN_OFF = re.compile(
    r"(?:^|(?<=[.!?\n\u3002\uff01\uff1f]))\s*(?i:(?:kind|best|warm|warmest|many)\s+regards"
    r"|regards|best\s+wishes|sincerely|yours\s+(?:truly|sincerely)|cheers"
    r"|saludos(?:\s+cordiales)?|un\s+saludo|atentamente|cordialement|bien\s+[àa]\s+vous"
    r"|(?:mit\s+freundlichen|viele|liebe|beste)\s+gr(?:ü|ue)(?:ß|ss)en?|atenciosamente"
    r"|abra[çc]os|此致|よろしくお願い(?:いた)?します)\b[^.!?]{0,60}[.!]?\s*$"
)
# Where a sentence ends: its punctuation, any closing quotes or brackets, then a space;
# Chinese and Japanese full stops need no space after them.
_SENTENCE_END = re.compile(
    r"[.!?\u2026]+[\"'\u201d\u2019)\]]*(?=\s|$)|[\u3002\uff01\uff1f]+[\u300d\u300f)\]]*"
)
_WIDE_STOP = frozenset("\u3002\uff01\uff1f\u300d\u300f")
# Words whose full stop does not end a sentence.
_ABBREVIATIONS = frozenset({"e.g", "i.e", "mr", "mrs", "ms", "dr", "st", "no", "vs", "approx"})
_TITLES = frozenset({"mr", "mrs", "ms", "miss", "mx", "dr", "prof", "sir", "madam"})

# Links in the forms app.guard checks: with a scheme, "www." hosts, "host.tld/path"; the
# punctuation of the sentence after a link stays.
_URL = re.compile(
    r"(?:\b[a-z][a-z0-9+.-]{0,31}:[/\\]{2}|\bhttps?:|(?<![\w.@-])www\."
    r"|(?<![\w.@-])(?:[\w-]+\.)+[^\W\d_]{2,}(?::\d+)?[/\\])"
    r"(?:\S*[^\s.,;:!?)\]}'\"])?",
    re.IGNORECASE,
)
_MARKDOWN_LINK = re.compile(r"\[([^\[\]\n]*)\]\(([^()\s]*)\)")
# A heading, list item or quote marker opening a line.
_LINE_MARKER = re.compile(
    r"^[ \t]*(?:(?P<quote>>+)|#{1,6}|[-*+\u2022\u2023\u25e6\u2043]|\d{1,2}[.)])[ \t]+"
)
_NUMBER_SIGN = re.compile(r"#(?=\d)")
# Markup and symbols a voice reads out or stumbles on; letters, digits, punctuation,
# currency signs and the few symbols read as words are kept.
_MARKUP = str.maketrans(dict.fromkeys("*_`#~|<>^=\\{}[]\u2022\u00b7", " "))
_SPOKEN_SYMBOLS = frozenset("+%&/\u00b0")
_SPACE = re.compile(r"\s+")
_SPACE_BEFORE_PUNCTUATION = re.compile(r"\s+(?=[.,!?;:])")
_EMPTY_BRACKETS = re.compile(r"\(\s*\)")


def format_answer(
    text: str, *, channel: str, customer_name: str | None, language: str = "en"
) -> str:
    """``text`` shaped for ``channel`` (``chat``, ``email`` or ``voice``).

    - chat: at most ``CHAT_MAX_SENTENCES`` sentences and ``CHAT_MAX_CHARS`` characters
      on one line. Whole sentences are kept while they fit; a first sentence too long
      on its own is cut at a word boundary and ends with "…".
    - email: "Dear {first name}," (or "Hello," without a usable name), a blank line,
      the text, a blank line and ``EMAIL_SIGN_OFF``.
    - voice: plain sentences on one line: no markdown, bullets, links, emoji or
      symbols a voice reads badly; order ids are kept.

    Any greeting or sign-off the text opens or closes with is dropped first. The
    e-mail greeting and sign-off, and the word a voice reads for "#", are in
    ``language`` (``app.wording``). Raises ``ValueError`` for any other channel.
    """
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}: expected one of {', '.join(CHANNELS)}")
    body = _without_greeting(text.strip())
    if channel == "chat":
        return _chat(body)
    if channel == "email":
        return _email(body, customer_name, language)
    return _voice(body, language)


def first_name(customer_name: str | None) -> str | None:
    """The first name in ``customer_name``, titles ("Dr", "Mrs.") skipped, if any."""
    for word in (customer_name or "").split():
        if word.rstrip(".").lower() not in _TITLES:
            return word
    return None


def _without_greeting(text: str) -> str:
    """``text`` without the greeting it opens with and the sign-off it closes with.

    A text that is nothing else is kept as it is.
    """
    body = _SIGN_OFF.sub("", text).strip()
    greeting = _GREETING.match(body)
    if greeting:
        body = body[greeting.end() :]
        head = body[:1].upper()
        if len(head) == 1:  # "ß".upper() is "SS"
            body = head + body[1:]
    return body.strip() or text


def _chat(text: str) -> str:
    text = _SPACE.sub(" ", text).strip()
    kept = ""
    for sentence in _sentences(text)[:CHAT_MAX_SENTENCES]:
        space = "" if not kept or kept[-1] in _WIDE_STOP else " "
        longer = f"{kept}{space}{sentence}"
        if len(longer) > CHAT_MAX_CHARS:
            break
        kept = longer
    return kept or _cut(text, CHAT_MAX_CHARS)


def _sentences(text: str) -> list[str]:
    """``text`` (on one line) split into sentences."""
    sentences = []
    start = 0
    for end in _SENTENCE_END.finditer(text):
        if end.group().startswith(".") and _abbreviation(text, start, end.start()):
            continue
        sentences.append(text[start : end.end()].strip())
        start = end.end()
    sentences.append(text[start:].strip())
    return [s for s in sentences if s]


def _abbreviation(text: str, start: int, stop: int) -> bool:
    """Whether the word ending at ``stop`` (a full stop's position) is an abbreviation."""
    word = text[max(start, text.rfind(" ", start, stop) + 1) : stop].lower()
    return word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha())


def _cut(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters at a word boundary, ending in "…"."""
    if len(text) <= limit:
        return text
    room = text[: limit - len(ELLIPSIS)]
    if not text[len(room)].isspace() and " " in room:
        room = room.rsplit(" ", 1)[0]
    room = room.rstrip(" ,;:-\u2013\u2014") or text[: limit - len(ELLIPSIS)]
    return room + ELLIPSIS


def _email(text: str, customer_name: str | None, language: str) -> str:
    name = first_name(customer_name)
    words = wording(language)
    greeting = words.greeting_named.format(name=name) if name else words.greeting
    lines = [line.rstrip() for line in text.splitlines()]
    body = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    return f"{greeting}\n\n{body}\n\n{words.sign_off}"


def _voice(text: str, language: str) -> str:
    text = _MARKDOWN_LINK.sub(lambda m: m[1] if m[1].strip() else " ", text)
    text = _URL.sub(" ", text)
    text = _NUMBER_SIGN.sub(wording(language).number_word, text)
    text = "\n".join(_plain_line(line) for line in text.splitlines()).translate(_MARKUP)
    text = "".join(char if _speakable(char) else " " for char in text)
    text = _EMPTY_BRACKETS.sub(" ", text)
    # Words left of a link the patterns above do not take for one ("http" alone, "x://"):
    # a voice must not spell them out.
    words = [w for w in text.split() if "http" not in w.lower() and "://" not in w]
    return _SPACE_BEFORE_PUNCTUATION.sub("", " ".join(words))


def _plain_line(line: str) -> str:
    """``line`` without its markdown marker; a heading or list item becomes a sentence."""
    marker = _LINE_MARKER.match(line)
    if marker is None:
        return line
    line = line[marker.end() :].translate(_MARKUP).strip()
    if not marker["quote"] and line[-1:].isalnum():
        line += "."
    return line


def _speakable(char: str) -> bool:
    if char in _SPOKEN_SYMBOLS or char.isspace():
        return True
    category = unicodedata.category(char)
    # Letters, digits, punctuation, currency and combining accents; not emoji and other
    # symbols (So, Sk, Sm), format and private-use characters, variation selectors.
    if category[0] in "LNP" or category == "Sc":
        return True
    return category == "Mn" and not 0xFE00 <= ord(char) <= 0xFE0F
