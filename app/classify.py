"""Deterministic rules that read a customer's text: intent, sentiment, order ids, damage
reports and prompt-injection attempts.

Plain functions of a string, built from precompiled regular expressions and a small
lexicon: no model, no I/O, the same answer for the same text, well under a millisecond
per call. They run at ingest on every query, so the pipeline's own rules (SPEC section 4)
never wait for, or depend on, the model.

A model-based classifier would slot in behind the same signatures: a small protocol
with ``classify_intent``, ``sentiment`` and ``detect_injection``, implemented by an
embedding model (nearest labelled example) or a zero-shot classifier called from the
inference stage like any other remote model, with its own timeout and circuit breaker.
These rules stay as the fallback when that model is slow or down, and as the floor for
injection detection: a model may flag more attempts, never fewer, because missing one
risks a hijacked answer while a false alarm costs one escalation.
"""

from __future__ import annotations

import bisect
import math
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from app import phrasebook
from app.phrasebook import fold
from app.prompts import INTENTS

__all__ = [
    "INJECTION_KINDS",
    "Sentiment",
    "classify_intent",
    "detect_injection",
    "order_ids",
    "reports_damage",
    "sentiment",
]

# --- Normalisation ----------------------------------------------------------------------

# Zero-width and bidi controls, soft hyphens: invisible, and a classic way to split a
# keyword ("ig\u200bnore") so that a pattern misses it.
_INVISIBLE = re.compile(r"[\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u02bc": "'", "`": "'", "\u00b4": "'"})
_HSPACE = re.compile(r"[^\S\n]+")


def _normalise(text: str) -> str:
    """NFKC (folds full-width and stylised letters), plain apostrophes, no invisible
    characters, single spaces; line breaks and case are kept."""
    text = unicodedata.normalize("NFKC", text).translate(_QUOTES)
    return _HSPACE.sub(" ", _INVISIBLE.sub("", text))


def _compile(sources: tuple[str, ...]) -> re.Pattern[str]:
    """One case-insensitive pattern trying each of ``sources``; ``^`` and ``$`` match at
    line breaks. The sources are folded as the text they read is (``phrasebook.fold``):
    accents written in a source match text with or without them."""
    return re.compile(fold("|".join(f"(?:{source})" for source in sources)), re.I | re.M)


