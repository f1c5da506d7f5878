"""Drift of the traffic a model variant sees and of what it answers, window by window.

Each outcome becomes a handful of binned features (``features``): what came in (the
question's length, intent, sentiment and language) and what went out (model latency,
validation, route, answer length). A window counts the labels of each feature in a
plain, JSON-serialisable dict (``empty_window``, ``add``, ``merge``), so it can be the
value of a Faust windowed table. Two windows are compared feature by feature with the
population stability index (``psi``, ``drift``); the largest is the window's ``score``,
and ``drift_report`` builds the message published on ``support.monitoring``.

Plain functions, no I/O, no clock: the agent owns the table and the topic.

A feature's score is its adjusted PSI: ``max(0, psi - chance_psi(k, n_baseline,
n_current))``, with ``k`` the labels in use in either window and ``n`` the outcomes
each counted. Two samples of one and the same traffic differ by chance, which adds
about ``(k - 1) * (1 / n_baseline + 1 / n_current)`` to their PSI (``chance_psi``): 0.08
for the nine intents at 200 a window. The score takes that off, so that the usual
reading of PSI holds on windows of a few hundred outcomes too: below 0.1 stable, 0.1
to 0.2 a moderate shift, above 0.2 a significant one. Shares are smoothed (half an
outcome added to each label's count, ``DEFAULT_SMOOTHING``), so a rare label seen in
one window and not in the other weighs what its counts support. The report keeps the
raw PSI (``psi``) next to the scores.
"""

from __future__ import annotations

import math
import re
import unicodedata
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import TypedDict

__all__ = [
    "ANSWER_LENGTH_EDGES",
    "DEFAULT_SMOOTHING",
    "FEATURES",
    "LANGUAGES",
    "LATENCY_EDGES_MS",
    "LENGTH_EDGES",
    "NO_ANSWER",
    "NO_MODEL_CALL",
    "DriftReport",
    "MovedLabel",
    "Window",
    "add_all",
    "bin_label",
    "chance_psi",
    "detect_language",
    "drift",
    "drift_report",
    "empty_window",
    "features",
    "merge",
    "psi",
    "score",
]

# --- Language ---------------------------------------------------------------------------

#: The languages ``detect_language`` tells apart; anything else is ``"other"``.
LANGUAGES = ("en", "de", "fr", "es", "it", "nl", "pt")

# Function words, frequent in any sentence whatever it is about, and the commonest words
# of a support message (want, order, parcel, refund), so that even a short one holds
# several. A word several languages share ("de", "a", "in") is listed under each of
# them and split between them, so it cannot decide on its own.
_STOP_WORDS: dict[str, str] = {
    "en": (
        "the a an and or but is are was were be been being have has had do does did not no"
        " my your i you it its this that these those to of in on for with at from by can"
        " could would should will what where when why how me we our us please yet still"
        " there they them am just any about haven hasn didn doesn isn wasn won want need"
        " get got never order package parcel refund thanks hello"
    ),
    "de": (
        "der die das den dem des ein eine einen einem einer und oder aber ist sind war"
        " waren habe hast hat haben nicht kein keine ich du sie er es wir ihr mein meine"
        " meinen meiner mir mich mit von zu auf für bei noch schon wo wie was warum wann"
        " bitte auch nur sich dass im am vom zum zur bin kann können wurde würde wird will"
        " ja nein an in aus nach ihre ihren möchte bekomme gibt leider immer mehr"
        " bestellung paket geld danke hallo kaputt"
    ),
    "fr": (
        "le la les un une des du de et ou mais est sont suis ai as avez avons ont a pas ne"
        " je tu il elle nous vous ils elles mon ma mes votre vos ce cette ces qui que qu"
        " quand où pourquoi comment pour avec sans sur dans par au aux toujours encore"
        " merci été y en se me moi très plus j n l d c s à voudrais veux peux pouvez"
        " commande colis remboursement bonjour"
    ),
    "es": (
        "el la los las un una unos unas y o pero es son está están estoy he ha han hay no"
        " yo tú él ella nosotros mi mis su sus tu me te se lo le que qué cuando dónde donde"
        " por para con sin en del al de todavía aún gracias muy ya como cómo porque favor"
        " quiero puedo pedido paquete reembolso dinero hola"
    ),
    "it": (
        "il lo la i gli le un uno una e o ma è sono ho hai ha abbiamo hanno non io tu lui"
        " lei noi voi mio mia miei mie suo sua che chi quando dove perché come per con"
        " senza su in di del della dello dei delle al alla nel nella da dal ancora grazie"
        " ci mi ti si l anche già molto questo questa voglio vorrei posso ordine pacco"
        " rimborso soldi buongiorno ciao"
    ),
    "nl": (
        "de het een en of maar is zijn ben was heb heeft hebben niet geen ik jij je u hij"
        " zij ze wij we mijn uw jouw ons onze dat die dit deze wat waar wanneer waarom hoe"
        " voor met zonder op in van aan bij naar nog al er te om ook wel alstublieft"
        " bedankt graag kan kunt wordt werd wil bestelling pakket terugbetaling geld"
        " hallo kapot"
    ),
    "pt": (
        "o a os as um uma uns umas e ou mas é são está estão estou tenho tem têm não eu"
        " você ele ela nós meu minha meus minhas seu sua que quando onde por porque como"
        " para com sem em no na nos nas do da dos das de ao ainda obrigado obrigada muito"
        " já foi ser isso este esta me à quero posso vou gostaria encomenda pedido"
        " reembolso dinheiro olá"
    ),
}


