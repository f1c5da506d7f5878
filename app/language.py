"""The language a customer is answered in: their CRM locale, else the one they write in.

``detect_language`` is a small rule-based detector for the languages the pipeline writes
its own sentences in (``LANGUAGES``): the script for Chinese and Japanese (any kana
means Japanese), counts of common short words for the Latin-script ones, English when
nothing stands out. One pass over the text, no model.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from typing import Any, Literal

Language = Literal["en", "zh", "es", "de", "fr", "pt", "ja"]

#: The languages the pipeline's own sentences are written in; English is the default.
LANGUAGES: tuple[Language, ...] = ("en", "zh", "es", "de", "fr", "pt", "ja")
DEFAULT: Language = "en"

#: Names for the prompt ("Write your answer in Spanish"); a locale in another language
#: is answered in that language by the model, with the fixed sentences in English.
NAMES: dict[str, str] = {
    "en": "English",
    "zh": "Chinese",
    "es": "Spanish",
    "de": "German",
    "fr": "French",
    "pt": "Portuguese",
    "ja": "Japanese",
    "nl": "Dutch",
    "it": "Italian",
    "pl": "Polish",
    "sv": "Swedish",
    "da": "Danish",
    "ko": "Korean",
}

# Common short words. A word several languages share ("de", "que", "se") counts for each
# of them: it still tells a Romance language from English or German, and the words
# only one of them uses decide between them.
_STOP_WORDS: dict[Language, frozenset[str]] = {
    "en": frozenset(
        "the and is my i you it to of with for this that please can what where how have was "
        "thanks hi hello want would don't didn't it's i'm when will your we our just a an are be "
        "do does could can't get got somebody someone today back there me".split()
    ),
    "es": frozenset(
        "el los las del por una mi mis es está esta pero y hola gracias qué dónde donde cómo "
        "como cuándo cuando muy ya quiero tengo puedo hay lo le yo también porque nada sí "
        "usted ustedes buenas todavía aún hace necesito llegó mí tienen dos veces mismo "
        "alguien favor puede nadie después despues al su te si "
        "de que la en se me un con para a no".split()
    ),
    "pt": frozenset(
        "o os um uma meu minha meus minhas não nao você voce vocês voces é e obrigado "
        "obrigada olá oi quero ainda já ja muito isso isto tenho posso mas eu do da dos das "
        "na ao em foi estou cadê cade pra até pelo pela sem também tambem preciso "
        "chegou tem algum alguém alguem aí ninguém ninguem gostaria hoje quanto acima "
        "de que se me com por para a como no".split()
    ),
    "de": frozenset(
        "der die das und ist ich nicht mein meine meinen ein eine einen mit bitte danke "
        "hallo wo wie was noch habe hat sie auf für zu den dem kein keine wurde schon aber "
        "auch doch mal ihr euch möchte wann warum bei".split()
    ),
    "fr": frozenset(
        "le les des du une je j mon ma mes est et pas ne n pour avec bonjour merci "
        "où vous ai suis c d l qu s'il svp ça sur dans très mais quand toujours votre "
        "voudrais comment il au aux ce cette combien avez êtes faire peux pouvez veux y "
        "de que la en se me un a".split()
    ),
}
# Letters that only some of the Latin-script languages use, worth one word for each.
_LETTERS: dict[str, tuple[Language, ...]] = {
    **dict.fromkeys("ñ¿¡", ("es",)),
    **dict.fromkeys("áíóú", ("es", "pt")),
    "é": ("es", "fr", "pt"),
    **dict.fromkeys("êâôç", ("fr", "pt")),
    **dict.fromkeys("ãõ", ("pt",)),
    **dict.fromkeys("ßäöü", ("de",)),
    **dict.fromkeys("èàùîïœë", ("fr",)),
}
# Word endings of one language only: "trataram", "devolução"; "devolución".
_ENDINGS: tuple[tuple[str, Language], ...] = (
    ("aram", "pt"),
    ("eram", "pt"),
    ("ção", "pt"),
    ("ções", "pt"),
    ("ción", "es"),
    ("ciones", "es"),
)
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")


def _is_kana(char: str) -> bool:
    code = ord(char)
    return 0x3040 <= code <= 0x30FF or 0x31F0 <= code <= 0x31FF or 0xFF66 <= code <= 0xFF9D


def _is_han(char: str) -> bool:
    code = ord(char)
    return 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0xF900 <= code <= 0xFAFF


def detect_language(text: str) -> Language:
    """The language ``text`` is written in, among ``LANGUAGES``; English when unsure.

    Chinese and Japanese by their script: kana means Japanese, Han characters without
    kana Chinese, when they outweigh the Latin words (two characters count as one
    word). Otherwise the Latin-script language with most of its common words (and
    letters such as ñ, ã, ß, è), ties going to the earlier in ``LANGUAGES``.
    """
    text = unicodedata.normalize("NFKC", text)
    han = kana = 0
    letters: Counter[Language] = Counter()
    for char in text:
        if _is_kana(char):
            kana += 1
        elif _is_han(char):
            han += 1
        else:
            letters.update(_LETTERS.get(char.lower(), ()))
    words = _WORD.findall(text.lower())
    latin = sum(1 for word in words if word.isascii() or not any(map(_is_cjk, word)))
    if (han + kana) and (han + kana) / 2 >= latin:
        return "ja" if kana else "zh"
    scores = Counter(letters)
    for word in words:
        for language, stop_words in _STOP_WORDS.items():
            if word in stop_words:
                scores[language] += 1
        for ending, language in _ENDINGS:
            if word.endswith(ending):
                scores[language] += 1
    if not scores:
        return DEFAULT
    best = max(scores.values())
    return next(language for language in LANGUAGES if scores[language] == best)


def _is_cjk(char: str) -> bool:
    return _is_kana(char) or _is_han(char)


def locale_language(locale: str | None) -> str | None:
    """The language of a CRM ``locale`` (``"es-MX"``, ``"pt_BR"``, ``"ZH"``), if it names
    one of ``NAMES``; None when it is empty or unknown."""
    primary = re.split(r"[-_.@]", (locale or "").strip(), maxsplit=1)[0].lower()
    return primary if primary in NAMES else None


def answer_language(profile: dict[str, Any] | None, text: str) -> str:
    """The language to answer in: the customer's CRM ``locale`` when it is set and known,
    else the language of their ``text``."""
    return locale_language((profile or {}).get("locale")) or detect_language(text)


def sentence_language(language: str) -> Language:
    """The language the pipeline's own sentences are written in for ``language``:
    itself when it is one of ``LANGUAGES``, else English."""
    for known in LANGUAGES:
        if known == language:
            return known
    return DEFAULT
