"""Schema evolution within one version: what may change in ``schemas/<name>.v1.json``.

A schema keeps its version (file name, topic name, ``schema_version``) only while every
party that followed the released file keeps working. Who that is depends on direction:

- **consumed** (arttag reads, another system writes: the artwork events). Writers that
  followed the released schema must still be accepted, so the new schema may only accept
  *more*: no property removed, none newly required, no type narrowed, no enum value
  dropped, ``additionalProperties`` not closed, no bound tightened or added (``maxLength``,
  ``minLength``, ``maximum``, ``minimum``, ``maxItems``, ``minItems``, ``pattern``).
- **produced** (arttag writes, downstream systems read: suggestions, feedback, dead
  letters). Readers coded against the released schema must understand every new record,
  so the new schema may only promise *more*: no property removed, none made optional, no
  type widened, no enum value added, ``additionalProperties`` not opened, no bound loosened
  or dropped. New optional properties are allowed: readers must ignore unknown fields.
- **read back** (a produced schema whose retained records arttag itself reads again:
  :data:`READ_BACK`). The new code must still read every old record the topic keeps, so
  the consumed rules hold as well as the produced ones (:func:`rule_sets`): in effect a
  new optional property is the only change to the shape.

A property is never renamed (that is a removal). Anything else needs a new version: a
``.v2`` schema and topic beside the ``.v1`` ones (see docs/topics.md).

Example::

    problems = compare(released_schema, current_schema, "produced")
    for p in problems:
        print(p)   # "$.suggestions[].confidence: maximum loosened (1.0 -> 2.0)"
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Direction = Literal["consumed", "produced"]

READ_BACK: dict[str, str] = {
    "tag-suggestions-published.v1":
        "tags.suggestions.latest.v1 is compacted and read from the beginning by the API's latest "
        "view, the worker's state and `arttag replay`; `arttag tail` reads the history",
    "tag-feedback-given.v1":
        "tags.feedback.v1 is kept forever and folded again by `arttag curate` on every rebuild; "
        "the worker's data-quality monitor reads it",
    "tag-decisions-changed.v1":
        "tags.decisions.v1 is compacted and read from the beginning by the decisions followers "
        "(online learning) and `arttag train --decisions kafka:`",
    "dead-letter.v1":
        "arttag.deadletter.v1 keeps 30 days, replayed by `arttag replay --dead-letters` and "
        "shown by `arttag tail dead-letters`",
}
"""Produced schemas whose records arttag reads back itself, and which of its readers do.

