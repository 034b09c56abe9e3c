"""Malformed and hostile artwork messages for the chaos benchmark, each a named case.

Every case is one Kafka record (key, value) for the created or updated topic. ``expect``
says what a correct worker does with it:

- ``dead_letter``: the message is not a valid artwork event; it must reach the dead-letter
  topic (with a reason) and the stream must go on;
- ``either``: the message is a valid event by the contract, but hostile (a 1 MB title,
  100,000 artists, control characters...); a suggestion or a dead letter are both correct,
  silence or a crash is not.

Every record stays under :data:`MAX_RECORD_BYTES` (key and value), so a broker with the
default ``message.max.bytes`` (1 MiB) accepts it and the worker, not the broker, has to
deal with it. Artwork ids start with :data:`POISON_PREFIX`, so suggestions for the
accepted cases are told apart from the valid stream.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from typing import Any, Literal

from arttag.events import ArtworkCreated, ArtworkMetadata, AssignedTag

MAX_RECORD_BYTES = 1_000_000
POISON_PREFIX = "chaos-poison-"

Expect = Literal["dead_letter", "either"]
TopicKind = Literal["created", "updated"]


@dataclass(frozen=True)
class PoisonCase:
    name: str
    description: str
    kind: TopicKind
    key: bytes | None
    value: bytes | None
    expect: Expect
    artwork_id: str | None = None
    """The artwork id a worker that accepts the message would answer for (None: not decodable)."""

    @property
    def size(self) -> int:
        return len(self.key or b"") + len(self.value or b"")


def _aid(name: str) -> str:
    return POISON_PREFIX + name


def _event(name: str, **artwork: Any) -> dict[str, Any]:
    """A valid artwork.created event as a JSON-ready dict (to be broken by the caller)."""
    meta = {"title": f"Chaos case {name}", "artists": ["Test, Artist"], "medium": "Oil paint on canvas",
            **artwork}
    event = ArtworkCreated(artwork_id=_aid(name), revision=1, artwork=ArtworkMetadata(title="x"),
                           source="arttag-chaos")
    data = event.model_dump(mode="json")
    data["artwork"] = meta
    return data


def _dumps(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False).encode("utf-8")


def _pad_text(size: int, seed: int = 7) -> str:
    """Deterministic words (not one repeated byte, which some code paths special-case)."""
    words = ["harbour", "light", "figure", "tree", "ship", "cloud", "river", "portrait", "abstract"]
    out, i, total = [], seed, 0
    while total < size:
        w = words[i % len(words)]
        out.append(w)
        total += len(w) + 1
        i = (i * 1103515245 + 12345) % 2**31
    return " ".join(out)[:size]


def _nested(depth: int, open_: str, close: str, inner: str = "1") -> str:
    return open_ * depth + inner + close * depth


def build_corpus() -> list[PoisonCase]:
    """The named cases, in a fixed order (the benchmark shuffles them with its seed)."""
    cases: list[PoisonCase] = []

    def add(name: str, description: str, value: bytes | None, expect: Expect = "dead_letter", *,
            key: bytes | None | str = "default", artwork_id: str | None = None) -> None:
        k = _aid(name).encode() if key == "default" else key
        kind: TopicKind = "created" if len(cases) % 2 == 0 else "updated"
        case = PoisonCase(name, description, kind, k, value, expect, artwork_id)  # type: ignore[arg-type]
        if case.size > MAX_RECORD_BYTES:
            raise ValueError(f"poison case {name} is {case.size} bytes, over {MAX_RECORD_BYTES}")
        cases.append(case)

    def valid(name: str, **artwork: Any) -> dict[str, Any]:
        return _event(name, **artwork)

    # -- not JSON at all --------------------------------------------------------------------------
    add("not_json", "plain text", b"this is not an artwork event")
    add("non_json_900kb", "900 KB of text that is not JSON (its dead letter is bigger than 1 MB "
        "once base64-encoded)", ("<" + _pad_text(900 * 1024)).encode())
    add("xml", "an XML document", b"<artwork><title>Harbour</title></artwork>")
    add("truncated_json", "a valid event cut in the middle", _dumps(valid("truncated_json"))[:80])
    add("trailing_garbage", "a valid event followed by more bytes",
        _dumps(valid("trailing_garbage")) + b" and then some")
    add("empty_value", "an empty value (zero bytes)", b"")
    add("tombstone", "a tombstone: the record has no value (None)", None)
    add("binary_zeros", "1,000 NUL bytes", b"\x00" * 1000)
    add("gzip_bytes", "a valid event, gzip-compressed", gzip.compress(_dumps(valid("gzip_bytes"))))
    add("protobuf_like", "protobuf-style binary (varint field tags)",
        b"\x08\x96\x01\x12\x07chaos-1\x1a\x05Title\x20\x01")
    add("raw_control_chars", "raw control bytes inside a JSON string (JSON forbids them)",
        _dumps(valid("raw_control_chars")).replace(b"Chaos case", b"Chaos\x01\x02\x1fcase"))
    # -- encodings ----------------------------------------------------------------------------------
    add("invalid_utf8", "bytes that are not UTF-8 inside a JSON string",
        _dumps(valid("invalid_utf8")).replace(b"Chaos case", b"Chaos \xff\xfe\xfa case"))
    add("utf16_bom", "a valid event encoded as UTF-16 with a byte-order mark",
        json.dumps(valid("utf16_bom")).encode("utf-16"))
    add("utf8_bom", "a valid event preceded by a UTF-8 byte-order mark",
        b"\xef\xbb\xbf" + _dumps(valid("utf8_bom")))
    add("surrogate_utf8_bytes", "a UTF-16 surrogate encoded as UTF-8 bytes (invalid UTF-8)",
        _dumps(valid("surrogate_utf8_bytes")).replace(b"Chaos case", b"Chaos \xed\xa0\x80 case"))
    add("lone_surrogate_escaped", "a lone surrogate written as a JSON escape (\\ud800) in the title",
        json.dumps(valid("lone_surrogate_escaped", title="Chaos \ud800 case")).encode("ascii"),
        "either", artwork_id=_aid("lone_surrogate_escaped"))
    # -- JSON that is not an event ---------------------------------------------------------------------
    add("null_value", "the JSON literal null", b"null")
    add("json_array", "a JSON array", b"[1, 2, 3]")
    add("json_string", "a JSON string", b'"artwork"')
    add("json_number", "a JSON number", b"42")
    add("nested_1000_arrays", "JSON arrays nested 1,000 deep", _nested(1000, "[", "]").encode())
    add("nested_1000_in_artwork", "a valid event whose description is objects nested 1,000 deep",
        _dumps(valid("nested_1000_in_artwork")).replace(
            b'"medium"', b'"description": ' + _nested(1000, '{"a":', "}").encode() + b', "medium"'))
    # -- schema violations -----------------------------------------------------------------------------
    data = valid("wrong_types")
    data.update(revision="one")
    data["artwork"].update(title=123, artists="Turner")
    add("wrong_types", "revision a string, title a number, artists a string", _dumps(data))
    data = valid("missing_artwork")
    del data["artwork"]
    add("missing_artwork", "no artwork field", _dumps(data))
    data = valid("missing_title")
    del data["artwork"]["title"]
    add("missing_title", "artwork without a title", _dumps(data))
    data = valid("missing_event_type")
    del data["event_type"]
    add("missing_event_type", "no event_type", _dumps(data))
    add("unknown_event_type", "event_type artwork.deleted",
        _dumps({**valid("unknown_event_type"), "event_type": "artwork.deleted"}))
    add("empty_artwork_id", "artwork_id is the empty string", _dumps({**valid("x"), "artwork_id": ""}))
    add("negative_revision", "revision -1", _dumps({**valid("negative_revision"), "revision": -1}))
    add("revision_float", "revision 1.5", _dumps({**valid("revision_float"), "revision": 1.5}))
    add("revision_nan", "revision NaN (Python's json accepts the literal)",
        _dumps(valid("revision_nan")).replace(b'"revision": 1', b'"revision": NaN'))
    add("year_infinity", "artwork.year Infinity", _dumps(valid("year_infinity")).replace(
        b'"medium"', b'"year": Infinity, "medium"'))
    add("revision_5000_digits", "revision with 5,000 digits (Python refuses to parse ints "
        "over 4,300 digits)", _dumps(valid("revision_5000_digits")).replace(
            b'"revision": 1', b'"revision": 1' + b"0" * 4999))
    add("schema_version_2", "schema_version 2", _dumps({**valid("schema_version_2"), "schema_version": 2}))
    add("bad_occurred_at", "occurred_at is not a date",
        _dumps({**valid("bad_occurred_at"), "occurred_at": "yesterday"}))
    add("artwork_is_list", "artwork is a list", _dumps({**valid("artwork_is_list"), "artwork": []}))
    add("accession_number_too_long", "accession_number over its 64-character limit",
        _dumps(valid("accession_number_too_long", accession_number="D" * 500)))
    add("key_missing_invalid", "no key, and a value that is not JSON", b"{not json", key=None)
    # -- valid by the contract, but hostile ------------------------------------------------------------
    big_id = _aid("artwork_id_400kb") + "A" * (400 * 1024)
    add("artwork_id_400kb", "a 400 KB artwork_id (and key, as producers key by artwork id)",
        _dumps({**valid("artwork_id_400kb"), "artwork_id": big_id}), "either",
        key=big_id.encode(), artwork_id=big_id)
    shell = len(_dumps(valid("title_1mb", title="")))
    add("title_1mb", "a valid event whose title makes the record 1 MB",
        _dumps(valid("title_1mb", title=_pad_text(MAX_RECORD_BYTES - shell - 64))), "either",
        artwork_id=_aid("title_1mb"))
    add("huge_artists_array", "100,000 artists", _dumps(valid(
        "huge_artists_array", artists=[f"A{i % 10}" for i in range(100_000)])), "either",
        artwork_id=_aid("huge_artists_array"))
    tags = [AssignedTag(id=str(i), label=f"t{i}").model_dump(mode="json") for i in range(20_000)]
    add("huge_tags_array", "20,000 assigned tags", _dumps(valid("huge_tags_array", tags=tags)),
        "either", artwork_id=_aid("huge_tags_array"))
    add("control_chars_escaped", "every control character, JSON-escaped, in the title",
        json.dumps(valid("control_chars_escaped",
                         title="Chaos " + "".join(chr(c) for c in range(32)) + " case")).encode(),
        "either", artwork_id=_aid("control_chars_escaped"))
    add("whitespace_title", "a title of blanks only", _dumps(valid("whitespace_title", title="   ")),
        "either", artwork_id=_aid("whitespace_title"))
    add("duplicate_keys", "artwork_id given twice with different values",
        _dumps(valid("duplicate_keys")).replace(
            b'"artwork_id":', b'"artwork_id": "someone-else", "artwork_id":', 1),
        "either", artwork_id=_aid("duplicate_keys"))
    add("revision_2_pow_80", "revision 2**80 (no 64-bit integer holds it)",
        _dumps({**valid("revision_2_pow_80"), "revision": 2**80}), "either",
        artwork_id=_aid("revision_2_pow_80"))
    add("key_missing_valid", "a valid event without a key", _dumps(valid("key_missing_valid")),
        "either", key=None, artwork_id=_aid("key_missing_valid"))
    add("key_mismatch", "a valid event whose key is another artwork's id",
        _dumps(valid("key_mismatch")), "either", key=b"some-other-artwork",
        artwork_id=_aid("key_mismatch"))
    names = [c.name for c in cases]
    assert len(set(names)) == len(names), "case names must be unique"
    return cases