def _every_language(table: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
    return tuple(source for sources in table.values() for source in sources)


# --- Prompt injection -------------------------------------------------------------------

#: The names ``detect_injection`` returns, in the order their patterns are tried.
INJECTION_KINDS = (
    "override_instructions",
    "role_play_system",
    "reveal_prompt",
    "delimiter_escape",
    "jailbreak",
)

_ADJ = (
    r"(?:previous|prior|above|earlier|preceding|former|original|initial|system|safety"
    r"|existing|old|current|default|developer)"
)
_NOUN = (
    r"(?:instructions?|rules|prompts?|directives?|guidelines|guardrails|programming"
    r"|constraints|restrictions|commands)"
)
_VERB = r"(?:ignore|disregard|forget|override|bypass|discard|abandon)"
_ROLE = (
    r"(?:system|developer|dev|admin(?:istrator)?|root|superuser|sysadmin|dan"
    r"|(?:unrestricted|unfiltered|uncensored|jailbroken)\s+(?:ai|assistant|model|bot|chatbot))"
)
_SECRET = r"(?:system|initial|original|hidden|secret|internal|developer)"
_REVEAL_VERB = (
    r"(?:show|print|reveal|repeat|display|output|dump|leak|recite|write\s+out|spell\s+out"
    r"|paste|type\s+out|echo)"
)
# A topic after the noun makes it ordinary text: "show me your instructions for washing".
_NO_TOPIC = r"(?!\s+(?:for|on|about|regarding|to|of)\b)"

_INJECTION_SOURCES: dict[str, tuple[str, ...]] = {
    "override_instructions": (
        # A qualifier is required ("all", "your", "previous"...): "ignore my previous
        # message" and "ignore the instructions on the box" are ordinary support text.
        rf"\b{_VERB}\s+(?:(?:all|any|every)\s+(?:of\s+)?(?:(?:the|your|these|those)\s+)?"
        rf"(?:{_ADJ}\s+)?|(?:the\s+)?{_ADJ}\s+|your\s+(?:{_ADJ}\s+)?){_NOUN}\b",
        rf"\b{_VERB}\s+(?:the\s+|all\s+(?:the\s+)?)?{_NOUN}\s+(?:above|before\s+this"
        r"|(?:that\s+)?you\s+(?:were|have\s+been|got)\s+given)\b",
        r"\b(?:do\s+not|don't|dont|stop|no\s+longer)\s+(?:follow|obey)(?:ing)?\s+"
        rf"(?:(?:your|any)\s+(?:{_ADJ}\s+)?|(?:the\s+)?{_ADJ}\s+){_NOUN}\b",
        rf"\b{_VERB}\s+(?:everything|all)\s+(?:that\s+)?you\s+(?:were|have\s+been|'ve\s+been)"
        r"\s+(?:told|taught|given)\b",
    ),
    "role_play_system": (
        # "You are now a week late" is a complaint: the role word is required.
        r"\byou(?:'re|\s+are)\s+now\s+(?:in\s+|an?\s+|the\s+|my\s+)?(?:[\w-]+\s+){0,2}?"
        r"(?:mode|assistant|ai|bot|chatbot|model|system|developer|admin(?:istrator)?|dan"
        r"|persona|character|unrestricted|unfiltered|uncensored|jailbroken)\b",
        r"\byou(?:'re|\s+are)\s+no\s+longer\s+(?:bound|restricted|limited|an?\s+(?:ai|assistant"
        r"|bot)|the\s+assistant)\b",
        r"\b(?:act|behave|respond|answer|reply|speak|pose|role[\s-]?play)\s+(?:as|like)\s+"
        rf"(?:(?:the|a|an|my|your)\s+)?(?:[\w-]+\s+)?{_ROLE}\b",
        r"\bpretend\s+(?:to\s+be|you(?:'re|\s+are))\s+(?:(?:the|a|an|my)\s+)?(?:[\w-]+\s+)?"
        rf"{_ROLE}\b",
        r"\bpretend\s+(?:that\s+)?you\s+(?:have|had)\s+no\s+(?:rules|restrictions|limits"
        r"|guidelines|instructions)\b",
        r"\bfrom\s+now\s+on,?\s+you\s+(?:are|will|must|shall|should)\s+(?:act|behave|respond"
        r"|answer|reply|ignore|pretend|be\s+(?:an?|my))\b",
        # A line that opens a fake turn of the conversation.
        r"^[ \t>]*(?:#{1,3}\s*|\[|<)?(?:system|assistant|developer)(?:\s+(?:prompt|message"
        r"|override))?\s*[\]>]?\s*:",
        r"(?-i:\bSYSTEM\s*:)",
        r"<\s*/?\s*(?:system|assistant|developer)\s*>",
        # Chat-template control tokens (ChatML, Llama 2 and 3, Gemma, Alpaca).
        r"<\|\s*[\w-]+\s*\|>",
        r"\[\s*/?\s*INST\s*\]",
        r"<<\s*/?\s*SYS\s*>>",
        r"</?\s*(?:start_of_turn|end_of_turn)\s*>",
        r"^[ \t]*#{2,}\s*(?:instruction|response|system)\s*:",
    ),
    "reveal_prompt": (
        # "Show me the instructions for the blender" is a product question: after "the"
        # a word like "system" or "hidden" is required.
        rf"\b{_REVEAL_VERB}\s+(?:me\s+|us\s+)?(?:(?:all|exactly|verbatim)\s+)?(?:of\s+)?"
        rf"(?:your\s+(?:{_SECRET}\s+|full\s+|exact\s+|entire\s+)?(?:system\s+)?"
        rf"(?:prompt|instructions)|the\s+{_SECRET}\s+(?:system\s+)?(?:prompt|instructions"
        rf"|message|rules))\b{_NO_TOPIC}",
        r"\b(?:reveal|print|dump|leak|output|recite|repeat|display)\s+(?:me\s+)?(?:all\s+)?"
        rf"(?:of\s+)?your\s+(?:rules|guidelines|directives|configuration)\b{_NO_TOPIC}",
        r"\bwhat\s+(?:is|are|were)\s+your\s+(?:(?:system|initial|original|hidden|secret)\s+)?"
        rf"(?:prompt|instructions)\b{_NO_TOPIC}",
        r"\bsystem\s+prompt\b",
        r"\b(?:repeat|print|output|recite)\s+(?:everything|all|the\s+(?:text|words))\s+"
        r"(?:above|before\s+this)\b",
    ),
    "delimiter_escape": (r"<\s*/?\s*customer[\s_-]?message\b",),
    "jailbreak": (
        r"\bjail\s*-?\s*br(?:eak|oke|oken|eaking)\w*",
        r"\bdo\s+anything\s+now\b",
        # "Dan" is a first name: only the all-caps persona, and only where it is one.
        r"\b(?:you\s+are|you're|act\s+as|as|become|enable|activate|pretend\s+to\s+be|be)\s+"
        r"(?-i:DAN)\b",
        r"(?-i:\bDAN\b)\s+(?:mode|prompt|jailbreak)\b",
        # Not "developer mode on the lamp": that is a question about a product.
        r"\b(?:developer|dev|god|dan)\s+mode\b(?!\s+(?:on|in|of|for)\s+(?:the|my|this|your)\b)",
    ),
}

_INJECTION_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (kind, _compile(_INJECTION_SOURCES[kind])) for kind in INJECTION_KINDS
)
# Markdown emphasis, dashes and dots between words ("ignore *all* previous
# instructions", "ignore-all-previous-instructions") become single spaces.
_PUNCT_RUNS = re.compile(r"[^\w\s'<>|\[\]/:#]+")


def _find_injection(clean: str) -> str | None:
    squashed = _HSPACE.sub(" ", _PUNCT_RUNS.sub(" ", clean))
    for kind, pattern in _INJECTION_PATTERNS:
        if pattern.search(clean) or pattern.search(squashed):
            return kind
    return None


def detect_injection(text: str) -> str | None:
    """The kind of prompt-injection attempt in ``text`` (one of ``INJECTION_KINDS``), or
    None.

    Tuned for precision: a false alarm hands a genuine customer to a person, so ordinary
    phrases that share words with attacks ("please ignore my previous message", "act as
    soon as possible", "show me the instructions for the blender") do not match.
    """
    return _find_injection(_normalise(text))


# --- Sentiment --------------------------------------------------------------------------

SentimentLabel = Literal["negative", "neutral", "positive"]


