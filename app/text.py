"""Cleaning of customers' text before anything reads it: HTML, controls, whitespace, mail.

Plain functions, text in and text out. ``clean_text`` turns whatever a channel delivers
(plain text, HTML mail, text pasted with invisible characters) into plain NFC text with
single spaces and at most one blank line in a row. ``normalise_email`` keeps only what
the customer wrote in a mail: the subject without reply prefixes, and the body without
quoted earlier mail and signature.
"""

from __future__ import annotations

import html
import re
import unicodedata

# The line breaks Python's str.splitlines knows, less the ASCII separators \x1c-\x1e,
# which are control characters here and simply dropped.
_LINE_BREAK = re.compile(r"\r\n|[\r\n\x0b\x0c\x85\u2028\u2029]")
# Cc and Cf are what the text may not carry; Cs (lone surrogates) cannot be encoded as
# UTF-8, so a message holding one could not be produced to the next topic.
_CONTROL_CATEGORIES = frozenset({"Cc", "Cf", "Cs"})
_KEPT_CONTROLS = frozenset("\n\t")
_WITHOUT_KEPT_CONTROLS = str.maketrans("", "", "".join(_KEPT_CONTROLS))


def _element(name: str) -> tuple[re.Pattern[str], re.Pattern[str]]:
    whole = rf"<{name}(?=[\s/>])[^<>]*>.*?</{name}\s*>"
    return re.compile(whole, re.IGNORECASE | re.DOTALL), re.compile(rf"</{name}\s*>", re.I)


# What is dropped with its content, as (the whole of it, its end): elements holding code
# or metadata, never something the customer wrote, and comments.
_HIDDEN = (
    _element("script"),
    _element("style"),
    _element("head"),
    (re.compile(r"<!--.*?-->", re.DOTALL), re.compile(r"-->")),
)
# Only what looks like a tag: "<" then a name ended by a space, "/" or ">", or "<!" and
# "<?" declarations. "5 < 6", "<3", "<jane@example.com>" and "<https://...>" are text.
_TAG = re.compile(
    r"<(?:(/?)([A-Za-z][A-Za-z0-9-]*(?::[A-Za-z][A-Za-z0-9-]*)?)(?=[\s/>])|[!?])[^<>]*>"
)
# Elements that start a new line, and those of them that start a new paragraph.
_BLOCK_ELEMENTS = frozenset(
    {
        "address", "article", "aside", "blockquote", "dd", "div", "dl", "dt", "fieldset",
        "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6",
        "header", "hr", "li", "main", "nav", "ol", "p", "pre", "section", "table", "tbody",
        "tfoot", "thead", "tr", "ul",
    }
)  # fmt: skip
_PARAGRAPH_ELEMENTS = frozenset(
    {"p", "blockquote", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "pre", "table"}
)
_CELL_ELEMENTS = frozenset({"td", "th"})
# Stand-ins for the breaks tags make, resolved once all tags are gone. They are control
# characters, which are dropped before tags are replaced: the text holds none of its own.
_LINE, _PARAGRAPH, _BR = "\x01", "\x02", "\x03"
# Tags around blocks are laid out on their own lines in HTML sources, and mail clients
# nest blocks ("<div><div>"): a run of them with the space around it is one break.
# (Starting only where a stretch of space starts keeps long stretches cheap.)
_BLOCK_RUN = re.compile(r"(?<!\s)\s*[\x01\x02](?:\s*[\x01\x02])*\s*")
# "<br>" is often followed by a line break in the source, which is the same break.
_BR_BREAK = re.compile(r"\x03[^\S\n]*\n?")
_HORIZONTAL_SPACE = re.compile(r"[^\S\n]+")
_SPACE_AROUND_BREAK = re.compile(r" *\n *")
_BLANK_LINES = re.compile(r"\n{3,}")

_REPLY_PREFIX = re.compile(r"^(?:(?:re|fwd?|aw|wg)(?:\[\d+\])?\s*:\s*)+", re.IGNORECASE)
_ORIGINAL_MESSAGE = re.compile(
    r"-{2,}\s*(?:original message|ursprüngliche nachricht)\s*-{2,}", re.IGNORECASE
)


def clean_text(text: str) -> str:
    """``text`` as plain NFC text: no HTML, no control characters, tidy whitespace.

    Entities are unescaped and tags stripped (block elements become line breaks,
    ``<script>``, ``<style>`` and ``<head>`` go with their content); control and
    format characters other than ``\\n`` and ``\\t`` are dropped; runs of spaces and
    tabs become one space; lines are stripped and at most one blank line is kept.

    Idempotent: unescaping can reveal new markup (``&lt;b&gt;``, ``&amp;amp;``), so the
    cleaning is repeated until nothing changes.
    """
    cleaned = _clean_once(text)
    # A further pass changes the text only by unescaping or removing something, which
    # shortens it; the length check makes the loop's end certain all the same.
    while (again := _clean_once(cleaned)) != cleaned and len(again) < len(cleaned):
        cleaned = again
    return cleaned