def _weights(stop_words: Mapping[str, str]) -> dict[str, tuple[tuple[str, float], ...]]:
    """Each stop word's languages, with an equal share of one vote each."""
    languages: dict[str, list[str]] = {}
    for language, words in stop_words.items():
        for word in words.split():
            if language not in languages.setdefault(word, []):
                languages[word].append(language)
    return {
        word: tuple((language, 1 / len(shared)) for language in shared)
        for word, shared in languages.items()
    }


_VOTES = _weights(_STOP_WORDS)
# Letters only: apostrophes split French and Italian elisions ("l'article", "j'ai")
# into the article and the word, and English contractions into stem and "t".
_WORD = re.compile(r"[^\W\d_]+")
#: Fewer words than this are too little text to guess from.
_MIN_WORDS = 3
# At least this many votes for the winner: one word of its own, or shared words worth as much.
_MIN_VOTES = 1.0
# The winner must lead the runner-up by this much, or the text is as likely either.
_MIN_LEAD = 0.5


def detect_language(text: str) -> str:
    """A guess of the language of ``text``: one of ``LANGUAGES``, or ``"other"``.

    Counts the stop words of each language; a word shared by several languages
    counts for each in equal parts. ``"other"`` for fewer than three words, too few
    stop words, or no clear lead. Deterministic, linear in the text, no model.
    """
    words = _WORD.findall(unicodedata.normalize("NFC", text).casefold())
    if len(words) < _MIN_WORDS:
        return "other"
    votes = dict.fromkeys(LANGUAGES, 0.0)
    for word in words:
        for language, weight in _VOTES.get(word, ()):
            votes[language] += weight
    # Ties go to the order of LANGUAGES, and then fail the lead test below.
    ranked = sorted(LANGUAGES, key=lambda language: -votes[language])
    best, runner_up = votes[ranked[0]], votes[ranked[1]]
    if best < _MIN_VOTES or best - runner_up < _MIN_LEAD:
        return "other"
    return ranked[0]


# --- Features ---------------------------------------------------------------------------

#: The features of one outcome, inputs first, in the order reports list them.
FEATURES = (
    "length",
    "intent",
    "sentiment",
    "language",
    "latency",
    "validation",
    "route",
    "answer_length",
)

#: Question length in characters: doubling bins, ``[lo,hi)``, from short chats to mails.
LENGTH_EDGES: tuple[float, ...] = (16, 32, 64, 128, 256, 512, 1024, 2048)
#: Model latency in ms, roughly 1-2.5-5 steps up to the model request timeout (20 s).
LATENCY_EDGES_MS: tuple[float, ...] = (100, 250, 500, 1000, 2500, 5000, 10000, 20000)
#: Answer length in characters: even steps around the model's 240-character limit,
#: wider ones for the greeting and sign-off a mail adds.
ANSWER_LENGTH_EDGES: tuple[float, ...] = (40, 80, 120, 160, 200, 240, 320, 480)

