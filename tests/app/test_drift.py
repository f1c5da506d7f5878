"""The drift monitor's plain functions: language guess, feature bins, windows, PSI and
the report (no Kafka needed)."""

from __future__ import annotations

import itertools
import json
import math
import random
from collections.abc import Iterable, Mapping, Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.drift import (
    ANSWER_LENGTH_EDGES,
    DEFAULT_SMOOTHING,
    FEATURES,
    LANGUAGES,
    LATENCY_EDGES_MS,
    LENGTH_EDGES,
    NO_ANSWER,
    NO_MODEL_CALL,
    Window,
    add_all,
    bin_label,
    chance_psi,
    detect_language,
    drift,
    drift_report,
    empty_window,
    features,
    merge,
    psi,
    score,
)
from app.prompts import INTENTS

# A realistic intent mix, and the same traffic after a campaign made returns dominate.
INTENT_MIX = {
    "order_status": 0.25,
    "shipping": 0.12,
    "return": 0.12,
    "refund": 0.1,
    "product_question": 0.15,
    "account": 0.06,
    "complaint": 0.08,
    "human_request": 0.04,
    "other": 0.08,
}
SHIFTED_MIX = {**INTENT_MIX, "return": 0.35, "order_status": 0.1, "product_question": 0.05}

# The nine intents weighted by volume (30, 20, 15, 10, 8, 7, 5, 3, 2), and the same
# traffic when an outage turns most order-status questions into requests for a human
# (10, 20, 15, 10, 8, 7, 5, 3, 22).
TRAFFIC = dict(
    zip(
        (
            "order_status",
            "shipping",
            "return",
            "refund",
            "product_question",
            "account",
            "complaint",
            "other",
            "human_request",
        ),
        (30, 20, 15, 10, 8, 7, 5, 3, 2),
        strict=True,
    )
)
OUTAGE = {**TRAFFIC, "order_status": 10, "human_request": 22}


def outcome_features(
    *,
    question: str = "Where is my order? It has not arrived yet.",
    intent: str = "order_status",
    sentiment: str = "neutral",
    route: str = "response",
    reason: str = "",
    answer: str = "Your order ORD-123456 left our warehouse yesterday and arrives tomorrow.",
    model_latency_ms: float = 812.5,
) -> dict[str, str]:
    """``features`` of an ordinary answered query, unless told otherwise."""
    return features(
        question=question,
        intent=intent,
        sentiment=sentiment,
        route=route,
        reason=reason,
        answer=answer,
        model_latency_ms=model_latency_ms,
    )


def window_of(rows: Iterable[Mapping[str, str]]) -> Window:
    window = empty_window()
    for row in rows:
        window = add_all(window, [row])
    return window


def draw(rng: random.Random, mix: Mapping[str, float], n: int) -> list[str]:
    return rng.choices(list(mix), weights=list(mix.values()), k=n)


def intent_window(intents: Sequence[str]) -> Window:
    return window_of(outcome_features(intent=intent) for intent in intents)


def counted(feature: str, labels: Iterable[str]) -> Window:
    """A window counting only ``feature``, one outcome per label."""
    return window_of({feature: label} for label in labels)


# --- Language ---------------------------------------------------------------------------

SENTENCES: dict[str, tuple[str, ...]] = {
    "en": (
        "Where is my order? It has not arrived yet.",
        "I would like to return the jumper, it is too small.",
        "Can you tell me when my refund will be paid?",
        "my package never came",
        "Hello, the lamp doesn't work",
    ),
    "de": (
        "Wo ist meine Bestellung? Sie ist noch nicht angekommen.",
        "Ich möchte den Pullover zurückschicken, er ist zu klein.",
        "Wann bekomme ich mein Geld zurück?",
        "Der Wasserkocher ist kaputt.",
        "Mein Paket ist leider beschädigt",
    ),
    "fr": (
        "Où est ma commande ? Elle n'est toujours pas arrivée.",
        "Je voudrais retourner le pull, il est trop petit.",
        "Quand est-ce que je serai remboursé ?",
        "Je voudrais parler à un conseiller",
        "Bonjour, j'attends mon colis depuis une semaine",
    ),
    "es": (
        "¿Dónde está mi pedido? Todavía no ha llegado.",
        "Quiero devolver el jersey, es demasiado pequeño.",
        "¿Cuándo me devolverán el dinero?",
        "El hervidor está roto.",
        "Hola, mi paquete llegó dañado",
    ),
    "it": (
        "Dov'è il mio ordine? Non è ancora arrivato.",
        "Vorrei restituire il maglione, è troppo piccolo.",
        "Quando riceverò il rimborso?",
        "Voglio parlare con un operatore",
        "Buongiorno, il pacco è arrivato danneggiato",
    ),
    "nl": (
        "Waar is mijn bestelling? Die is nog niet aangekomen.",
        "Ik wil de trui retourneren, hij is te klein.",
        "Wanneer krijg ik mijn geld terug?",
        "De waterkoker is kapot.",
        "Hallo, mijn pakket is beschadigd",
    ),
    "pt": (
        "Onde está o meu pedido? Ainda não chegou.",
        "Quero devolver a camisola, é muito pequena.",
        "Quando vou receber o reembolso?",
        "Quero falar com uma pessoa",
        "Olá, a minha encomenda chegou danificada",
    ),
}