@dataclass(frozen=True, slots=True)
class Sentiment:
    """The tone of a text: ``score`` from -1 (very negative) to 1 (very positive)."""

    label: SentimentLabel
    score: float

    def __post_init__(self) -> None:
        if self.label not in ("negative", "neutral", "positive"):
            raise ValueError(f"label must be negative, neutral or positive, got {self.label!r}")
        if not -1.0 <= self.score <= 1.0:
            raise ValueError(f"score must be between -1 and 1, got {self.score}")


# Valences on VADER's -3..3 scale. Words that name products ("slow cooker", "smart
# lamp", "free shipping") are left out on purpose.
_LEXICON: dict[str, float] = {
    **dict.fromkeys(
        ("terrible", "awful", "horrible", "worst", "disgusting", "appalling", "unacceptable",
         "furious", "hate", "scam", "dreadful", "pathetic", "incompetent", "nightmare",
         "disgraceful", "outrageous"),
        -3.0,
    ),
    **dict.fromkeys(
        ("useless", "angry", "worse", "shocking", "rubbish", "ridiculous", "livid"), -2.5
    ),
    **dict.fromkeys(
        ("disappointed", "disappointing", "disappointment", "unhappy", "annoyed", "frustrated",
         "frustrating", "upset", "bad", "rude", "waste", "mess", "unhelpful", "cheated",
         "nonsense"),
        -2.0,
    ),
    **dict.fromkeys(
        ("poor", "broken", "damaged", "defective", "faulty", "cracked", "wrong", "complaint",
         "complain", "failed", "fail", "annoying", "sad", "worried", "confused", "ripped",
         "smashed", "shattered"),
        -1.5,
    ),
    **dict.fromkeys(
        ("delayed", "missing", "lost", "stuck", "expensive", "unfortunately", "crushed",
         "difficult"),
        -1.0,
    ),
    # "Is it too late to return it?" asks; "late again!" complains.
    "late": -0.7,
    **dict.fromkeys(("problem", "issue"), -0.5),
    **dict.fromkeys(
        ("excellent", "amazing", "awesome", "fantastic", "wonderful", "perfect", "delighted",
         "brilliant", "outstanding", "superb"),
        3.0,
    ),
    **dict.fromkeys(("love", "lovely", "impressed", "beautiful", "best", "gorgeous"), 2.5),
    **dict.fromkeys(
        ("great", "happy", "pleased", "glad", "helpful", "satisfied", "recommend", "friendly",
         "loved", "loves"),
        2.0,
    ),
    **dict.fromkeys(("good", "nice", "appreciate", "appreciated", "grateful"), 1.5),
    **dict.fromkeys(("quick", "fast", "easy", "smooth", "fine", "works", "resolved"), 1.0),
    **dict.fromkeys(("thanks", "thank", "cheers"), 0.4),
}  # fmt: skip
_PHRASES: dict[str, float] = {
    "fed up": -2.0,
    "still waiting": -1.2,
    "not as described": -1.5,
    "waste of money": -1.0,  # on top of "waste"
    "never again": -2.5,
    "sick of": -2.0,
    "let down": -2.0,
    "rip off": -2.5,
    "ripped off": -1.0,  # on top of "ripped"
    "well done": 2.0,
    "over the moon": 3.0,
}
_PHRASE_PATTERN = re.compile(
    r"\b(?:" + "|".join(re.escape(p) for p in _PHRASES) + r")\b", re.IGNORECASE
)
# Politeness formulas carry no opinion: "Good morning", "Best regards".
_FORMULAS = re.compile(
    r"\b(?:good\s+(?:morning|afternoon|evening|day)|(?:best|kind|warm|warmest)\s+"
    r"(?:regards|wishes)|all\s+the\s+best|thanks\s+in\s+advance|no\s+worries)\b",
    re.IGNORECASE,
)
_INTENSIFIERS = frozenset(
    ("very", "really", "so", "extremely", "absolutely", "totally", "incredibly", "super",
     "completely", "utterly", "truly", "highly", "seriously", "such", "most", "deeply")
)  # fmt: skip
_DOWNTONERS = frozenset(
    ("slightly", "somewhat", "bit", "fairly", "kinda", "rather", "partly", "little")
)
_NEGATORS = frozenset(
    ("not", "no", "never", "none", "nothing", "nobody", "neither", "nor", "without", "hardly",
     "cannot", "dont", "doesnt", "didnt", "isnt", "wasnt", "arent", "werent", "cant", "wont",
     "havent", "hasnt", "hadnt", "couldnt", "wouldnt", "shouldnt", "aint")
)  # fmt: skip
_TOKEN = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?|[.,;:!?\n]")
_CLAUSE_ENDS = frozenset(".,;:!?\n")
_LOOKBACK = 3  # words before an opinion word that can modify it
_INTENSIFIER_BOOST = 0.3
_DOWNTONER_FACTOR = 0.6
_NEGATION_FACTOR = -0.74  # VADER's: "not good" is milder than "bad"
_CAPS_FACTOR = 1.5
_BUT_BEFORE, _BUT_AFTER = 0.5, 1.5
_EXCLAMATION_BOOST = 0.3
_MAX_EXCLAMATIONS = 4
_NORMALISER = 15.0  # VADER's alpha: score = total / sqrt(total^2 + alpha)
_LABEL_THRESHOLD = 0.2


def _is_caps(token: str) -> bool:
    return len(token) > 1 and token.isupper()