#: The latency label of an outcome without a model call (an escalation before any
#: call, a cached answer): a rise in it is a change of its own, not a faster model.
NO_MODEL_CALL = "none"
#: The answer length label of an escalation: its text is the customer's, not an answer.
NO_ANSWER = "none"

_INVALID_OUTPUT = "invalid_model_output"


def bin_label(value: float, edges: Iterable[float]) -> str:
    """The half-open bin ``[lo,hi)`` of ``value`` between increasing ``edges``.

    A value on an edge belongs to the bin above it. The lowest bin starts at 0 and the
    highest ends at ``inf``; edges are written as integers when they are whole.
    """
    bounds = tuple(edges)
    index = bisect_right(bounds, value)
    low = _edge(bounds[index - 1]) if index > 0 else "0"
    high = _edge(bounds[index]) if index < len(bounds) else "inf"
    return f"[{low},{high})"


def _edge(edge: float) -> str:
    return str(int(edge)) if float(edge).is_integer() else repr(float(edge))


def features(
    *,
    question: str,
    intent: str,
    sentiment: str,
    route: str,
    reason: str,
    answer: str,
    model_latency_ms: float,
) -> dict[str, str]:
    """The label of each of ``FEATURES`` for one outcome.

    ``intent`` and ``sentiment`` are taken as given (``app.classify`` labels);
    ``answer`` counts only for a ``response``, since an escalation carries the
    customer's text. A latency that is zero, negative or NaN means no model call.
    """
    return {
        "length": bin_label(len(question), LENGTH_EDGES),
        "intent": intent,
        "sentiment": sentiment,
        "language": detect_language(question),
        # NaN, which a broken timer could report, is not above 0 either.
        "latency": (
            bin_label(model_latency_ms, LATENCY_EDGES_MS) if model_latency_ms > 0 else NO_MODEL_CALL
        ),
        "validation": "failed" if reason == _INVALID_OUTPUT else "ok",
        "route": route,
        "answer_length": (
            bin_label(len(answer), ANSWER_LENGTH_EDGES) if route == "response" else NO_ANSWER
        ),
    }


# --- Windows ----------------------------------------------------------------------------


class Window(TypedDict):
    """Label counts of one window: ``n`` outcomes, ``counts[feature][label]``."""

    n: int
    counts: dict[str, dict[str, int]]


def empty_window() -> Window:
    """A window with nothing counted (a Faust table's ``default``)."""
    return {"n": 0, "counts": {}}


def add_all(window: Mapping[str, object], batch: Iterable[Mapping[str, str]]) -> Window:
    """A new window: ``window`` plus one outcome for each labels of ``batch`` (from
    ``features``).

    ``window`` itself is left unchanged, so the result must be assigned back to the
    table (``table[variant] = add_all(table[variant].value(), batch)``), which is also
    what writes it to the changelog.
    """
    result = _copy(window)
    for labels in batch:
        result["n"] += 1
        for feature, label in labels.items():
            counts = result["counts"].setdefault(feature, {})
            counts[label] = counts.get(label, 0) + 1
    return result


def merge(a: Mapping[str, object], b: Mapping[str, object]) -> Window:
    """A new window counting everything ``a`` and ``b`` count (several windows make a
    steadier baseline); neither argument is changed."""
    result = _copy(a)
    other = _copy(b)
    result["n"] += other["n"]
    for feature, counts in other["counts"].items():
        into = result["counts"].setdefault(feature, {})
        for label, count in counts.items():
            into[label] = into.get(label, 0) + count
    return result


def _copy(window: Mapping[str, object]) -> Window:
    """A deep copy of ``window``, checked: a table value is whatever was deserialised."""
    n = window.get("n", 0)
    counts = window.get("counts", {})
    if not isinstance(n, int) or n < 0 or not isinstance(counts, Mapping):
        raise ValueError(
            f"not a drift window: {window!r}; expected {{'n': int >= 0, 'counts': {{...}}}}"
        )
    return {
        "n": n,
        "counts": {str(feature): dict(labels) for feature, labels in counts.items()},
    }