def _clean_once(text: str) -> str:
    text = _drop_controls(_LINE_BREAK.sub("\n", text))
    for whole, end in _HIDDEN:
        text = _drop_closed(text, whole, end)
    text = _TAG.sub(_replace_tag, text)
    text = _BLOCK_RUN.sub(_block_break, text)
    text = _BR_BREAK.sub("\n", text)
    text = _unescape(text)
    text = _drop_controls(_LINE_BREAK.sub("\n", text))
    text = unicodedata.normalize("NFC", text)
    text = _HORIZONTAL_SPACE.sub(" ", text)
    text = _SPACE_AROUND_BREAK.sub("\n", text)
    return _BLANK_LINES.sub("\n\n", text).strip()


def _drop_controls(text: str) -> str:
    # A printable character is never in a control category (Cc, Cf, Cs), so most texts
    # pass with one C-speed check; the rest are looked at character by character.
    if text.isprintable() or text.translate(_WITHOUT_KEPT_CONTROLS).isprintable():
        return text
    return "".join(
        ch
        for ch in text
        if ch in _KEPT_CONTROLS or unicodedata.category(ch) not in _CONTROL_CATEGORIES
    )


def _drop_closed(text: str, whole: re.Pattern[str], end: re.Pattern[str]) -> str:
    """``text`` without the matches of ``whole``, each of which ends with ``end``.

    Nothing after the last ``end`` can be closed, so the search stops there: an
    unclosed opening then costs one scan, not one scan per opening.
    """
    last_end = max((match.end() for match in end.finditer(text)), default=None)
    if last_end is None:
        return text
    return whole.sub("", text[:last_end]) + text[last_end:]


def _replace_tag(match: re.Match[str]) -> str:
    closing, name = match.group(1), (match.group(2) or "").lower()
    if name == "br":
        return _BR
    if name in _PARAGRAPH_ELEMENTS:
        return _PARAGRAPH
    # A list item or a row starts a line; its end tag is followed by the next one.
    if name in _BLOCK_ELEMENTS and not (closing and name in ("li", "dt", "dd", "tr")):
        return _LINE
    if name in _CELL_ELEMENTS:
        return " "
    return ""


def _block_break(match: re.Match[str]) -> str:
    return "\n\n" if _PARAGRAPH in match.group() else "\n"


def _unescape(text: str) -> str:
    # "&amp;lt;" is "&lt;" once unescaped; each round shortens the text, so it ends.
    while (unescaped := html.unescape(text)) != text:
        text = unescaped
    return text


def normalise_email(subject: str, body: str) -> str:
    """What the customer wrote in a mail: the subject, a blank line, then the body.

    Reply prefixes (``Re:``, ``Fwd:``, ``AW:``, ...) are taken off the subject. From the
    body go the quoted lines (``>``), and everything from the first of these on: an
    attribution (``On ... wrote:``, on one line or wrapped over two), a signature
    delimiter (``-- `` or ``--``) or an ``-----Original Message-----`` separator.
    The lines are looked at both as written and once cleaned, so a quote or a
    signature in an HTML body is found too. Subject and body come out cleaned by
    ``clean_text``; the result may be empty.
    """
    text = clean_text(_drop_quotes_and_signature(body))
    text = clean_text(_drop_quotes_and_signature(text))
    topic = _REPLY_PREFIX.sub("", " ".join(clean_text(subject).split())).strip()
    if not topic:
        return text
    return f"{topic}\n\n{text}" if text else topic


def _drop_quotes_and_signature(body: str) -> str:
    lines = _LINE_BREAK.split(body)
    kept = []
    for index, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith(">"):
            continue
        following = lines[index + 1].strip() if index + 1 < len(lines) else ""
        if _starts_trailer(stripped, following):
            break
        kept.append(line)
    return "\n".join(kept)


def _starts_trailer(line: str, following: str) -> bool:
    """Whether ``line`` begins what follows the customer's own text in a mail."""
    if line == "--" or _ORIGINAL_MESSAGE.fullmatch(line):
        return True
    # Mail clients wrap a long attribution ("On <date>, <name> <<address>> wrote:").
    return line.startswith("On ") and (line.endswith("wrote:") or following.endswith("wrote:"))
