"""Finding and redacting personal data in customers' text (SPEC section 4).

Card numbers, e-mail addresses and phone numbers are replaced by ``[CARD]``,
``[EMAIL]`` and ``[PHONE]`` before any text leaves for the model server. Order ids,
dates, times, prices, years and quantities are left as they are: the pipeline's rules
read them.

Each kind is looked for in a working copy of the text in which what was already found
(and every order id, and for phones every date) is masked by a bracketed stand-in of
the same length, so offsets stay those of the text and a digit is never claimed twice.
The stand-ins begin with ``[`` and end with ``]`` like the placeholders, so text next to
a masked span is read as it will be next to the placeholder: this is what keeps
``redact`` idempotent.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

PiiKind = Literal["card", "email", "phone"]

PLACEHOLDERS: dict[PiiKind, str] = {"card": "[CARD]", "email": "[EMAIL]", "phone": "[PHONE]"}


@dataclass(frozen=True)
class PiiMatch:
    """One piece of personal data: ``text[start:end] == value``."""

    kind: PiiKind
    start: int
    end: int
    value: str


# The same order ids app.classify reads: they must reach it intact, never taken for a
# phone number or a card.
_ORDER_ID = re.compile(r"(?<![A-Za-z0-9])ORD[-\u2010-\u2015]\d{6}(?!\d)", re.IGNORECASE)

# The top-level domain is letters, so a trailing full stop or a digit stays outside.
_ADDRESS = r"[\w.%+-]+@(?:[^\W_](?:[\w-]*[^\W_])?\.)+[^\W\d_]{2,}"
# The look-behind keeps the search linear on long words: an address starts where a run
# of the characters its local part may hold starts.
_EMAIL = re.compile(r"(?<![\w.%+-])" + _ADDRESS)
_EMAIL_RIGHT_AFTER = re.compile(_ADDRESS)

# Card numbers are typed in groups joined by single spaces or dashes. A whole run is
# matched; which part of it is a card is decided group by group with the Luhn check,
# so a card followed by an expiry year or a CVV in the same run is still found.
_DIGIT_RUN = re.compile(r"(?<!\w)\d+(?:[ -]\d+)*")
_DIGITS = re.compile(r"\d+")
_CARD_DIGITS = range(13, 20)
# Phone numbers have at most 15 digits (ITU E.164); a longer "+" run can only be a card.
_MAX_PHONE_DIGITS = 15

# Dates are the numbers most like phone numbers ("25.11.2026", "2026-11-25"): they are
# masked before phones are looked for. Day and month are checked for range, and a date
# must not be part of a longer dotted or dashed number ("06.12.34.56.78" is a phone).
_DATE = re.compile(
    r"(?<![\d./-])(?:"
    r"\d{4}([./-])(?:0?[1-9]|1[0-2])\1(?:0?[1-9]|[12]\d|3[01])"
    r"|(?:0?[1-9]|[12]\d|3[01])([./-])(?:0?[1-9]|[12]\d|3[01])\2(?:\d{4}|\d{2})"
    r")(?![./-]?\d)"
)

# A run of digit groups that could hold phone numbers: an optional "+", groups joined by
# one space, dot, dash or slash, and area codes in parentheses. Without a "+" it may not
# continue a word or an identifier ("INV-2026"), nor a number with decimals or a time
# ("12.50", "10:30"); a group glued to a word at its end is dropped afterwards. A "+"
# starts a run whatever precedes it: what precedes may be redacted, and the run must
# read the same next to a placeholder.
_PHONE_DIGITS = (
    r"\+?(?:\(\d{1,5}\)|\d+)"
    r"(?:(?:[ ./-]|(?<=\))|(?=\())(?:\(\d{1,5}\)|\d+))*"
)
_PHONE_RUN = re.compile(r"(?:(?=\+)|(?<!\w)(?<!\w[-/])(?<!\d[.,:]))" + _PHONE_DIGITS)
# A run one character after a phone number, read as it will be once that number is a
# placeholder: the look-behind then sees "]" where the number's last digit was.
_PHONE_RUN_AFTER_PHONE = re.compile(r"(?<!\w)" + _PHONE_DIGITS)
_PHONE_GROUP = re.compile(r"\(\d{1,5}\)|\d+")
# A phone number rarely has more than six groups ("+33 6 12 34 56 78"); looking at no
# more than eight at a time keeps long lists of numbers cheap.
_MAX_PHONE_GROUPS = 8
# North American forms, with or without the leading 1: (555) 123-4567, 555.123.4567,
# 1-800-555-0199, and the seven-digit local 555-1234.
_NANP = re.compile(r"(?:1[ .-]?)?(?:\(\d{3}\)|\d{3})[ .-]?\d{3}[ .-]\d{4}|\d{3}[ -]\d{4}")
_YEAR = re.compile(r"(?:19|20)\d\d")


def luhn_valid(digits: str) -> bool:
    """Whether ``digits`` passes the Luhn check; spaces and dashes in it are ignored.

    Anything but digits (or an empty string) fails.
    """
    number = digits.replace(" ", "").replace("-", "")
    if not number.isdecimal():
        return False
    total = 0
    for position, char in enumerate(reversed(number)):
        value = int(char)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def find_pii(text: str) -> list[PiiMatch]:
    """The personal data in ``text``, in order, none overlapping another.

    E-mail addresses are taken first, so that digits inside an address do not split
    it; then cards (13-19 digits, Luhn-valid, never starting with 0, not glued to a
    word); then phone numbers among the digits left, which includes Luhn-invalid runs.
    """
    work = _masked(text, (m.span() for m in _ORDER_ID.finditer(text)))
    emails = [_match("email", text, start, end) for start, end in _email_spans(work)]
    work = _masked(work, ((m.start, m.end) for m in emails))
    cards = [_match("card", text, start, end) for start, end in _card_spans(work)]
    work = _masked(work, ((m.start, m.end) for m in cards))
    work = _masked(work, (m.span() for m in _DATE.finditer(work)))
    phones = [_match("phone", text, start, end) for start, end in _phone_spans(work)]
    return sorted([*emails, *cards, *phones], key=lambda match: match.start)


def redact(text: str) -> str:
    """``text`` with every match of ``find_pii`` replaced by its placeholder.

    Idempotent, and the placeholders themselves are never changed.
    """
    pieces = []
    position = 0
    for match in find_pii(text):
        pieces += [text[position : match.start], PLACEHOLDERS[match.kind]]
        position = match.end
    pieces.append(text[position:])
    return "".join(pieces)


def contains_pii(text: str) -> bool:
    """Whether ``redact`` would change ``text``."""
    return bool(find_pii(text))


def _match(kind: PiiKind, text: str, start: int, end: int) -> PiiMatch:
    return PiiMatch(kind=kind, start=start, end=end, value=text[start:end])


def _masked(text: str, spans: Iterable[tuple[int, int]]) -> str:
    pieces = []
    position = 0
    for start, end in sorted(spans):
        pieces += [text[position:start], _stand_in(end - start)]
        position = end
    pieces.append(text[position:])
    return "".join(pieces)


def _stand_in(length: int) -> str:
    return "[" + "#" * (length - 2) + "]" if length >= 2 else "#" * length


def _email_spans(work: str) -> Iterator[tuple[int, int]]:
    match = _EMAIL.search(work)
    while match:
        yield match.span()
        # Once redacted, an address is a placeholder, and the next one may start right
        # after it; the look-behind would see the address's last letter instead.
        end = match.end()
        match = _EMAIL_RIGHT_AFTER.match(work, end) or _EMAIL.search(work, end)


def _card_spans(work: str) -> Iterator[tuple[int, int]]:
    for run in _DIGIT_RUN.finditer(work):
        groups = [m.span() for m in _DIGITS.finditer(work, run.start(), run.end())]
        if _glued(work[run.end() : run.end() + 1]):
            groups.pop()
        after_plus = work[run.start() - 1 : run.start()] == "+"
        first = 0
        while first < len(groups):
            last = _longest_card(work, groups, first, after_plus=after_plus and first == 0)
            if last is None:
                first += 1
                continue
            yield groups[first][0], groups[last][1]
            first = last + 1


def _longest_card(
    work: str, groups: list[tuple[int, int]], first: int, *, after_plus: bool
) -> int | None:
    """The last group of the longest card starting at group ``first``, if there is one."""
    if int(work[groups[first][0]]) == 0:  # no issuer number starts with 0
        return None
    digits = ""
    found = None
    for index in range(first, len(groups)):
        start, end = groups[index]
        digits += work[start:end]
        if len(digits) > _CARD_DIGITS[-1]:
            break
        if (
            len(digits) in _CARD_DIGITS
            # "+" and up to 15 digits is an international phone number.
            and not (after_plus and len(digits) <= _MAX_PHONE_DIGITS)
            and luhn_valid(digits)
        ):
            found = index
    return found


def _phone_spans(work: str) -> Iterator[tuple[int, int]]:
    run = _PHONE_RUN.search(work)
    while run:
        last_end = None
        for start, end in _phones_in_run(work, run):
            yield start, end
            last_end = end
        following = None
        # A "+" right after the number starts a run anyway, and is found by the search.
        if last_end == run.end() and work[last_end : last_end + 1] != "+":
            following = _PHONE_RUN_AFTER_PHONE.match(work, last_end + 1)
        run = following or _PHONE_RUN.search(work, run.end())


def _phones_in_run(work: str, run: re.Match[str]) -> Iterator[tuple[int, int]]:
    groups = [m.span() for m in _PHONE_GROUP.finditer(work, run.start(), run.end())]
    after = work[run.end() : run.end() + 1]
    beyond = work[run.end() + 1 : run.end() + 2]
    if (
        _glued(after)
        or (after in ("-", "/") and _glued(beyond))
        or (after in (".", ",", ":") and beyond.isdecimal())
    ):
        groups.pop()
    if _decimal(work, groups):
        return
    first = 0
    while first < len(groups):
        # The "+" belongs to the first group only.
        start = run.start() if first == 0 else groups[first][0]
        last = _longest_phone(work, start, groups, first)
        if last is None:
            first += 1
            continue
        yield start, groups[last][1]
        first = last + 1


def _decimal(work: str, groups: list[tuple[int, int]]) -> bool:
    """Whether the groups are one decimal number: "0.0381140041228971", "3.1415926535".

    Two groups joined by a dot, the first "0" or the second of ten digits or more: no
    phone number is written so, and timings and measurements in text often are.
    """
    if len(groups) != 2 or work[groups[0][1] : groups[1][0]] != ".":
        return False
    return work[groups[0][0] : groups[0][1]] == "0" or groups[1][1] - groups[1][0] >= 10


def _longest_phone(work: str, start: int, groups: list[tuple[int, int]], first: int) -> int | None:
    """The last group of the longest phone number from ``start``, if there is one."""
    last_candidate = min(len(groups), first + _MAX_PHONE_GROUPS) - 1
    for index in range(last_candidate, first - 1, -1):
        if _is_phone(work[start : groups[index][1]]):
            return index
    return None


def _is_phone(number: str) -> bool:
    """Whether ``number`` (digit groups and separators) has the shape of a phone number.

    International numbers ("+" or "00") need 7-15 digits. National ones need 7-13
    digits and either a trunk prefix 0 ("030 1234567", "0151 23456789", "0301234567"),
    a North American shape, or three or more groups of 2-4 digits, the first of 2-3,
    that are not all years ("912 345 678", "20 7946 0958"). Two groups without a
    leading 0 ("94105-1234", "2025-2026"), a single group without one ("20261125") and
    groups of four ("4111 1111 1111", a mistyped card) are too often something else.
    """
    groups = [group.strip("()") for group in _PHONE_GROUP.findall(number)]
    digits = "".join(groups)
    if number.startswith("+"):
        return 7 <= len(digits) <= _MAX_PHONE_DIGITS
    if digits.startswith("00"):
        return 7 <= len(digits) - 2 <= _MAX_PHONE_DIGITS
    if not 7 <= len(digits) <= 13:
        return False
    if len(groups) == 1:
        return digits.startswith("0") and len(digits) >= 9
    if _NANP.fullmatch(number):
        return True
    if any(len(group) < 2 for group in groups):
        return False
    if digits.startswith("0"):
        return len(groups[0]) <= 5
    return (
        len(groups) >= 3
        and len(groups[0]) <= 3
        and all(len(group) <= 4 for group in groups)
        and any(len(group) >= 3 for group in groups)
        and not all(_YEAR.fullmatch(group) for group in groups)
    )


def _glued(char: str) -> bool:
    """Whether ``char`` continues a word: a letter, a digit or an underscore."""
    return char.isalnum() or char == "_"