# --- Comparison -------------------------------------------------------------------------

#: The count added to every label in use before shares are taken (Jeffreys' prior).
DEFAULT_SMOOTHING = 0.5


def psi(
    expected: Mapping[str, int],
    actual: Mapping[str, int],
    *,
    smoothing: float = DEFAULT_SMOOTHING,
) -> float:
    """The population stability index of ``actual`` against ``expected`` label counts.

    ``sum((a - e) * ln(a / e))`` over the ``k`` labels counted in either, with ``e``
    and ``a`` each label's smoothed share, ``(count + smoothing) / (total + smoothing
    * k)``. A label counted in neither (a zero count) is no label at all. Zero for
    equal counts, never negative, and the same with the arguments swapped. Zero when
    either side has nothing counted: no evidence is no drift.
    """
    return sum(_contributions(expected, actual, smoothing=smoothing).values())


def _contributions(
    expected: Mapping[str, int], actual: Mapping[str, int], *, smoothing: float
) -> dict[str, float]:
    """Each label's term of ``psi``."""
    if not (smoothing > 0 and math.isfinite(smoothing)):
        raise ValueError(f"smoothing must be a finite count above 0, got {smoothing}")
    for name, counts in (("expected", expected), ("actual", actual)):
        if any(count < 0 for count in counts.values()):
            raise ValueError(f"{name} holds a negative count: {dict(counts)!r}")
    expected_total = sum(expected.values())
    actual_total = sum(actual.values())
    if expected_total == 0 or actual_total == 0:
        return {}
    labels = _in_use(expected, actual)
    expected_pool = expected_total + smoothing * len(labels)
    actual_pool = actual_total + smoothing * len(labels)
    terms = {}
    for label in labels:
        e = (expected.get(label, 0) + smoothing) / expected_pool
        a = (actual.get(label, 0) + smoothing) / actual_pool
        terms[label] = (a - e) * math.log(a / e)
    return terms


def _in_use(expected: Mapping[str, int], actual: Mapping[str, int]) -> set[str]:
    """The labels counted at least once in either."""
    return {label for counts in (expected, actual) for label, n in counts.items() if n > 0}


