"""Checks on the model's answer before any of it reaches a customer.

The model is treated as an untrusted user: it may propose only the actions the
pipeline knows how to carry out, it may link only to the shop's own domains, and
whatever personal data it writes is redacted like the customer's.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from app.answers import ModelAnswer, ProposedAction
from app.errors import InvalidModelOutput
from app.pii import redact

#: The action types an answer may carry; any other is dropped.
ALLOWED_ACTIONS = frozenset(
    {
        # A prepaid return label for ``order_id`` (issued by ``app.rules`` only).
        "return_label",
        # ``order_id`` cannot be returned; ``detail`` says why (``app.rules`` only).
        "return_denied",
        # Send the customer the delivery status of ``order_id``.
        "track_order",
        # Open a refund request for ``order_id``, for the shop to review.
        "refund_request",
        # Change the delivery address of ``order_id``.
        "update_address",
        # E-mail the customer a password-reset link.
        "send_reset_link",
    }
)

# "scheme://host" and, for http(s), the forms browsers also accept ("https:host",
# "https:\\host"); script and data URLs have no host and are always refused. Only the
# scheme and the authority are consumed, so a URL nested in another's path is found too.
# A scheme is read as its last 32 characters at most: unbounded, the search would be
# quadratic in the length of a word.
_SCHEME_URL = re.compile(
    r"(?:https?:[/\\]*|[a-z][a-z0-9+.-]{0,31}:[/\\]{2}|\b(?P<script>javascript|vbscript|data):(?=\S))"
    r"(?P<authority>[^\s/\\?#]*)",
    re.IGNORECASE,
)
# The whole of such a URL, path included: what the bare forms below must not look into.
_SCHEME_URL_SPAN = re.compile(_SCHEME_URL.pattern + r"\S*", re.IGNORECASE)
# Links without a scheme: a "www." host, or a host with a top-level domain of letters
# followed by a path ("shop.example/returns"). A bare "name.tld" is not taken for a
# link: "today.Thanks" would be one.
_BARE_LINK = re.compile(
    r"(?<![\w.@-])(?P<host>www\.[\w-]+(?:\.[\w-]+)*"
    r"|(?:[\w-]+\.)+[^\W\d_]{2,}(?=(?::\d+)?[/\\]))\S*",
    re.IGNORECASE,
)
_HOST = re.compile(r"[\w-]+(?:\.[\w-]+)*")
# Punctuation of the sentence around a link, not part of its host: "(see https://x.y)."
_TRAILING = ".,;:!?)]}'\"*>"


def check_answer(answer: ModelAnswer, *, allowed_link_domains: frozenset[str]) -> ModelAnswer:
    """``answer`` made safe to show a customer, as a new ``ModelAnswer``.

    - Actions whose type (lower-cased, stripped) is not in ``ALLOWED_ACTIONS`` are
      dropped; the others keep that normalised type.
    - A link in the text or in an action's ``detail`` to a host that is neither one of
      ``allowed_link_domains`` nor a subdomain of one raises ``InvalidModelOutput``.
      Hosts that cannot be read plainly (percent-encoded, IP literals, odd characters)
      are refused too.
    - Personal data in the text and the details is redacted (``app.pii.redact``).
    """
    allowed = frozenset(d.strip().strip(".").lower() for d in allowed_link_domains) - {""}
    for text in [answer.answer, *(a.detail for a in answer.actions)]:
        for host in _link_hosts(text):
            if not _host_allowed(host, allowed):
                raise InvalidModelOutput(
                    f"model answer links to {host!r}, which is not an allowed domain"
                )
    actions = [
        ProposedAction(type=kind, order_id=action.order_id, detail=redact(action.detail))
        for action in answer.actions
        if (kind := action.type.strip().lower()) in ALLOWED_ACTIONS
    ]
    # model_copy does not validate: redaction may lengthen a text past the model's limit
    # ("a@b.io" becomes "[EMAIL]"), which is no reason to refuse it.
    return answer.model_copy(update={"answer": redact(answer.answer), "actions": actions})


def _link_hosts(text: str) -> Iterator[str]:
    """The host of every link in ``text``, as a browser would read it."""
    for match in _SCHEME_URL.finditer(text):
        if match["script"]:
            yield match[0]
            continue
        authority = match["authority"].rstrip(_TRAILING)
        # Whatever comes before the last "@" is a user name, not the host.
        host = authority.rpartition("@")[2]
        yield host if host.startswith("[") else host.partition(":")[0]
    without_urls = _SCHEME_URL_SPAN.sub(lambda m: " " * len(m[0]), text)
    for match in _BARE_LINK.finditer(without_urls):
        yield match["host"]


def _host_allowed(host: str, allowed: frozenset[str]) -> bool:
    host = host.rstrip(".").lower()
    if not _HOST.fullmatch(host):
        return False
    return any(host == domain or host.endswith("." + domain) for domain in allowed)
