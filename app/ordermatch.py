"""Finding the order a customer names, among that customer's own orders.

Order ids are the CRM's, in whatever format it uses ("HO-90001", "A7-55-1023",
"1000234", "ORD-482913"), and customers write them as they please ("#1000234",
lower case, "(ho-90001)."). So no pattern says what an id is: the text is searched for
the ids of the customer's own orders. Plain functions of strings, linear in the text's
length: they run on every query, on text a customer wrote.
"""

from __future__ import annotations

import functools
import re
import string
import unicodedata
from collections.abc import Iterable

__all__ = ["MAX_ORDER_ID_CHARS", "lookalike_order_ids", "named_order_ids"]

# Zero-width and bidi controls, soft hyphens: invisible, and they would split an id.
_INVISIBLE = re.compile(r"[\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")
_SPACES = re.compile(r"\s+")

#: Longer ids are never looked for in a text: nobody types them, and the bound keeps the
#: search linear in the text's length.
MAX_ORDER_ID_CHARS = 64
# A number or word shaped like one of the customer's ids counts as an id they do not own
# only with this many digits: shorter numbers are quantities, prices and years.
_LOOKALIKE_DIGITS = 5
# Hyphens, the figure and en dashes and the minus sign, typed for the hyphen in an id; not
# the em dash, which ends a clause ("1000234\u2014it broke").
_DASHES = str.maketrans(dict.fromkeys("\u2010\u2011\u2012\u2013\u2212", "-"))
# Characters that join the parts of an id: "A7-55-1023" is one id, and "1000234" is not
# named in "A-1000234" or "1000234/7".
_ID_JOINERS = frozenset("-_/")
# A word that may be an id, in case-folded text: ASCII only, so that one written next to
# another script ("注文HO-90002です") is a word of its own.
_ID_TOKEN = re.compile(r"[0-9a-z_/-]+")


def _id_text(text: str) -> str:
    """``text`` as ids are compared: NFKC (full-width digits are digits), one kind of
    dash, no invisible characters, single spaces, case-folded."""
    text = _INVISIBLE.sub("", unicodedata.normalize("NFKC", text))
    return _SPACES.sub(" ", text.translate(_DASHES)).casefold()


def _continues(char: str, edge: str) -> bool:
    """Whether ``char``, next to an id whose character at that end is ``edge``, would make
    one longer word or number of the two. A letter of another script does not: "注文1000234です"
    names 1000234."""
    if char.isdecimal():
        return True
    return char.isalpha() and (char.isascii() or not edge.isascii())


def _extends(text: str, index: int, step: int, edge: str) -> bool:
    """Whether ``text[index]``, just outside an id (``step`` -1 before it, 1 after it),
    makes it part of a longer id or number."""
    if not 0 <= index < len(text):
        return False
    char = text[index]
    if _continues(char, edge):
        return True
    beyond = text[index + step] if 0 <= index + step < len(text) else ""
    if char in _ID_JOINERS:
        return bool(beyond) and _continues(beyond, edge)
    # "1000234.5" is a decimal number; "No.1000234" and "1000234." name the id.
    return char == "." and beyond.isdecimal() and edge.isdecimal()


def _named_at(text: str, needle: str) -> int | None:
    """Where ``needle`` first stands on its own in ``text``, if it does."""
    start = text.find(needle)
    while start != -1:
        end = start + len(needle)
        if not (_extends(text, start - 1, -1, needle[0]) or _extends(text, end, 1, needle[-1])):
            return start
        start = text.find(needle, start + 1)
    return None


def named_order_ids(text: str, owned: Iterable[str]) -> list[str]:
    """The ids of ``owned`` that ``text`` names, as ``owned`` spells them, in order of
    first appearance.

    An id is named however the customer writes it: in any case, with or without ``#``,
    next to punctuation or text in another script; not inside a longer id or number
    ("1000234" is not named in "10002345", "A-1000234" or "1000234.5"). Each id is
    found with ``str.find`` and a look at the characters around it, so the time is
    linear in the text's length for ids of up to ``MAX_ORDER_ID_CHARS`` characters.
    """
    clean = _id_text(text)
    found: dict[str, int] = {}
    for order_id in owned:
        needle = _owned_form(order_id)
        if not needle or len(needle) > MAX_ORDER_ID_CHARS or order_id in found:
            continue
        at = _named_at(clean, needle)
        if at is not None:
            found[order_id] = at
    return sorted(found, key=found.__getitem__)


_ASCII_SHAPE = str.maketrans(
    {**dict.fromkeys(string.ascii_letters, "a"), **dict.fromkeys(string.digits, "9")}
)


def _shape(token: str) -> str:
    if token.isascii():
        return token.translate(_ASCII_SHAPE)
    return "".join("9" if c.isdecimal() else "a" if c.isalpha() else c for c in token)


@functools.lru_cache(maxsize=4096)
def _owned_form(order_id: str) -> str:
    """An id of the customer's as the text is compared with it (the same ids come back
    with every query of that customer)."""
    return _id_text(order_id).strip()


@functools.lru_cache(maxsize=4096)
def _owned_shape(order_id: str) -> str:
    """The shape of one of the customer's ids, or "" when it has too few digits to say."""
    form = _owned_form(order_id)
    return _shape(form) if sum(c.isdecimal() for c in form) >= _LOOKALIKE_DIGITS else ""


def lookalike_order_ids(text: str, owned: Iterable[str]) -> list[str]:
    """Words and numbers in ``text`` shaped like one of the ``owned`` ids but none of
    them ("HO-90002" for a customer whose orders are "HO-90001" and "HO-90017"),
    upper-case, in order of first appearance, without repeats.

    The shape maps letters to ``a`` and digits to ``9``; only shapes with at least
    five digits count. Linear in the text's length.
    """
    owned = list(owned)
    shapes = {shape for order_id in owned if (shape := _owned_shape(order_id))}
    if not shapes:
        return []
    mine = {_owned_form(order_id) for order_id in owned}
    lengths = {len(shape) for shape in shapes}
    found: dict[str, None] = {}
    for match in _ID_TOKEN.finditer(_id_text(text)):
        token = match.group().strip("-_/")
        if len(token) in lengths and token not in mine and _shape(token) in shapes:
            found.setdefault(token.upper(), None)
    return list(found)
