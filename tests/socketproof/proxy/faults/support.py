"""Messages for the fault tests: text messages by their text, batches of them, their texts back."""

from __future__ import annotations

from socketproof.proxy.faults import Message, Scheduled, parse_spec


def msg(text: str) -> Message:
    return Message(True, (text,))


def batch(*texts: str, now: float = 0.0) -> list[Scheduled]:
    return [(msg(text), now) for text in texts]


def names(scheduled: list[Scheduled]) -> list[str]:
    return ["".join(str(chunk) for chunk in message.chunks) for message, _ in scheduled]


def round_trip(text: str) -> str:
    """The spec `text` parsed and described again (it must parse to the same spec)."""
    spec = parse_spec(text)
    assert parse_spec(spec.describe()) == spec
    return spec.describe()