@pytest.mark.parametrize(
    ("language", "text"),
    [(language, text) for language, texts in SENTENCES.items() for text in texts],
)
def test_detect_language_of_short_sentences(language: str, text: str) -> None:
    assert detect_language(text) == language


def test_every_language_has_sentences() -> None:
    assert set(SENTENCES) == set(LANGUAGES)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "Hi",
        "Danke!",
        "ORD-123456",
        "ok ok ok",
        "asdf qwer zxcv",
        "12 34 56 78",
        "Dziękuję bardzo za pomoc w tej sprawie",
        "注文はどこですか",
        # Only words the languages share: as likely one as another.
        "A chaleira está partida.",
    ],
)
def test_detect_language_other_for_too_little_or_unknown_text(text: str) -> None:
    assert detect_language(text) == "other"


def test_detect_language_ignores_case_and_elisions() -> None:
    assert detect_language("WHERE IS MY ORDER") == "en"
    assert detect_language("J'ai reçu l'article mais c'est cassé") == "fr"


def test_detect_language_is_deterministic() -> None:
    text = "Ik wil de trui retourneren, hij is te klein."
    assert {detect_language(text) for _ in range(5)} == {"nl"}


@given(st.text(max_size=300))
def test_detect_language_answers_a_known_label_for_any_text(text: str) -> None:
    assert detect_language(text) in (*LANGUAGES, "other")


# --- Bins and features ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "label"),
    [
        (0, "[0,16)"),
        (15, "[0,16)"),
        (16, "[16,32)"),
        (31, "[16,32)"),
        (32, "[32,64)"),
        (2047, "[1024,2048)"),
        (2048, "[2048,inf)"),
        (10**6, "[2048,inf)"),
    ],
)
def test_length_bins_at_their_edges(value: int, label: str) -> None:
    assert bin_label(value, LENGTH_EDGES) == label


def test_bin_label_writes_fractional_edges_exactly() -> None:
    assert bin_label(0.7, (0.5, 1.5)) == "[0.5,1.5)"
    assert bin_label(0.1, (0.5, 1.5)) == "[0,0.5)"


def test_edges_increase() -> None:
    for edges in (LENGTH_EDGES, LATENCY_EDGES_MS, ANSWER_LENGTH_EDGES):
        assert all(low < high for low, high in itertools.pairwise(edges))
        assert edges[0] > 0


def test_features_has_every_feature_in_order() -> None:
    labels = outcome_features()
    assert tuple(labels) == FEATURES
    assert labels == {
        "length": "[32,64)",
        "intent": "order_status",
        "sentiment": "neutral",
        "language": "en",
        "latency": "[500,1000)",
        "validation": "ok",
        "route": "response",
        "answer_length": "[40,80)",
    }


def test_question_length_bins_at_edges() -> None:
    assert outcome_features(question="x" * 15)["length"] == "[0,16)"
    assert outcome_features(question="x" * 16)["length"] == "[16,32)"
    assert outcome_features(question="")["length"] == "[0,16)"


@pytest.mark.parametrize(
    ("latency", "label"),
    [
        (0.0, NO_MODEL_CALL),
        (-1.0, NO_MODEL_CALL),
        (math.nan, NO_MODEL_CALL),
        (0.001, "[0,100)"),
        (99.999, "[0,100)"),
        (100.0, "[100,250)"),
        (19999.9, "[10000,20000)"),
        (20000.0, "[20000,inf)"),
        (math.inf, "[20000,inf)"),
    ],
)
def test_latency_bins_and_no_model_call(latency: float, label: str) -> None:
    assert outcome_features(model_latency_ms=latency)["latency"] == label


