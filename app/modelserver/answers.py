"""The simulator's canned support answers: deterministic, plausible, cheap.

``simulate_answer`` turns a customer message into the answer object the pipeline
asks the model for (see ``app.prompts.ANSWER_SCHEMA``): an intent found by
keywords, one answer sentence per intent, and the actions a real model would
propose. Same text in, same answer out, so load and fault tests are repeatable.
"""

from __future__ import annotations

import json
import re
from typing import Any

# The pipeline wraps the untrusted customer text in these tags; the instructions
# around it name every intent, so matching keywords on the whole prompt would
# always find "return" or "refund".
_CUSTOMER_BLOCK = re.compile(r"<customer_message>(.*?)</customer_message>", re.DOTALL)

# "ORD-12345", "ord 12345", "order #12345", "order number 12345" all name the same order.
_ORDER_ID = re.compile(
    r"\bord[-\s]?(\d{3,})\b|\border\s*(?:#|no\.?|number|num\.?)?\s*#?\s*(\d{3,})\b",
    re.IGNORECASE,
)

# Checked in this order; the first intent with a keyword hit wins. Explicit asks
# (a human, money back) beat the topic they are about; complaint words come last
# because angry customers usually also say what went wrong.
_INTENT_KEYWORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "human_request",
        (
            "human",
            "real person",
            "representative",
            "agent",
            "speak to someone",
            "talk to someone",
            "operator",
            "manager",
        ),
    ),
    ("refund", ("refund", "money back", "reimburs", "charged twice", "chargeback")),
    ("return", ("return", "send it back", "send back", "exchange")),
    (
        "order_status",
        (
            "where is my order",
            "order status",
            "status of my order",
            "track",
            "not arrived",
            "hasn't arrived",
            "has not arrived",
            "still waiting",
            "where is my package",
            "where's my order",
        ),
    ),
    ("shipping", ("shipping", "ship", "delivery", "deliver", "courier", "postage", "dispatch")),
    (
        "account",
        (
            "account",
            "password",
            "log in",
            "login",
            "sign in",
            "username",
            "email address",
            "two-factor",
            "2fa",
        ),
    ),
    (
        "product_question",
        (
            "size",
            "colour",
            "color",
            "compatible",
            "material",
            "warranty",
            "in stock",
            "battery",
            "dimension",
            "does it",
            "does this",
            "how do i use",
            "specification",
        ),
    ),
    (
        "complaint",
        (
            "complain",
            "terrible",
            "awful",
            "unacceptable",
            "angry",
            "worst",
            "disappointed",
            "rude",
            "horrible",
            "ridiculous",
        ),
    ),
)

_PATTERNS: tuple[tuple[str, tuple[re.Pattern[str], ...]], ...] = tuple(
    # A leading word boundary only, so "return" also matches "returned" and "returns".
    (intent, tuple(re.compile(r"\b" + re.escape(word), re.IGNORECASE) for word in words))
    for intent, words in _INTENT_KEYWORDS
)

_INTENT_PATTERNS = dict(_PATTERNS)
_LOCKED_OUT = re.compile(r"password|\blog\s?in|\bsign\s?in|locked out", re.IGNORECASE)

_ANSWERS: dict[str, str] = {
    "return": "I'm sorry the item didn't work out. {order_ref} A prepaid return label "
    "will be emailed to you once the return is approved.",
    "refund": "I understand you'd like a refund. {order_ref} Our billing team will review "
    "it and you'll hear back within 3 business days.",
    "order_status": "Let me check on your order. {order_ref} You'll get a tracking update "
    "by email as soon as it moves.",
    "shipping": "Standard shipping takes 3-5 business days and express 1-2. {order_ref}",
    "product_question": "Good question! You can find the full specifications, sizes and "
    "warranty terms on the product page; I'm happy to help compare options.",
    "account": "For account access, use 'Forgot password' on the sign-in page; the reset "
    "link is valid for 30 minutes.",
    "complaint": "I'm really sorry about this experience. {order_ref} I've passed your "
    "feedback to a senior member of our team who will follow up.",
    "human_request": "Of course, I'm connecting you with a member of our support team. {order_ref}",
    "other": "Thanks for reaching out! Could you tell me a little more about how I can help?",
}


def customer_text(message: str) -> str:
    """The customer's own words in ``message``: the last tagged block, else all of it."""
    blocks = _CUSTOMER_BLOCK.findall(message)
    return blocks[-1].strip() if blocks else message.strip()


def find_order_id(text: str) -> str | None:
    """The first order number in ``text``, normalised to ``ORD-<digits>``, or None."""
    match = _ORDER_ID.search(text)
    if match is None:
        return None
    return f"ORD-{match.group(1) or match.group(2)}"


def classify_intent(text: str) -> tuple[str, int]:
    """The intent of ``text`` and how many of its keywords matched (0 for "other")."""
    for intent, patterns in _PATTERNS:
        hits = sum(1 for pattern in patterns if pattern.search(text))
        if hits:
            return intent, hits
    return "other", 0


def _actions(intent: str, text: str, order_id: str | None) -> list[dict[str, Any]]:
    def action(kind: str, detail: str = "") -> dict[str, Any]:
        return {"type": kind, "order_id": order_id, "detail": detail}

    ask_order = {"type": "request_info", "order_id": None, "detail": "order number"}
    if intent == "return":
        return [action("return_label")] if order_id else [ask_order]
    if intent == "refund":
        if not order_id:
            return [ask_order]
        # "Return it for a refund" needs the label as well as the refund review.
        if any(pattern.search(text) for pattern in _INTENT_PATTERNS["return"]):
            return [action("return_label"), action("refund_review")]
        return [action("refund_review")]
    if intent == "order_status":
        return [action("order_lookup")] if order_id else [ask_order]
    if intent == "shipping":
        return [action("shipment_lookup")] if order_id else []
    if intent == "account":
        locked_out = _LOCKED_OUT.search(text) is not None
        return [action("password_reset" if locked_out else "account_review")]
    if intent == "complaint":
        return [action("escalate", "customer complaint")]
    if intent == "human_request":
        return [action("handoff", "customer asked for a person")]
    return []


def simulate_answer(message: str) -> dict[str, Any]:
    """The answer object for the last user ``message`` (intent, answer, actions, confidence)."""
    text = customer_text(message)
    intent, hits = classify_intent(text)
    order_id = find_order_id(text)
    order_ref = f"I've noted order {order_id}." if order_id else ""
    if not order_id and intent in ("return", "refund", "order_status"):
        order_ref = "Could you share your order number (it looks like ORD-12345)?"
    answer = " ".join(_ANSWERS[intent].format(order_ref=order_ref).split())
    # More keyword hits and a concrete order make a real model surer of itself.
    confidence = 0.35 if intent == "other" else min(0.95, 0.6 + 0.1 * hits + 0.1 * bool(order_id))
    return {
        "answer": answer,
        "intent": intent,
        "actions": _actions(intent, text, order_id),
        "confidence": round(confidence, 2),
    }


def simulate_answer_json(message: str) -> str:
    """``simulate_answer`` as the compact JSON string a model would return as content."""
    return json.dumps(simulate_answer(message), separators=(",", ":"))