def _word_valence(tokens: list[str], index: int, valence: float) -> float:
    """``valence`` of ``tokens[index]`` as changed by the words just before it in its clause."""
    if _is_caps(tokens[index]):
        valence *= _CAPS_FACTOR
    for back in range(index - 1, max(-1, index - 1 - _LOOKBACK), -1):
        word = tokens[back]
        if word in _CLAUSE_ENDS:
            break
        low = word.lower()
        emphasis = _CAPS_FACTOR if _is_caps(word) else 1.0
        if low in _INTENSIFIERS:
            valence *= 1.0 + _INTENSIFIER_BOOST * emphasis
        elif low in _DOWNTONERS:
            valence *= _DOWNTONER_FACTOR
        elif low.endswith("n't") or low.replace("'", "") in _NEGATORS:
            valence *= _NEGATION_FACTOR * emphasis
    return valence


def sentiment(text: str) -> Sentiment:
    """The tone of ``text`` from a small English lexicon.

    Intensifiers ("very"), downtoners ("slightly") and negators ("not happy") up to three
    words before an opinion word change its weight; after a "but" the text counts more
    than before it; all-caps words and up to four exclamation marks amplify whatever
    tone there is. Greetings and sign-offs ("Good morning", "Best regards") are ignored.
    """
    clean = _FORMULAS.sub(" ", _normalise(text))
    tokens = _TOKEN.findall(clean)
    lowered = [token.lower() for token in tokens]
    pivot = max((i for i, low in enumerate(lowered) if low == "but"), default=-1)
    total = 0.0
    for index, low in enumerate(lowered):
        valence = _LEXICON.get(low)
        if valence is None:
            continue
        weight = _word_valence(tokens, index, valence)
        if pivot >= 0:
            weight *= _BUT_BEFORE if index < pivot else _BUT_AFTER
        total += weight
    total += sum(_PHRASES[m.group(0).lower()] for m in _PHRASE_PATTERN.finditer(clean))
    if total:
        exclamations = min(clean.count("!"), _MAX_EXCLAMATIONS)
        total += math.copysign(_EXCLAMATION_BOOST * exclamations, total)
    score = round(max(-1.0, min(1.0, total / math.sqrt(total * total + _NORMALISER))), 4)
    label: SentimentLabel = "neutral"
    if score >= _LABEL_THRESHOLD:
        label = "positive"
    elif score <= -_LABEL_THRESHOLD:
        label = "negative"
    return Sentiment(label=label, score=score)


# --- Order ids --------------------------------------------------------------------------

# A hint only: the order a customer names is found among the ids of that customer's own
# orders, in whatever format the CRM gives them (app.ordermatch).
_ORDER_ID = re.compile(r"(?<![A-Za-z0-9])ORD[-\u2010-\u2015](\d{6})(?!\d)", re.IGNORECASE)


def order_ids(text: str) -> list[str]:
    """The order ids (``ORD-`` and six digits) in ``text``, upper-case, in order of first
    appearance, without repeats."""
    return list(dict.fromkeys(f"ORD-{m.group(1)}" for m in _ORDER_ID.finditer(text)))


# --- Damage -----------------------------------------------------------------------------

_DAMAGE_WORD = _compile(
    (
        r"\b(?:damaged|damage|broken|broke|defective|faulty|fault|cracked|shattered|smashed"
        r"|dented|snapped|scratched|malfunction\w*)\b",
        *_every_language(phrasebook.DAMAGE),
    )
)
# "It doesn't work" reports damage: here the negation is the report.
_NOT_WORKING = re.compile(
    r"\b(?:doesn't|doesnt|does\s+not|don't|dont|do\s+not|won't|wont|will\s+not|isn't|isnt"
    r"|is\s+not|aren't|arent|are\s+not|not|stopped|stops|never|no\s+longer|can't|cant|cannot"
    r"|couldn't)\s+(?:\w+\s+)?(?:work(?:s|ing|ed)?|turn(?:s|ing)?\s+(?:it\s+|them\s+)?on"
    r"|switch(?:es|ing)?\s+(?:it\s+|them\s+)?on|power(?:s|ing)?\s+(?:on|up)|boot(?:s|ing)?"
    r"|charg(?:e|es|ing)\b(?!\s+(?:for|me|you|us|them|extra|shipping|delivery|postage|a\b)))\b"
    r"|\bdead\s+on\s+arrival\b",
    re.IGNORECASE,
)
# "The link doesn't work", "I don't work on Saturdays": not a damaged item.
_NOT_THE_ITEM = frozenset(
    ("code", "link", "website", "site", "app", "password", "login", "page", "voucher",
     "coupon", "discount", "promo", "account", "email", "e-mail", "tracking", "payment",
     "checkout", "card", "number", "search", "form", "button", "reset")
)  # fmt: skip
_PEOPLE = frozenset(("i", "we", "you", "they", "he", "she"))
# "It doesn't work" in the other languages; "el código no funciona" is no damage either.
_NOT_WORKING_ELSEWHERE = _compile(_every_language(phrasebook.NOT_WORKING))
_NOT_THE_ITEM_ELSEWHERE = _compile(phrasebook.NOT_THE_ITEM)
_DAMAGE_NEGATION = re.compile(
    r"(?:\b(?:not|no|never|nothing|none|without|hardly|neither|nor|dont|doesnt|didnt|isnt"
    r"|wasnt|arent|werent|hasnt|havent|hadnt|wont|cant|couldnt|wouldnt|shouldnt|aint"
    rf"|{phrasebook.DAMAGE_NEGATORS})\b|n't\b)(?:\s+[^\s.,;:!?]+){{0,2}}\s*$"
    rf"|{phrasebook.DAMAGE_NEGATORS_CJK}",
    re.IGNORECASE,
)
_OTHERS_BROKE_IT = _compile(phrasebook.OTHERS_BROKE_IT)
# Clause ends, in every language read here ("、" and "。" are not folded by NFKC).
_CLAUSE_START = re.compile(
    r"[.,;:!?\n\u3001\u3002]|\b(?:but|pero|aber|mais)\b|但是|可是|でも|けど", re.IGNORECASE
)