def test_no_model_call_is_its_own_label() -> None:
    labels = {bin_label(edge, LATENCY_EDGES_MS) for edge in (0.0, *LATENCY_EDGES_MS)}
    assert NO_MODEL_CALL not in labels


@pytest.mark.parametrize(
    ("length", "label"),
    [(0, "[0,40)"), (39, "[0,40)"), (40, "[40,80)"), (239, "[200,240)"), (240, "[240,320)")],
)
def test_answer_length_bins_at_edges(length: int, label: str) -> None:
    assert outcome_features(answer="a" * length)["answer_length"] == label


def test_escalation_has_no_answer_length_and_counts_as_escalation() -> None:
    labels = outcome_features(
        route="escalation",
        reason="model_unavailable",
        answer="Where is my order? It has not arrived yet.",
        model_latency_ms=0.0,
    )
    assert labels["route"] == "escalation"
    assert labels["answer_length"] == NO_ANSWER
    assert labels["latency"] == NO_MODEL_CALL
    assert labels["validation"] == "ok"


def test_validation_fails_only_for_invalid_model_output() -> None:
    failed = outcome_features(route="escalation", reason="invalid_model_output")
    assert failed["validation"] == "failed"
    for reason in ("", "model_unavailable", "prompt_injection", "no_order"):
        assert outcome_features(reason=reason)["validation"] == "ok"


def test_inputs_pass_through_and_language_comes_from_the_question() -> None:
    labels = outcome_features(
        question="Ich möchte den Pullover zurückschicken, er ist zu klein.",
        intent="return",
        sentiment="negative",
    )
    assert (labels["intent"], labels["sentiment"], labels["language"]) == (
        "return",
        "negative",
        "de",
    )


# --- Windows ----------------------------------------------------------------------------


def test_empty_window() -> None:
    assert empty_window() == {"n": 0, "counts": {}}
    assert empty_window() is not empty_window()


def test_add_counts_and_leaves_its_argument_unchanged() -> None:
    before = empty_window()
    after = add_all(before, [outcome_features()])
    assert before == {"n": 0, "counts": {}}
    assert after["n"] == 1
    assert after["counts"]["intent"] == {"order_status": 1}
    again = add_all(after, [outcome_features(intent="refund")])
    assert after["counts"]["intent"] == {"order_status": 1}
    assert again["counts"]["intent"] == {"order_status": 1, "refund": 1}
    assert again["n"] == 2


def test_window_survives_a_json_round_trip() -> None:
    window = window_of([outcome_features(), outcome_features(route="escalation")])
    assert json.loads(json.dumps(window)) == window
    # A value read back from the table works like the original.
    restored = json.loads(json.dumps(window))
    assert add_all(restored, [outcome_features()]) == add_all(window, [outcome_features()])


def test_merge_sums_counts_and_leaves_arguments_unchanged() -> None:
    a = window_of([outcome_features(), outcome_features(intent="refund")])
    b = window_of([outcome_features(intent="refund", sentiment="negative")])
    a_before, b_before = json.dumps(a), json.dumps(b)
    merged = merge(a, b)
    assert merged["n"] == 3
    assert merged["counts"]["intent"] == {"order_status": 1, "refund": 2}
    assert merged["counts"]["sentiment"] == {"neutral": 2, "negative": 1}
    assert (json.dumps(a), json.dumps(b)) == (a_before, b_before)
    assert merge(empty_window(), empty_window()) == empty_window()
    assert merge(a, empty_window()) == a


@pytest.mark.parametrize(
    "window",
    [{"n": -1, "counts": {}}, {"n": "3", "counts": {}}, {"n": 1, "counts": [1, 2]}],
)
def test_a_malformed_window_is_refused(window: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="not a drift window"):
        add_all(window, [outcome_features()])


# --- PSI --------------------------------------------------------------------------------


def test_psi_hand_computed_two_labels() -> None:
    # Counts 50/50 against 25/75, each plus 0.5 over 100 + 0.5 * 2 = 101:
    # shares 50.5/101 each against 25.5/101 and 75.5/101.
    # (25.5 - 50.5)/101 ln(25.5/50.5) + (75.5 - 50.5)/101 ln(75.5/50.5)
    # = 25/101 (ln(50.5/25.5) + ln(75.5/50.5)) = 25/101 ln(75.5/25.5)
    # = 0.2475247525 * 1.0854470064
    assert psi({"a": 50, "b": 50}, {"a": 25, "b": 75}) == pytest.approx(0.2686767832)