def chance_psi(k: int, n_expected: int, n_actual: int) -> float:
    """The PSI that sampling alone adds, on average, between two windows of the same
    traffic: ``(k - 1) * (1 / n_expected + 1 / n_actual)`` for ``k`` labels in use and
    ``n_expected`` and ``n_actual`` outcomes counted.

    Two samples of one distribution differ by chance; their PSI is then about a
    chi-squared with ``k - 1`` degrees of freedom, scaled by ``1 / n_expected + 1 /
    n_actual``, whose mean this is.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1 label, got {k}")
    if n_expected < 1 or n_actual < 1:
        raise ValueError(
            f"both windows must count at least 1 outcome, got {n_expected} and {n_actual}"
        )
    return (k - 1) * (1 / n_expected + 1 / n_actual)


def _compare(
    baseline: Mapping[str, object], current: Mapping[str, object], *, smoothing: float
) -> dict[str, tuple[float, float]]:
    """The raw and the adjusted PSI of each feature counted in either window, in
    ``FEATURES`` order first."""
    expected = _copy(baseline)["counts"]
    actual = _copy(current)["counts"]
    names = [f for f in FEATURES if f in expected or f in actual]
    names += sorted((expected.keys() | actual.keys()) - set(FEATURES))
    result = {}
    for name in names:
        e = expected.get(name, {})
        a = actual.get(name, {})
        raw = psi(e, a, smoothing=smoothing)
        e_total, a_total = sum(e.values()), sum(a.values())
        if e_total == 0 or a_total == 0:
            result[name] = (raw, 0.0)
            continue
        chance = chance_psi(len(_in_use(e, a)), e_total, a_total)
        result[name] = (raw, max(0.0, raw - chance))
    return result


def drift(
    baseline: Mapping[str, object],
    current: Mapping[str, object],
    *,
    smoothing: float = DEFAULT_SMOOTHING,
) -> dict[str, float]:
    """The adjusted PSI of each feature counted in either window, in ``FEATURES`` order
    first: its PSI less ``chance_psi`` for its labels in use and the outcomes each
    window counts for it, and never below 0."""
    return {
        name: adjusted
        for name, (_, adjusted) in _compare(baseline, current, smoothing=smoothing).items()
    }


def score(scores: Mapping[str, float]) -> float:
    """A window's drift score: its largest feature score (adjusted PSI), 0 when nothing
    was compared."""
    return max(scores.values(), default=0.0)


# --- Report -----------------------------------------------------------------------------


class MovedLabel(TypedDict):
    """One label of a drifting feature: its shares in both windows and its PSI term."""

    label: str
    baseline: float
    current: float
    psi: float


class DriftReport(TypedDict):
    """The message on ``support.monitoring`` for one window of one model variant."""

    variant: str
    window_start: str
    window_end: str
    baseline_n: int
    current_n: int
    scores: dict[str, float]
    psi: dict[str, float]
    score: float
    threshold: float
    min_samples: int
    compared: bool
    drifting: list[str]
    moved: dict[str, list[MovedLabel]]


# Enough digits to compare with a threshold, few enough to read.
_DIGITS = 4


def drift_report(
    *,
    variant: str,
    window_start: float,
    window_end: float,
    baseline: Mapping[str, object],
    current: Mapping[str, object],
    threshold: float,
    min_samples: int,
    top: int = 3,
    smoothing: float = DEFAULT_SMOOTHING,
) -> DriftReport:
    """The drift report of the ``current`` window of ``variant`` against ``baseline``.

    ``window_start`` and ``window_end`` are epoch seconds (a Faust window range) and
    are written as ISO-8601 UTC times, like the other records' timestamps. ``scores``
    holds each feature's adjusted PSI (``drift``) and ``psi`` its raw PSI. Features
    whose score reaches ``threshold`` are ``drifting``, each with its ``top`` labels by
    PSI term under ``moved``; none drift unless both windows hold at least
    ``min_samples`` outcomes (``compared``).
    """
    if not threshold > 0:
        raise ValueError(f"threshold must be above 0, got {threshold}")
    if min_samples < 1:
        raise ValueError(f"min_samples must be at least 1, got {min_samples}")
    if top < 0:
        raise ValueError(f"top must be 0 or more, got {top}")
    base = _copy(baseline)
    cur = _copy(current)
    compared_psi = _compare(base, cur, smoothing=smoothing)
    scores = {name: adjusted for name, (_, adjusted) in compared_psi.items()}
    compared = base["n"] >= min_samples and cur["n"] >= min_samples
    drifting = [name for name, value in scores.items() if compared and value >= threshold]
    return {
        "variant": variant,
        "window_start": _iso(window_start),
        "window_end": _iso(window_end),
        "baseline_n": base["n"],
        "current_n": cur["n"],
        "scores": {name: round(value, _DIGITS) for name, value in scores.items()},
        "psi": {name: round(raw, _DIGITS) for name, (raw, _) in compared_psi.items()},
        "score": round(score(scores), _DIGITS),
        "threshold": threshold,
        "min_samples": min_samples,
        "compared": compared,
        "drifting": drifting,
        "moved": {
            name: _moved(base["counts"].get(name, {}), cur["counts"].get(name, {}), top, smoothing)
            for name in drifting
        },
    }


def _moved(
    expected: Mapping[str, int], actual: Mapping[str, int], top: int, smoothing: float
) -> list[MovedLabel]:
    terms = _contributions(expected, actual, smoothing=smoothing)
    expected_total = sum(expected.values()) or 1
    actual_total = sum(actual.values()) or 1
    # Largest term first; the label breaks ties so that a report is reproducible.
    ranked = sorted(terms.items(), key=lambda item: (-item[1], item[0]))[:top]
    return [
        {
            "label": label,
            "baseline": round(expected.get(label, 0) / expected_total, _DIGITS),
            "current": round(actual.get(label, 0) / actual_total, _DIGITS),
            "psi": round(term, _DIGITS),
        }
        for label, term in ranked
    ]


def _iso(epoch_seconds: float) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).isoformat(timespec="milliseconds")