#: How much of a clause around a word the damage checks read: a few words either side.
_NEAR = 80


class _Clauses:
    """Where the clauses of a text start and end, found in one pass, so that looking
    around each of many matches stays linear in the text."""

    def __init__(self, text: str) -> None:
        self.text = text
        marks = list(_CLAUSE_START.finditer(text))
        self.starts = [0, *(mark.end() for mark in marks)]
        self.ends = [*(mark.start() for mark in marks), len(text)]

    def start(self, pos: int) -> int:
        """Where the clause holding position ``pos`` starts."""
        return self.starts[bisect.bisect_right(self.starts, pos) - 1]

    def before(self, pos: int, near: int = _NEAR) -> str:
        """The last ``near`` characters of the clause before ``pos``."""
        return self.text[max(self.start(pos), pos - near) : pos]

    def after(self, pos: int, near: int = _NEAR) -> str:
        """The first ``near`` characters of the clause from ``pos`` on."""
        end = self.ends[bisect.bisect_left(self.ends, pos)]
        return self.text[pos : min(end, pos + near)]


def _has_damage(clean: str) -> bool:
    """``clean`` is normalised and folded (``phrasebook.fold``)."""
    clauses = _Clauses(clean)
    for match in _DAMAGE_WORD.finditer(clean):
        before = clauses.before(match.start())
        if _DAMAGE_NEGATION.search(before):
            continue
        if _OTHERS_BROKE_IT.search(before + clauses.after(match.start())):
            continue
        return True
    for match in _NOT_WORKING.finditer(clean):
        subject = [w.strip("'\"()").lower() for w in clauses.before(match.start()).split()]
        if subject and subject[-1] in _PEOPLE:
            continue
        if not any(word in _NOT_THE_ITEM for word in subject[-3:]):
            return True
    for match in _NOT_WORKING_ELSEWHERE.finditer(clean):
        # The few words before it say what does not work.
        if not _NOT_THE_ITEM_ELSEWHERE.search(clauses.before(match.start(), 30)):
            return True
    return False


def reports_damage(text: str) -> bool:
    """Whether ``text`` says the item is damaged, broken, defective, faulty, cracked or
    does not work; "not damaged" and "the box wasn't broken" are not reports, and
    neither is "my brother broke his phone". In English, Chinese, Spanish, German,
    French, Portuguese, Japanese and Dutch (``app.phrasebook``)."""
    return _has_damage(fold(_normalise(text)))


# --- Intent -----------------------------------------------------------------------------

_PERSON = (
    r"(?:human|person|people|agent|representative|rep|manager|supervisor|someone|somebody"
    r"|staff|member|colleague|advis[oe]r|operator|employee|customer\s+service)"
)
_ORDER_NOUN = r"(?:order|parcel|package|delivery|shipment|stuff|purchase|items?)"
# A few words of one sentence: item names ("Single-origin coffee beans (1 kg)") sit
# between the words that give the intent away.
_WORDS = r"(?:\s+[^\s.!?]+)"