def test_psi_hand_computed_three_labels() -> None:
    # Each count plus 0.5, over 100 + 0.5 * 3 = 101.5 on both sides:
    # (40.5 - 60.5)/101.5 ln(40.5/60.5) + (40.5 - 30.5)/101.5 ln(40.5/30.5)
    #   + (20.5 - 10.5)/101.5 ln(20.5/10.5)
    # = 0.0790820475 + 0.0279384523 + 0.0659162196
    expected = {"a": 60, "b": 30, "c": 10}
    actual = {"a": 40, "b": 40, "c": 20}
    assert psi(expected, actual) == pytest.approx(0.1729367193)


def test_psi_smooths_a_new_label() -> None:
    # "b" is new: counts 100/0 against 50/50, each plus 0.5 over 101.
    # (50.5 - 100.5)/101 ln(50.5/100.5) + (50.5 - 0.5)/101 ln(50.5/0.5)
    # = 50/101 (ln(100.5/50.5) + ln(101)) = 50/101 ln(201) = 0.4950495050 * 5.3033049080
    assert DEFAULT_SMOOTHING == 0.5
    assert psi({"a": 100}, {"a": 50, "b": 50}) == pytest.approx(2.6253984693)
    # A zero count is no label at all: "c" changes neither k nor the shares.
    assert psi({"a": 100, "b": 0, "c": 0}, {"a": 50, "b": 50, "c": 0}) == pytest.approx(
        2.6253984693
    )
    # Smoothing 1, over 102: 50/102 (ln(101/51) + ln(51)) = 50/102 ln(101)
    # = 0.4901960784 * 4.6151205168; more smoothing, less weight on the new label.
    assert psi({"a": 100}, {"a": 50, "b": 50}, smoothing=1) == pytest.approx(2.2623139788)
    # No label in common: 2 * (100.5 - 0.5)/101 ln(100.5/0.5) = 200/101 ln(201), finite.
    assert psi({"a": 100}, {"b": 100}) == pytest.approx(10.5015938773)


def test_psi_identical_is_zero_and_proportional_nearly() -> None:
    counts = {"a": 7, "b": 3, "c": 1}
    assert psi(counts, counts) == 0.0
    # Smoothing weighs more on 11 outcomes than on 110, so proportional counts differ
    # a little, less than chance explains, and less the more there are.
    small = psi(counts, {k: 10 * v for k, v in counts.items()})
    assert 0.0 < small < chance_psi(3, 11, 110)
    assert drift(
        counted("f", ["a"] * 7 + ["b"] * 3 + ["c"]),
        counted("f", ["a"] * 70 + ["b"] * 30 + ["c"] * 10),
    ) == {"f": 0.0}
    large = psi({k: 100 * v for k, v in counts.items()}, {k: 1000 * v for k, v in counts.items()})
    assert large < small / 1000


def test_psi_is_symmetric() -> None:
    expected = {"a": 60, "b": 30, "c": 10}
    actual = {"a": 40, "b": 40, "c": 20, "d": 3}
    assert psi(expected, actual) == pytest.approx(psi(actual, expected))


def test_psi_with_an_empty_side_is_zero() -> None:
    assert psi({}, {}) == 0.0
    assert psi({"a": 3}, {}) == 0.0
    assert psi({}, {"a": 3}) == 0.0
    assert psi({"a": 0}, {"a": 3}) == 0.0


@pytest.mark.parametrize("smoothing", [0.0, -0.5, math.nan, math.inf])
def test_psi_refuses_smoothing_that_is_not_a_positive_count(smoothing: float) -> None:
    with pytest.raises(ValueError, match="smoothing"):
        psi({"a": 1}, {"a": 1}, smoothing=smoothing)


def test_psi_refuses_negative_counts() -> None:
    with pytest.raises(ValueError, match="negative count"):
        psi({"a": 1, "b": -1}, {"a": 1})


def test_chance_psi_hand_computed() -> None:
    # (9 - 1) * (1/200 + 1/200) = 8 * 0.01
    assert chance_psi(9, 200, 200) == pytest.approx(0.08)
    # (2 - 1) * (1/1000 + 1/250) = 0.001 + 0.004
    assert chance_psi(2, 1000, 250) == pytest.approx(0.005)
    # One label leaves nothing to chance.
    assert chance_psi(1, 10, 10) == 0.0


