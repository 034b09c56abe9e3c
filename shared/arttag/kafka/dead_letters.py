"""Dead letters: a consumed record that cannot be answered, kept with the reason, within a
record's size. One rule for every processor that dead-letters (the stream worker, ``arttag
replay``, ``arttag curate``): the original key and value kept whole when the dead letter then
fits in a record, else their first bytes with lengths and sha256 digests; keyed by the
original's key (:func:`arttag.kafka.sink.dead_letter_key`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from arttag import limits
from arttag.events import DeadLetter, encode_event
from arttag.kafka.sink import dead_letter_key


@dataclass(frozen=True)
class RawMessage:
    """One consumed Kafka record, as bytes, with where it came from."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int | None = None

    @property
    def where(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"


def record_size(key: bytes | None, value: bytes | None, headers: Sequence[tuple[str, bytes]] = ()) -> int:
    """What a record adds up to against a size limit: key, value and headers."""
    return (len(key or b"") + len(value or b"")
            + sum(len(name.encode()) + len(v or b"") for name, v in headers))


def bounded_text(text: str, max_chars: int = limits.MAX_ERROR_CHARS) -> str:
    """``text`` cut to ``max_chars`` with a note of its length; encodable as UTF-8 whatever it held."""
    text = text.encode("utf-8", "replace").decode("utf-8")
    if len(text) <= max_chars:
        return text
    note = f"... [{len(text)} characters in all]"
    return text[:max(max_chars - len(note), 0)] + note


def make_dead_letter(
    message: RawMessage,
    error: str,
    error_type: str,
    consumer: str,
    *,
    max_record_bytes: int = limits.DEFAULT_MAX_RECORD_BYTES,
    attempts: int | None = None,
    keep_whole: bool = True,
) -> DeadLetter:
    """A dead letter for ``message`` whose record is at most ``max_record_bytes``.

    The original key and value are kept whole when the record then fits (and ``keep_whole``);
    otherwise the first ``limits.DEAD_LETTER_PREFIX_BYTES`` of each, with lengths and sha256
    digests (the source topic, partition and offset locate the original).
    """
    fields = dict(
        topic=message.topic, partition=message.partition, offset=message.offset,
        error=bounded_text(error), error_type=error_type, consumer=consumer, attempts=attempts,
    )
    key = dead_letter_key(message.key)
    original = len(message.value or b"") + len(message.key or b"")
    if keep_whole and (original + 2) // 3 * 4 < max_record_bytes:  # base64 alone would not fit: do not try
        whole = DeadLetter.for_message(message.value, message.key, **fields)
        if record_size(key, encode_event(whole)) <= max_record_bytes:
            return whole
    short = DeadLetter.for_message(message.value, message.key, keep_whole=False, **fields)
    if record_size(key, encode_event(short)) > max_record_bytes:
        # Only a consumer name or topic of absurd length gets here: keep just the facts.
        fields["error"] = bounded_text(error, 200)
        short = DeadLetter.for_message(message.value, message.key, keep_whole=False,
                                       prefix_bytes=0, **fields)
    return short