_STRONG_SOURCES: dict[str, tuple[str, ...]] = {
    "human_request": (
        rf"\b(?:speak|talk|chat)\s+(?:to|with)\s+(?:(?:a|an|some|the|your|someone|somebody)\s+)?"
        rf"(?:real\s+|actual\s+|live\s+)?{_PERSON}\b",
        r"\b(?:real|actual|live)\s+(?:human|person|agent|people)\b",
        # "A lovely human being" describes someone; "a human being, please" asks.
        r"\b(?:an?|some|the)\s+human\b(?!\s+being\b)|\bhuman\s+(?:agent|support)\b"
        r"|\b(?:an?|real|actual)\s+human\s+being\b",
        r"\b(?:get|give|want|need|find)\s+(?:me\s+)?(?:an?|the|your)\s+(?:human|person|agent"
        r"|representative|manager|supervisor)\b",
        r"\b(?:put|transfer|connect|pass|forward|escalate)\s+(?:me|this|us)\s+(?:through\s+)?"
        rf"(?:to|with)\s+(?:(?:a|an|the|your|some)\s+)?(?:[\w-]+\s+)?{_PERSON}\b",
        r"\b(?:is|are)\s+there\s+(?:someone|somebody|anyone|anybody|a\s+(?:human|person))"
        r"(?:\s+\w+){0,4}?\s+(?:talk|speak|chat)\b",
        r"\b(?:someone|somebody)\s+(?:i|we)\s+(?:can|could)\s+(?:\w+\s+)?(?:talk|speak)\b",
        # "(Please) call me on <number>" only gives contact details; these ask for the call.
        r"\b(?:call|ring|phone)\s+me\s+back\b"
        r"|\bplease\s+(?:call|ring|phone)\s+me\b(?!\s+(?:on|at)\b)",
        r"\b(?:can|could|would|will)\s+(?:someone|somebody|you|a\s+\w+)\s+(?:please\s+)?"
        r"(?:call|ring|phone)\s+me\b",
        # A message (or line) that opens with the bare word: "agent", "um human please",
        # "agent, it's about my order"; not "agent said..." or "human error".
        r"^\W*(?:(?:hi|hello|hey|um+|uh+|erm|yeah|so|there|ok(?:ay)?|please)\W+)*"
        r"(?:agent|human|operator|representative)\b(?!-|\s+(?:said|says|told|was|were|is|has"
        r"|had|did|who|that|called|left|delivered|came|error|errors|rights|nature|resources)\b)",
    ),
    "return": (
        # Not "returned": "I returned it and still no refund" asks about the refund.
        r"\breturn(?:s|ing|able)?\b",
        r"\bsend(?:ing)?(?:\s+[^\s.!?]+){0,6}?\s+back\b",
        r"\btake\s+(?:it|them|this|these)\s+back\b",
        r"\bexchang(?:e|ing)\b|\breplacement\b|\breplace\s+(?:it|them|this|these|the\s+item)\b"
        r"|\bswap\s+(?:it|them|this|these|those)\b"
        r"|\b(?:get|have)\s+(?:it|them|this|these|one)\s+replaced\b",
    ),
    "refund": (
        # "Refund it to <card>" says where money goes rather than asking for it: a weak cue.
        r"\brefund(?:s|ed|ing)?\b(?!\s+(?:it|this|that|the\s+money)\s+(?:to|on)\b)",
        r"\bmoney\s+back\b|\breimburs\w*|\bcharge\s*-?\s*back\b|\b(?:my|the)\s+money\b",
        r"\bcharged\s+(?:me\s+)?(?:\w+\s+)?twice\b|\bdouble[\s-]charged\b|\bover-?charged\b",
    ),
    "order_status": (
        rf"\bwhere(?:'s|s|\s+is|\s+are)\s+(?:(?:my|the|our)\s+)?(?:[\w-]+\s+){{0,3}}?{_ORDER_NOUN}\b",
        rf"\bwhere\s+(?:my|the|our)\s+(?:[\w-]+\s+){{0,3}}?{_ORDER_NOUN}\s+(?:is|are)\b",
        r"\bstatus\s+of\b|\border\s+status\b|\bdelivery\s+update\b",
        r"\b(?:any|an|no|the\s+latest)\s+updates?\s+(?:on|about|for|regarding)\b",
        rf"\b(?:has|have|is|was|did|are)\b{_WORDS}{{0,8}}?\s+(?:shipped|dispatched"
        r"|been\s+(?:sent|shipped|dispatched|posted)|left\s+the\s+warehouse)\b",
        rf"\bwhen\b{_WORDS}{{0,10}}?\s+(?:will|would|should|is|does|do|can)\b{_WORDS}{{0,10}}?"
        r"\s+(?:arrive|arriving|be\s+(?:delivered|here|dispatched|shipped|sent)|get\s+here"
        r"|turn\s+up|ship|come|coming)\b",
        r"\b(?:any\s+)?news\s+(?:on|about|of)\s+(?:my|the|our)\b",
        r"\bon\s+(?:its|the|their)\s+way\b|\bout\s+for\s+delivery\b",
        r"\btrack(?:ing)?\b",
        rf"\bplaced\b{_WORDS}{{0,8}}?\s+(?:ago|days|weeks|last)\b",
        r"\b(?:haven't|have\s+not|havent|not)\s+heard\b|\bheard\s+nothing\b",
        r"\b(?:hasn't|has\s+not|hasnt|didn't|did\s+not|never|not\s+yet|still\s+not)\s+"
        r"(?:arrived|come|turned\s+up|been\s+delivered|shown\s+up)\b",
        r"\b(?:haven't|have\s+not|havent|never|not)\s+(?:yet\s+)?(?:received|got)\s+"
        rf"(?:my|the|our)\s+{_ORDER_NOUN}\b",
        r"\b(?:expected|estimated)\s+delivery\b|\beta\b",
    ),
    "shipping": (
        r"\b(?:do|can|will|does|would)\s+you\s+(?:also\s+)?(?:ship|deliver|post|send)\s+"
        r"(?:to|on|at|internationally|abroad|overseas|outside|worldwide)\b",
        r"\b(?:free|express|standard|next[\s-]day|same[\s-]day|international|overseas|tracked"
        r"|premium|economy|weekend|saturday|sunday)\s+(?:shipping|delivery|postage)\b",
        r"\bwhat\s+(?:does|do|is|would|will)\s+(?:the\s+)?(?:shipping|delivery|postage)\b",
        r"\b(?:shipping|delivery|postage)\s+(?:costs?|fees?|charges?|prices?|rates?|times?"
        r"|options?|methods?|address|countries|zones?)\b",
        r"\bhow\s+(?:long|much)\s+(?:does|do|is|will|would)\s+(?:it\s+)?(?:\w+\s+)?(?:shipping"
        r"|delivery|postage)\b",
        r"\b(?:which|what)\s+(?:courier|carrier|delivery\s+(?:company|service))\b"
        r"|\b(?:courier|carrier)\s+do\s+you\s+use\b",
        r"\b(?:parcel|pick[\s-]?up|collection)\s+(?:locker|point|shop)\b|\bclick\s+and\s+collect\b",
        r"\bdeliver(?:ed)?\s+(?:it\s+|them\s+)?to\s+(?:my|a|another|the|our)\s+(?:\w+\s+)?"
        r"(?:address|office|work|home|neighbou?r)\b",
        r"\bchange\s+(?:the|my)\s+(?:delivery|shipping)\b",
        r"\bcustoms\b|\bimport\s+(?:duty|duties|fees?|tax)\b",
    ),
    "account": (
        r"\baccounts?\b",
        r"\b(?:log|sign)\s*-?\s*(?:in|on)\b|\blogin\b|\bsignin\b",
        r"\bpasswords?\b|\busername\b|\b2fa\b|\btwo[\s-]factor\b",
        r"\bverif(?:y|ication)\b|\bunsubscribe\b|\bnewsletters?\b|\bmarketing\s+e-?mails?\b",
        r"\b(?:update|change)\s+(?:the|my)\s+(?:e-?mail|name|phone|details)\b",
        r"\blocked\s+out\b|\bmy\s+(?:profile|personal\s+data)\b",
    ),
    "complaint": (
        r"\b(?:disappoint\w*|disgust\w*|unhappy|terrible|awful|horrible|appalling|unacceptable|worst"
        r"|rubbish|useless|ridiculous|disgrace\w*|disgusting|shocking|furious|outrageous"
        r"|angry|rude|incompetent|pathetic|dreadful)\b",
        r"\bnot\s+(?:\w+\s+)?(?:happy|satisfied|pleased|impressed|acceptable|good\s+enough)\b",
        r"\bfed\s+up\b|\bcomplain\w*|\b(?:poor|bad|awful)\s+(?:service|experience|quality)\b",
        r"\bnot\s+as\s+(?:described|advertised|pictured|shown)\b|\bnot\s+what\s+i\s+ordered\b",
        r"\b(?:second|third|fourth|fifth)\s+time\b|\b(?:second|third|fourth|fifth)\s+\w+\s+in\s+a\s+row\b"
        r"|\b(?:this|it)\s+is\s+a\s+joke\b",
        r"\b(?:nobody|no\s+one|no-one)\s+(?:has\s+)?(?:answered|replied|responded|called"
        r"|got\s+back|bothered|helped)\b",
        r"\bpromised\b|\bnever\s+(?:got|received)\s+(?:a|any|one)\b",
        r"\bin\s+the\s+rain\b|\bleft\b(?:\s+\S+){0,8}?\s+(?:outside|on\s+the\s+doorstep"
        r"|unattended)\b",
        r"\b(?:ripped|torn|tampered|stolen)\b|\b(?:is|was|were|are)\s+missing\b",
        r"\bwhy\s+(?:was|were|have|has|did)\s+(?:i|we|you)\s+(?:been\s+)?charg\w*",
    ),
    "product_question": (
        r"\b(?:machine[\s-])?washable\b|\bwash(?:ing)?\s+(?:instructions|it)\b",
        r"\bwarrant(?:y|ies)\b|\bguarantee\b",
        r"\bdo\s+you\s+(?:sell|stock|offer|have|make|carry)\b",
        r"\b(?:back\s+|out\s+of\s+|in\s+)stock\b|\brestock\w*|\bavailab(?:le|ility)\s+in\b",
        r"\b(?:what|which)\s+size\b|\bsize\s+(?:guide|chart)\b|\bsizing\b|\btrue\s+to\s+size\b",
        r"\bcolou?rs?\b|\bcome\s+in\b",
        r"\bdimensions\b|\bmeasurements\b|\bhow\s+(?:big|large|heavy|tall|wide|long)\s+is\b",
        r"\bsuitable\s+for\b|\bsafe\s+for\b|\bcompatib\w*|\bwork\s+with\b",
        r"\bgift[\s-]?wrap\w*",
        r"\bcome\s+with\b|\bmade\s+(?:of|from)\b|\bmaterials?\b|\bingredients\b"
        r"|\bbattery\s+life\b|\bspecs?\b|\bspecifications?\b",
        r"\binstructions\s+for\b|\bmanual\b|\bhow\s+(?:do|does|should)\s+(?:i|you|it)\s+"
        r"(?:use|assemble|clean|set\s+up|install|charge)\b",
    ),
}