Their topics keep old records (compacted, or retained for days or forever), and a newer
arttag must read what an older one wrote: a field newly required, a type narrowed or an enum
shrunk would make retained records unreadable, so these schemas are also held to the consumed
rules. tests/test_read_back.py derives the list from the code (every decoding of a produced
model in shared/ and services/) and fails when the two differ."""

# keyword -> True when a larger value is looser (an upper bound), False for a lower bound
_BOUNDS = {
    "maxLength": True, "maxItems": True, "maximum": True, "exclusiveMaximum": True,
    "maxProperties": True,
    "minLength": False, "minItems": False, "minimum": False, "exclusiveMinimum": False,
    "minProperties": False,
}
_TYPES = ("string", "number", "integer", "boolean", "object", "array", "null")


@dataclass(frozen=True)
class Problem:
    """One breaking change: where (a JSON path), which rule, and what changed."""

    path: str
    rule: str
    detail: str

    def __str__(self) -> str:
        return f"{self.path}: {self.rule} ({self.detail})"


def _resolve(root: dict, node: Any) -> Any:
    seen = set()
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        if ref in seen or not ref.startswith("#/"):
            break
        seen.add(ref)
        target: Any = root
        for part in ref[2:].split("/"):
            target = target[part]
        rest = {k: v for k, v in node.items() if k != "$ref"}
        node = {**target, **rest} if rest else target
    return node


def _variants(root: dict, node: Any) -> list[Any]:
    """A union (``anyOf``/``oneOf``) as its resolved alternatives; anything else as itself."""
    node = _resolve(root, node)
    if isinstance(node, dict):
        for key in ("anyOf", "oneOf"):
            if key in node:
                out = []
                for v in node[key]:
                    out += _variants(root, v)
                return out
    return [node]


def _types(node: dict) -> set[str] | None:
    """The JSON types a node allows, or None for any; integer counts as a kind of number."""
    if "const" in node:
        value = node["const"]
        return {_type_of(value)}
    if "enum" in node:
        return {_type_of(v) for v in node["enum"]}
    t = node.get("type")
    if t is None:
        return None
    return set(t) if isinstance(t, list) else {t}


def _type_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _covers(wide: set[str] | None, narrow: set[str] | None) -> bool:
    if wide is None:
        return True
    if narrow is None:
        return False
    return all(t in wide or (t == "integer" and "number" in wide) for t in narrow)


def _values(node: dict) -> list[Any] | None:
    if "const" in node:
        return [node["const"]]
    return list(node["enum"]) if "enum" in node else None


class _Comparer:
    def __init__(self, old_root: dict, new_root: dict, direction: Direction) -> None:
        self.old_root, self.new_root, self.direction = old_root, new_root, direction
        # produced: new must fit inside old; consumed: old must fit inside new
        self.consumed = direction == "consumed"
        self._active: set[tuple[int, int]] = set()

    def compare(self, old: Any, new: Any, path: str) -> list[Problem]:
        pair = (id(old), id(new))
        if pair in self._active:  # a recursive definition: its first visit checks it
            return []
        self._active.add(pair)
        try:
            return self._compare(old, new, path)
        finally:
            self._active.discard(pair)

    def _compare(self, old: Any, new: Any, path: str) -> list[Problem]:
        old_vs, new_vs = _variants(self.old_root, old), _variants(self.new_root, new)
        if len(old_vs) == 1 and len(new_vs) == 1:
            return self._node(old_vs[0], new_vs[0], path)
        # A union: every alternative on the side that must fit has to fit one on the other.
        inner, outer = (old_vs, new_vs) if self.consumed else (new_vs, old_vs)
        problems: list[Problem] = []
        for alt in inner:
            candidates = [self._node(*((alt, o) if self.consumed else (o, alt)), path)
                          for o in outer]
            if any(not c for c in candidates):
                continue
            same_type = [c for c, o in zip(candidates, outer)
                         if isinstance(o, dict) and isinstance(alt, dict)
                         and _types(o) == _types(alt)]
            if same_type:
                problems += min(same_type, key=len)
            else:
                what = "no longer accepted" if self.consumed else "not in the released schema"
                problems.append(Problem(path, "type narrowed" if self.consumed else "type widened",
                                        f"alternative {_describe(alt)} {what}"))
        return problems

    def _node(self, old: Any, new: Any, path: str) -> list[Problem]:
        if isinstance(old, bool) or isinstance(new, bool) or not isinstance(old, dict) \
                or not isinstance(new, dict):
            if old == new:
                return []
            return [Problem(path, "schema changed", f"{old!r} -> {new!r}")]
        problems: list[Problem] = []
        problems += self._type(old, new, path)
        problems += self._enum(old, new, path)
        problems += self._bounds(old, new, path)
        problems += self._pattern(old, new, path)
        problems += self._object(old, new, path)
        if "items" in old or "items" in new:
            problems += self.compare(old.get("items", {}), new.get("items", {}), f"{path}[]")
        return problems

    def _type(self, old: dict, new: dict, path: str) -> list[Problem]:
        ot, nt = _types(old), _types(new)
        if self.consumed and not _covers(nt, ot):
            return [Problem(path, "type narrowed", f"{_fmt(ot)} -> {_fmt(nt)}")]
        if not self.consumed and not _covers(ot, nt):
            return [Problem(path, "type widened", f"{_fmt(ot)} -> {_fmt(nt)}")]
        return []

    def _enum(self, old: dict, new: dict, path: str) -> list[Problem]:
        ov, nv = _values(old), _values(new)
        if ov == nv:
            return []
        if self.consumed and nv is not None:
            dropped = ["any other value"] if ov is None else [v for v in ov if v not in nv]
            if dropped:
                return [Problem(path, "enum shrunk", f"{dropped} no longer accepted")]
        if not self.consumed and ov is not None:
            added = ["any value"] if nv is None else [v for v in nv if v not in ov]
            if added:
                return [Problem(path, "enum widened", f"{added} may now be sent")]
        return []

    def _bounds(self, old: dict, new: dict, path: str) -> list[Problem]:
        problems = []
        for key, upper in _BOUNDS.items():
            o, n = old.get(key), new.get(key)
            if o == n:
                continue
            # "tighter": the new bound accepts less than the old one
            if n is None:
                tighter = False
            elif o is None:
                tighter = True
            else:
                tighter = n < o if upper else n > o
            if self.consumed and tighter:
                verb = "added" if o is None else "tightened"
                problems.append(Problem(path, f"{key} {verb}", f"{o} -> {n}"))
            elif not self.consumed and not tighter:
                verb = "dropped" if n is None else "loosened"
                problems.append(Problem(path, f"{key} {verb}", f"{o} -> {n}"))
        return problems

    def _pattern(self, old: dict, new: dict, path: str) -> list[Problem]:
        o, n = old.get("pattern"), new.get("pattern")
        if o == n:
            return []
        if self.consumed and n is not None:
            return [Problem(path, "pattern added" if o is None else "pattern changed", f"{o!r} -> {n!r}")]
        if not self.consumed and o is not None:
            return [Problem(path, "pattern dropped" if n is None else "pattern changed", f"{o!r} -> {n!r}")]
        return []

    def _object(self, old: dict, new: dict, path: str) -> list[Problem]:
        problems = []
        old_props, new_props = old.get("properties", {}), new.get("properties", {})
        for name in old_props:
            if name not in new_props:
                problems.append(Problem(f"{path}.{name}", "property removed",
                                        "a property is never removed or renamed within a version"))
            else:
                problems += self.compare(old_props[name], new_props[name], f"{path}.{name}")
        old_req, new_req = set(old.get("required", ())), set(new.get("required", ()))
        if self.consumed:
            for name in sorted(new_req - old_req):
                problems.append(Problem(f"{path}.{name}", "property made required",
                                        "writers following the released schema may omit it"))
        else:
            for name in sorted(old_req - new_req):
                if name in new_props:
                    problems.append(Problem(f"{path}.{name}", "property made optional",
                                            "readers of the released schema rely on it"))
        problems += self._additional(old, new, path)
        return problems

    def _additional(self, old: dict, new: dict, path: str) -> list[Problem]:
        if "properties" not in old and "properties" not in new and "additionalProperties" not in old \
                and "additionalProperties" not in new:
            return []
        o, n = old.get("additionalProperties", True), new.get("additionalProperties", True)
        if o == n:
            return []
        if self.consumed and (n is False or (o is True and isinstance(n, dict))):
            return [Problem(path, "additionalProperties tightened", f"{o!r} -> {n!r}")]
        if not self.consumed and (o is False or (n is True and isinstance(o, dict))):
            return [Problem(path, "additionalProperties opened", f"{o!r} -> {n!r}")]
        if isinstance(o, dict) and isinstance(n, dict):
            return self.compare(o, n, f"{path}.*")
        return []


def _fmt(types: set[str] | None) -> str:
    return "any" if types is None else "|".join(sorted(types, key=_TYPES.index))


def _describe(node: Any) -> str:
    if isinstance(node, dict):
        values = _values(node)
        if values is not None:
            return repr(values[0]) if len(values) == 1 else repr(values)
        if "title" in node and _types(node) == {"object"}:
            return str(node["title"])
        return _fmt(_types(node))
    return repr(node)


def rule_sets(name: str, direction: Direction) -> tuple[Direction, ...]:
    """The rule sets schema ``name`` is held to: its direction's, and for a produced schema that
    arttag reads back (:data:`READ_BACK`) the consumed rules too, since arttag is then a reader of
    its own old records."""
    if direction == "produced" and name in READ_BACK:
        return ("produced", "consumed")
    return (direction,)


def compare(old: dict, new: dict, direction: Direction) -> list[Problem]:
    """Every change from the released schema ``old`` to ``new`` that breaks the contract."""
    if direction not in ("consumed", "produced"):
        raise ValueError(f"direction is 'consumed' or 'produced', not {direction!r}")
    return _Comparer(old, new, direction).compare(old, new, "$")


def compare_schema(name: str, old: dict, new: dict, direction: Direction) -> list[Problem]:
    """:func:`compare` under every rule set schema ``name`` is held to (:func:`rule_sets`),
    each problem once."""
    problems: list[Problem] = []
    for rules in rule_sets(name, direction):
        problems += [p for p in compare(old, new, rules) if p not in problems]
    return problems
