"""flowdesk's exceptions: one root, and a subclass per thing that can go wrong.

Each error that reaches the dead-letter topic has a short ``error_type`` (its
``error.type`` header) and a message that says what was wrong with the input.
"""

from __future__ import annotations


class FlowdeskError(Exception):
    """Root of every flowdesk error."""

    error_type = "flowdesk_error"


class ConfigurationError(FlowdeskError):
    """A setting or an argument cannot work; the message says how to fix it."""

    error_type = "configuration"


class TopicSetupError(ConfigurationError):
    """The broker would not create a topic flowdesk needs."""

    error_type = "topic_setup"


class StackError(FlowdeskError):
    """A process of the embedded stack did not start or did not become healthy."""

    error_type = "stack"


class InputError(FlowdeskError):
    """An inbound or internal message cannot be processed; it is dead-lettered."""

    error_type = "invalid_input"


class DecodeError(InputError):
    """The bytes are not valid UTF-8 JSON (or Avro) of the expected shape."""

    error_type = "decode_error"


class ValidationError(InputError):
    """The message decodes but a field is missing, has the wrong type or is too large."""

    error_type = "validation_error"


class TooLarge(InputError):
    """The message, or what it would become, does not fit in one Kafka record."""

    error_type = "too_large"


class VoiceCallError(InputError):
    """A voice call or segment that cannot be answered (abandoned, conflicting, late)."""

    error_type = "voice_call"


class CallAbandoned(VoiceCallError):
    """A call went silent without its final segment; its segments are dead-lettered."""

    error_type = "call_abandoned"


class ModelError(FlowdeskError):
    """The model server could not give an answer."""

    error_type = "model_error"


class ModelUnavailable(ModelError):
    """The request failed: connection error, timeout, 5xx or 429."""

    error_type = "model_unavailable"

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class DeadlinePassed(ModelUnavailable):
    """The query's deadline passed before its request could be sent: not the server's fault."""

    error_type = "deadline_passed"


class InvalidModelOutput(ModelError):
    """The server answered, but the answer is not the JSON the pipeline asked for."""

    error_type = "invalid_model_output"