# Intents in the order their rules are tried; the first with a match wins. Asking for
# a person beats everything; a concrete request (return, refund) beats the topic it is
# about; complaint words come late because upset customers also say what they want.
_PRIORITY = (
    "human_request",
    "return",
    "refund",
    "order_status",
    "shipping",
    "account",
    "complaint",
    "product_question",
)
_FALLBACK = "other"
if set(_PRIORITY) | {_FALLBACK} != set(INTENTS):  # pragma: no cover - app.prompts changed
    raise RuntimeError(
        f"app.classify has rules for {sorted(_PRIORITY)} and falls back to {_FALLBACK!r}, "
        f"but app.prompts.INTENTS is {sorted(INTENTS)}: make app/classify.py cover them"
    )

_STRONG: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (intent, _compile(_STRONG_SOURCES[intent] + _every_language(phrasebook.INTENTS[intent])))
    for intent in _PRIORITY
)


def _sounds_upset(text: str) -> bool:
    return _has_damage(text) or sentiment(text).score <= -0.45


# Cues that decide only when no strong phrase matched, in the same priority order.
_WEAK_RETURN = _compile(
    (
        r"\b(?:doesn't|does\s+not|don't|do\s+not|didn't)\s+fit\b",
        r"\btoo\s+(?:small|big|large|tight|loose|short|long)\b",
        r"\bwrong\s+(?:size|colou?r)\b",
    )
)
_WEAK_REFUND = _compile((r"\brefund",))
_WEAK_ORDER_STATUS = _compile(
    (
        r"\b(?:delayed|late|overdue|lost)\b",
        r"\bwhere(?:'s|\s+is)\s+it\b",
        r"\b(?:my|the)\s+order\b",
        *phrasebook.WEAK_ORDER_STATUS,
    )
)
_WEAK_PRODUCT_QUESTION = _compile(
    (r"\A\W*(?:is|are|does|do|will|can|could)\s+(?:the|this|these|your)\s+\w+",)
)
_WEAK: tuple[tuple[str, Callable[[str], object]], ...] = (
    ("return", _WEAK_RETURN.search),
    ("refund", _WEAK_REFUND.search),
    ("order_status", _WEAK_ORDER_STATUS.search),
    ("complaint", _sounds_upset),
    ("product_question", _WEAK_PRODUCT_QUESTION.search),
)