@pytest.mark.parametrize(
    ("k", "n_expected", "n_actual", "match"),
    [(0, 10, 10, "k must"), (2, 0, 10, "at least 1 outcome"), (2, 10, 0, "at least 1 outcome")],
)
def test_chance_psi_refuses_no_labels_or_no_outcomes(
    k: int, n_expected: int, n_actual: int, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        chance_psi(k, n_expected, n_actual)


# --- Drift between windows --------------------------------------------------------------


def test_drift_is_psi_less_chance_hand_computed() -> None:
    # PSI 0.2686767832 (test_psi_hand_computed_two_labels) less (2 - 1) * (1/100 + 1/100).
    baseline = counted("f", ["a"] * 50 + ["b"] * 50)
    current = counted("f", ["a"] * 25 + ["b"] * 75)
    assert drift(baseline, current) == {"f": pytest.approx(0.2486767832)}
    # 50/50 against 48/52: PSI 2/101 ln(52.5/48.5) = 0.0016, below chance 0.02, so 0.
    slightly = counted("f", ["a"] * 48 + ["b"] * 52)
    assert 0.0 < psi({"a": 50, "b": 50}, {"a": 48, "b": 52}) < 0.02
    assert drift(baseline, slightly) == {"f": 0.0}


def test_identical_windows_do_not_drift() -> None:
    rng = random.Random(3)
    window = intent_window(draw(rng, INTENT_MIX, 200))
    scores = drift(window, window)
    assert tuple(scores) == FEATURES
    assert set(scores.values()) == {0.0}
    assert score(scores) == 0.0


def test_a_shifted_intent_mix_drifts() -> None:
    rng = random.Random(11)
    baseline = intent_window(draw(rng, INTENT_MIX, 200))
    current = intent_window(draw(rng, SHIFTED_MIX, 200))
    scores = drift(baseline, current)
    assert scores["intent"] > 0.2
    # Every other feature is the same in both windows.
    assert all(value == 0.0 for name, value in scores.items() if name != "intent")
    assert score(scores) == scores["intent"]


def noisy_window(
    rng: random.Random, tones: Mapping[str, float], *, escalated: float, n: int = 200
) -> Window:
    """``n`` outcomes with a tone drawn from ``tones``, a share ``escalated`` of them
    escalated, and one in fifty failing validation."""
    return window_of(
        outcome_features(
            sentiment=tone,
            route="escalation" if rng.random() < escalated else "response",
            reason="invalid_model_output" if rng.random() < 0.02 else "",
        )
        for tone in draw(rng, tones, n)
    )


def test_small_noise_over_200_samples_is_mostly_chance() -> None:
    # Sampling alone adds about (labels - 1) * (1/200 + 1/200) to the PSI: 0.02 for
    # three tones, 0.01 for two routes or validation results. A slight change on 200
    # samples keeps the PSI well below 0.1, and the score is what chance leaves of it.
    rng = random.Random(2024)
    baseline = noisy_window(
        rng, {"neutral": 0.55, "negative": 0.3, "positive": 0.15}, escalated=0.12
    )
    current = noisy_window(
        rng, {"neutral": 0.53, "negative": 0.31, "positive": 0.16}, escalated=0.13
    )
    scores = drift(baseline, current)
    for name in ("sentiment", "route", "validation"):
        expected, actual = baseline["counts"][name], current["counts"][name]
        raw = psi(expected, actual)
        chance = chance_psi(len(expected.keys() | actual.keys()), 200, 200)
        assert 0.0 < raw < 0.1, (name, raw)
        assert scores[name] == pytest.approx(max(0.0, raw - chance)), name
        assert scores[name] < 0.05, (name, scores[name])


def test_sampling_noise_of_the_intent_mix_shrinks_with_the_window() -> None:
    # Nine labels take more samples to settle: at 1000 a window the same mix stays
    # below 0.1, while the shifted mix is still far above 0.2.
    rng = random.Random(5)
    baseline = intent_window(draw(rng, INTENT_MIX, 1000))
    same = intent_window(draw(rng, INTENT_MIX, 1000))
    shifted = intent_window(draw(rng, SHIFTED_MIX, 1000))
    assert drift(baseline, same)["intent"] < 0.1
    assert drift(baseline, shifted)["intent"] > 0.2


DRAWS = 100


def intent_scores(
    baseline_mix: Mapping[str, float], current_mix: Mapping[str, float]
) -> list[float]:
    """The intent score of two windows of 200 drawn from the mixes, once per seed."""
    scores = []
    for seed in range(DRAWS):
        rng = random.Random(seed)
        baseline = counted("intent", draw(rng, baseline_mix, 200))
        current = counted("intent", draw(rng, current_mix, 200))
        scores.append(drift(baseline, current)["intent"])
    return scores


def test_the_same_intent_mix_at_200_rarely_reaches_0_2() -> None:
    # Nine labels at 200 a window: chance alone gives a PSI of 0.08 on average, more
    # when the 2% and 3% intents happen to miss one window; the score takes 0.08 off.
    assert set(TRAFFIC) == set(INTENTS)
    scores = intent_scores(TRAFFIC, TRAFFIC)
    below = sum(value < 0.2 for value in scores)
    assert below >= 98, (below, max(scores))


def test_a_shifted_intent_mix_at_200_reaches_0_2() -> None:
    # order_status 30% -> 10% and human_request 2% -> 22%: a PSI near
    # 0.2 ln 3 + 0.2 ln 11 = 0.70 before chance.
    scores = intent_scores(TRAFFIC, OUTAGE)
    above = sum(value > 0.2 for value in scores)
    assert above >= 95, (above, min(scores))


def test_a_rare_label_at_200_stays_below_0_2() -> None:
    # Validation fails for 2% of outcomes, 4 in 200 on average: none in one window
    # against 9 in the other is 0.0448 ln 19 + 0.0448 ln(0.9975/0.9527) = 0.13 before
    # chance takes 0.01 off.
    mix = {"ok": 0.98, "failed": 0.02}
    scores = []
    for seed in range(DRAWS):
        rng = random.Random(seed)
        baseline = counted("validation", draw(rng, mix, 200))
        current = counted("validation", draw(rng, mix, 200))
        scores.append(drift(baseline, current)["validation"])
    assert max(scores) < 0.2, max(scores)


def test_empty_windows_do_not_drift() -> None:
    assert drift(empty_window(), empty_window()) == {}
    full = intent_window(["return"] * 10)
    assert set(drift(empty_window(), full).values()) == {0.0}
    assert set(drift(full, empty_window()).values()) == {0.0}
    assert score({}) == 0.0


def test_drift_lists_unknown_features_after_the_known_ones() -> None:
    baseline = window_of([{"intent": "return", "zeta": "x", "alpha": "y"}])
    current = window_of([{"intent": "refund", "zeta": "x", "alpha": "z"}])
    assert list(drift(baseline, current)) == ["intent", "alpha", "zeta"]


# --- Report -----------------------------------------------------------------------------

START = 1_790_000_000.0  # 2026-09-21T14:13:20Z


def test_report_of_a_shifted_intent_mix() -> None:
    rng = random.Random(11)
    baseline = intent_window(draw(rng, INTENT_MIX, 200))
    current = intent_window(draw(rng, SHIFTED_MIX, 200))
    report = drift_report(
        variant="flowdesk-sim:1",
        window_start=START,
        window_end=START + 60,
        baseline=baseline,
        current=current,
        threshold=0.2,
        min_samples=50,
    )
    assert json.loads(json.dumps(report)) == report
    assert report["variant"] == "flowdesk-sim:1"
    assert report["window_start"] == "2026-09-21T14:13:20.000+00:00"
    assert report["window_end"] == "2026-09-21T14:14:20.000+00:00"
    assert (report["baseline_n"], report["current_n"]) == (200, 200)
    assert list(report["scores"]) == list(FEATURES)
    assert report["score"] == report["scores"]["intent"] > 0.2
    # The raw PSI, with the chance of nine labels at 200 a window, 0.08, on top.
    assert list(report["psi"]) == list(FEATURES)
    intent_psi = psi(baseline["counts"]["intent"], current["counts"]["intent"])
    assert report["psi"]["intent"] == round(intent_psi, 4)
    assert report["scores"]["intent"] == round(intent_psi - chance_psi(9, 200, 200), 4)
    assert report["threshold"] == 0.2
    assert report["compared"] is True
    assert report["drifting"] == ["intent"]
    moved = report["moved"]["intent"]
    assert len(moved) == 3
    assert moved[0]["label"] == "return"
    assert moved[0]["current"] > moved[0]["baseline"]
    assert [m["psi"] for m in moved] == sorted((m["psi"] for m in moved), reverse=True)
    assert {m["label"] for m in moved} <= set(INTENTS)


def test_report_of_small_windows_scores_but_flags_nothing() -> None:
    baseline = intent_window(["return"] * 20)
    current = intent_window(["refund"] * 20)
    report = drift_report(
        variant="v",
        window_start=START,
        window_end=START + 60,
        baseline=baseline,
        current=current,
        threshold=0.2,
        min_samples=50,
    )
    assert report["scores"]["intent"] > 0.2
    assert report["compared"] is False
    assert report["drifting"] == []
    assert report["moved"] == {}


def test_report_of_empty_windows() -> None:
    report = drift_report(
        variant="v",
        window_start=START,
        window_end=START + 60,
        baseline=empty_window(),
        current=empty_window(),
        threshold=0.2,
        min_samples=1,
    )
    assert report["scores"] == {}
    assert report["psi"] == {}
    assert report["score"] == 0.0
    assert (report["baseline_n"], report["current_n"]) == (0, 0)
    assert report["compared"] is False
    assert report["drifting"] == []
    assert json.loads(json.dumps(report)) == report


@pytest.mark.parametrize(
    ("threshold", "min_samples", "top", "match"),
    [(0.0, 50, 3, "threshold"), (0.2, 0, 3, "min_samples"), (0.2, 50, -1, "top")],
)
def test_report_refuses_bad_settings(
    threshold: float, min_samples: int, top: int, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        drift_report(
            variant="v",
            window_start=START,
            window_end=START + 60,
            baseline=empty_window(),
            current=empty_window(),
            threshold=threshold,
            min_samples=min_samples,
            top=top,
        )


# --- Properties -------------------------------------------------------------------------

counts = st.dictionaries(st.sampled_from("abcdefgh"), st.integers(0, 10_000), max_size=8)
rows = st.lists(
    st.fixed_dictionaries(
        {
            "intent": st.sampled_from(INTENTS),
            "sentiment": st.sampled_from(("negative", "neutral", "positive")),
            "route": st.sampled_from(("response", "escalation")),
        }
    ),
    max_size=50,
)


@given(counts, counts)
def test_psi_is_never_negative_and_finite(expected: dict[str, int], actual: dict[str, int]) -> None:
    value = psi(expected, actual)
    assert value >= 0.0
    assert math.isfinite(value)


@given(counts, counts)
def test_a_zero_count_is_no_label(expected: dict[str, int], actual: dict[str, int]) -> None:
    def in_use(c: dict[str, int]) -> dict[str, int]:
        return {label: n for label, n in c.items() if n > 0}

    assert psi(expected, actual) == pytest.approx(psi(in_use(expected), in_use(actual)))


@given(rows, rows)
def test_drift_is_between_0_and_psi(
    first: list[dict[str, str]], second: list[dict[str, str]]
) -> None:
    baseline, current = window_of(first), window_of(second)
    for name, value in drift(baseline, current).items():
        raw = psi(baseline["counts"].get(name, {}), current["counts"].get(name, {}))
        assert 0.0 <= value <= raw


@given(counts)
def test_psi_of_a_distribution_with_itself_is_zero(distribution: dict[str, int]) -> None:
    assert psi(distribution, distribution) == 0.0


@given(counts, counts)
def test_psi_is_symmetric_for_any_counts(expected: dict[str, int], actual: dict[str, int]) -> None:
    assert psi(expected, actual) == pytest.approx(psi(actual, expected), rel=1e-9, abs=1e-12)


@given(rows)
def test_add_counts_every_feature_n_times(labels: list[dict[str, str]]) -> None:
    window = window_of(labels)
    assert window["n"] == len(labels)
    for per_label in window["counts"].values():
        assert sum(per_label.values()) == window["n"]


@given(rows, rows)
def test_merge_counts_sum_to_n_and_equal_adding_everything(
    first: list[dict[str, str]], second: list[dict[str, str]]
) -> None:
    merged = merge(window_of(first), window_of(second))
    assert merged["n"] == len(first) + len(second)
    for per_label in merged["counts"].values():
        assert sum(per_label.values()) == merged["n"]
    assert merged == window_of(first + second)
    assert merged == merge(window_of(second), window_of(first))