# "I don't want a bot" asks for a person although it is a negated wish.
_NOT_A_BOT = _compile(
    (
        r"\b(?:don't|dont|do\s+not|no|not)\s+(?:want\s+|need\s+)?(?:to\s+(?:talk|speak|chat)\s+"
        r"(?:to|with)\s+)?(?:(?:a|an|the|this|your|more)\s+)?(?:bot|robot|chatbot"
        r"|automated\s+(?:system|assistant|replies|reply|responses|answers))\b",
        *phrasebook.NOT_A_BOT,
    )
)

# A negated wish takes the rest of its clause out of consideration: "I don't want a
# refund, I want a replacement" is a return (a replacement means sending the item
# back). "Still no refund" is not a negated wish: it asks where the refund is.
_NEGATED_WISH = re.compile(
    fold(
        r"(?:\b(?:don't|dont|do\s+not|doesn't|doesnt|does\s+not|didn't|didnt|did\s+not|won't"
        r"|wont|will\s+not|wouldn't|would\s+not|never|no\s+longer)\s+(?:really\s+|even\s+)?"
        r"(?:want|need|wish|intend|plan|mean)\w*"
        r"|\bnot\s+(?:asking|looking|trying|going|planning|wanting|requesting)\s+(?:for|to)"
        r"|\bno\s+need\s+(?:for|to)|"
        + "|".join(phrasebook.WISH_NEGATORS)
        + r")(?:(?!\b(?:but|instead|rather|just|only|"
        + phrasebook.WISH_TURNS
        + r")\b|但是|可是|只要)[^.,;:!?\n\u3001\u3002])*"
    ),
    re.IGNORECASE,
)
# Japanese says "(talk to a person) need-not": the negation ends the clause it takes out.
_NEGATED_WISH_AFTER = _compile(phrasebook.WISH_NEGATORS_AFTER)


def _without_negated_wishes(clean: str) -> str:
    kept = _NEGATED_WISH.sub(" ", clean)
    clauses = _Clauses(kept)
    parts = []
    pos = 0
    for match in _NEGATED_WISH_AFTER.finditer(kept):
        start = max(pos, clauses.start(match.start()))
        parts.append(kept[pos:start])
        pos = match.end()
    parts.append(kept[pos:])
    return " ".join(parts)


# Every injection pattern at once, to cut attacks out of the text an intent is read from.
_ANY_INJECTION = _compile(tuple(s for kind in INJECTION_KINDS for s in _INJECTION_SOURCES[kind]))
_SENTENCE_END = re.compile(r"[.!?\n]")


def _without_injection(clean: str) -> str:
    """``clean`` without its injection attempts, each cut from where it starts to the end
    of its sentence: they say what an attacker wants the model to do, not what the
    customer asks. All of ``clean`` if nothing else is left."""
    parts = []
    pos = 0
    while (attack := _ANY_INJECTION.search(clean, pos)) is not None:
        parts.append(clean[pos : attack.start()])
        end = _SENTENCE_END.search(clean, attack.end())
        pos = end.end() if end else len(clean)
    parts.append(clean[pos:])
    rest = " ".join(parts)
    return rest if rest.strip(" \t\n.,;:!?") else clean


def classify_intent(text: str) -> str:
    """The intent of ``text``: one of ``app.prompts.INTENTS``, ``"other"`` when no rule fits.

    Strong phrases are tried intent by intent in a fixed priority (human_request,
    return, refund, order_status, shipping, account, complaint, product_question); only
    when none matches do weak cues decide, in the same order: "refund it to my card",
    "my order", a damage report or a strongly negative tone (a complaint), a question
    about "the" product. Negated wishes ("I don't want a refund") are ignored, and so
    is each injection attempt up to the end of its sentence. English, Chinese, Spanish,
    German, French, Portuguese, Japanese and Dutch (``app.phrasebook``), in any mix.
    """
    clean = _normalise(text)
    body = _without_injection(clean)
    intent = _classify(fold(body))
    if intent == _FALLBACK and body != clean:
        # A transcript has no sentence ends, so a cut attack can take the request with it.
        intent = _classify(fold(clean))
    return intent


def _classify(clean: str) -> str:
    """``clean`` is normalised and folded (``phrasebook.fold``)."""
    if _NOT_A_BOT.search(clean):
        return "human_request"
    kept = _without_negated_wishes(clean)
    for intent, strong in _STRONG:
        if strong.search(kept):
            return intent
    for intent, weak in _WEAK:
        if weak(kept):
            return intent
    return _FALLBACK
