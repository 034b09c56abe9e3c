"""Schema evolution: the current schemas keep the released contracts (schemas/released/),
and the checker itself, rule by rule, on small synthetic pairs."""

from __future__ import annotations

import json
import re
import tomllib
from datetime import date
from pathlib import Path

import pytest
from arttag.events import SCHEMA_MODELS
from arttag.schema_compat import READ_BACK, Problem, compare, compare_schema, rule_sets
from arttag.schema_snapshot import RELEASE_FILE, Release, SnapshotError, load_snapshot, read_release

REPO = Path(__file__).resolve().parents[1]
SCHEMAS = REPO / "schemas"
RELEASED = SCHEMAS / "released"


def direction_of(name: str) -> str:
    """Strict models are what arttag produces; tolerant ones what it consumes (arttag.events)."""
    return "produced" if SCHEMA_MODELS[name].model_config.get("extra") == "forbid" else "consumed"


def held_to(name: str) -> str:
    """How a schema is checked, for the report: "produced, read back" for both rule sets."""
    return direction_of(name) + (", read back" if len(rule_sets(name, direction_of(name))) > 1 else "")


def test_current_schemas_keep_the_released_contracts():
    snapshot = load_snapshot(RELEASED)
    accepted = json.loads((RELEASED / "accepted-changes.json").read_text())
    for entry in accepted:
        assert {"schema", "path", "rule", "reason"} <= set(entry) and entry["reason"].strip(), entry
    used: set[int] = set()
    broken: list[str] = []
    for name, released in snapshot.schemas.items():
        current = SCHEMAS / f"{name}.json"
        if not current.exists() or name not in SCHEMA_MODELS:
            broken.append(f"{name}: released schema is gone (retire a version only at a release)")
            continue
        problems = compare_schema(name, released, json.loads(current.read_text()), direction_of(name))
        for problem in problems:
            match = [i for i, e in enumerate(accepted) if e["schema"] == name
                     and e["path"] == problem.path and e["rule"] == problem.rule]
            if match:
                used.update(match)
            else:
                broken.append(f"{name} ({held_to(name)}) {problem}")
    assert not broken, (
        f"breaking changes within a schema version since release {snapshot.release}:\n  "
        + "\n  ".join(broken)
        + "\nKeep the released contract, add a .v2 schema and topic, or record a deliberate "
          "change in schemas/released/accepted-changes.json (see schemas/released/README.md)."
    )
    stale = [e for i, e in enumerate(accepted) if i not in used]
    assert not stale, f"accepted changes that no longer happen (remove them): {stale}"


def test_every_schema_is_released_or_declared_new():
    """A schema without a released snapshot escapes the check above: it must be declared new
    (schemas/released/new-schemas.json), and an entry whose schema was released is stale."""
    declared = json.loads((RELEASED / "new-schemas.json").read_text())
    for entry in declared:
        assert {"schema", "reason"} <= set(entry) and entry["reason"].strip(), entry
    new = {e["schema"] for e in declared}
    released = {p.name.removesuffix(".json") for p in RELEASED.glob("*.v*.json")}
    current = {p.name.removesuffix(".json") for p in SCHEMAS.glob("*.v*.json")}
    assert not current - released - new, (
        f"schemas neither released nor declared new: {sorted(current - released - new)}; "
        "add them to schemas/released/new-schemas.json")
    assert not new & released, f"released, so no longer new (remove them): {sorted(new & released)}"
    assert not new - current, f"declared new but not in schemas/: {sorted(new - current)}"


def test_the_snapshot_records_a_release_no_later_than_the_project():
    release = read_release(RELEASED)
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert re.fullmatch(r"\d+(\.\d+)*", project), f"pyproject.toml's version {project!r} is not numeric"
    assert release.version_key() <= Release(project, release.date).version_key(), (
        f"the snapshot says release {release}, after the project's version {project}")
    assert release.date <= date.today()


def test_a_snapshot_without_its_release_is_refused(tmp_path):
    (tmp_path / "dead-letter.v1.json").write_text((RELEASED / "dead-letter.v1.json").read_text())
    with pytest.raises(SnapshotError, match="does not say which release"):
        load_snapshot(tmp_path)
    for recorded, complaint in [({"date": "2026-11-30"}, "'version'"),
                                ({"version": "0.1.0"}, "'date'"),
                                ({"version": "next", "date": "2026-11-30"}, "'version'"),
                                ({"version": "0.1.0", "date": "30/11/2026"}, "'date'")]:
        (tmp_path / RELEASE_FILE).write_text(json.dumps(recorded))
        with pytest.raises(SnapshotError, match=complaint):
            load_snapshot(tmp_path)
    (tmp_path / RELEASE_FILE).write_text(json.dumps({"version": "0.1.0", "date": "2026-11-30"}))
    snapshot = load_snapshot(tmp_path)
    assert str(snapshot.release) == "0.1.0 (2026-11-30)" and list(snapshot.schemas) == ["dead-letter.v1"]


# -- schemas arttag reads back: both rule sets ---------------------------------------------------------


def test_every_schema_read_back_is_a_produced_one():
    assert READ_BACK, "arttag reads back its suggestions, feedback, decisions and dead letters"
    for name, readers in READ_BACK.items():
        assert name in SCHEMA_MODELS and direction_of(name) == "produced", name
        assert readers.strip(), name
        assert rule_sets(name, "produced") == ("produced", "consumed")
    assert rule_sets("artwork-created.v1", "consumed") == ("consumed",)
    assert rule_sets("not-read-back.v1", "produced") == ("produced",)


def test_a_read_back_schema_refuses_a_newly_required_property():
    old, new = obj({"a": S}, ["a"], False), obj({"a": S, "b": S}, ["a", "b"], False)
    # downstream readers are fine (every new record has it), arttag reading its old records is not
    assert compare_schema("not-read-back.v1", old, new, "produced") == []
    assert [(p.path, p.rule) for p in compare_schema("tag-feedback-given.v1", old, new, "produced")] == \
        [("$.b", "property made required")]


def test_a_read_back_schema_refuses_a_narrowed_type():
    old, new = obj({"n": {"anyOf": [I, NULL]}}), obj({"n": I})
    assert compare_schema("not-read-back.v1", old, new, "produced") == []
    assert [p.rule for p in compare_schema("dead-letter.v1", old, new, "produced")] == ["type narrowed"]
    assert [p.rule for p in compare_schema("dead-letter.v1", obj({"x": N}), obj({"x": I}), "produced")] == \
        ["type narrowed"]


def test_a_read_back_schema_refuses_a_shrunk_enum():
    ab, abc = {"enum": ["a", "b"], "type": "string"}, {"enum": ["a", "b", "c"], "type": "string"}
    assert compare_schema("not-read-back.v1", obj({"k": abc}), obj({"k": ab}), "produced") == []
    assert [p.rule for p in compare_schema("tag-decisions-changed.v1", obj({"k": abc}), obj({"k": ab}),
                                           "produced")] == ["enum shrunk"]


def test_a_read_back_schema_refuses_a_tightened_bound():
    old, new = obj({"c": S}), obj({"c": S | {"maxLength": 100}})
    assert compare_schema("not-read-back.v1", old, new, "produced") == []
    assert [p.rule for p in compare_schema("tag-feedback-given.v1", old, new, "produced")] == ["maxLength added"]


def test_a_read_back_schema_still_refuses_what_downstream_readers_cannot_take():
    old, new = obj({"a": S}, ["a"]), obj({"a": S})
    assert [p.rule for p in compare_schema("tag-suggestions-published.v1", old, new, "produced")] == \
        ["property made optional"]
    # and a property removed is reported once, not once per rule set
    assert [p.rule for p in compare_schema("tag-suggestions-published.v1", obj({"a": S, "b": S}),
                                           obj({"a": S}), "produced")] == ["property removed"]


def test_a_read_back_schema_allows_a_new_optional_property():
    old = obj({"a": S}, ["a"], False)
    new = obj({"a": S, "b": {"anyOf": [S, NULL]}, "c": {"type": "boolean", "default": False}}, ["a"], False)
    for name in READ_BACK:
        assert compare_schema(name, old, new, "produced") == [], name


def test_the_released_schemas_read_back_would_catch_a_real_narrowing():
    """On a real released schema: dead letters' ``original_key_b64`` is ``string|null``; made a
    plain string, an old dead letter without a key could no longer be replayed."""
    released = json.loads((RELEASED / "dead-letter.v1.json").read_text())
    narrowed = json.loads(json.dumps(released))
    narrowed["properties"]["original_key_b64"] = {"type": "string"}
    problems = compare_schema("dead-letter.v1", released, narrowed, "produced")
    assert [(p.path, p.rule) for p in problems] == [("$.original_key_b64", "type narrowed")]


# -- the checker on synthetic pairs -------------------------------------------------------------------


def obj(props: dict, required=(), additional=None, **extra) -> dict:
    node = {"type": "object", "properties": props, "required": list(required), **extra}
    if additional is not None:
        node["additionalProperties"] = additional
    return node


S, I, N, NULL = {"type": "string"}, {"type": "integer"}, {"type": "number"}, {"type": "null"}


def rules(old: dict, new: dict, direction: str) -> list[str]:
    return [p.rule for p in compare(old, new, direction)]


@pytest.mark.parametrize("direction", ["consumed", "produced"])
def test_identical_schemas_pass(direction):
    schema = obj({"a": S, "b": {"anyOf": [I, NULL]}}, ["a"], additional=False)
    assert compare(schema, json.loads(json.dumps(schema)), direction) == []


@pytest.mark.parametrize("direction", ["consumed", "produced"])
def test_removing_or_renaming_a_property_is_refused_both_ways(direction):
    assert rules(obj({"a": S, "b": S}), obj({"a": S}), direction) == ["property removed"]
    problems = compare(obj({"a": S}), obj({"a2": S}), direction)
    assert [(p.path, p.rule) for p in problems] == [("$.a", "property removed")]


def test_consumed_refuses_a_newly_required_property_and_allows_a_new_optional_one():
    assert rules(obj({"a": S}), obj({"a": S, "b": S}, ["b"]), "consumed") == ["property made required"]
    assert rules(obj({"a": S}, ["a"]), obj({"a": S}, ["a"]) | {"required": ["a"]}, "consumed") == []
    assert rules(obj({"a": S}), obj({"a": S, "b": S}), "consumed") == []
    assert rules(obj({"a": S}, ["a"]), obj({"a": S}), "consumed") == []  # optional now: fine


def test_produced_refuses_dropping_a_requirement_and_allows_new_fields():
    assert rules(obj({"a": S}, ["a"]), obj({"a": S}), "produced") == ["property made optional"]
    assert rules(obj({"a": S}, ["a"], False), obj({"a": S, "b": {"anyOf": [S, NULL]}}, ["a"], False),
                 "produced") == []  # readers ignore unknown fields
    assert rules(obj({"a": S}), obj({"a": S, "b": S}, ["b"]), "produced") == []


def test_types_narrowed_for_consumed_and_widened_for_produced():
    nullable_int = obj({"x": {"anyOf": [I, NULL]}})
    plain_int = obj({"x": I})
    assert rules(nullable_int, plain_int, "consumed") == ["type narrowed"]
    assert rules(nullable_int, plain_int, "produced") == []
    assert rules(plain_int, nullable_int, "produced") == ["type widened"]
    assert rules(plain_int, nullable_int, "consumed") == []
    # integer is a kind of number
    assert rules(obj({"x": N}), obj({"x": I}), "consumed") == ["type narrowed"]
    assert rules(obj({"x": I}), obj({"x": N}), "consumed") == []
    assert rules(obj({"x": I}), obj({"x": N}), "produced") == ["type widened"]
    assert rules(obj({"x": S}), obj({"x": I}), "produced") == ["type widened"]


def test_enums_shrunk_for_consumed_and_widened_for_produced():
    ab, abc = {"enum": ["a", "b"], "type": "string"}, {"enum": ["a", "b", "c"], "type": "string"}
    assert rules(obj({"k": abc}), obj({"k": ab}), "consumed") == ["enum shrunk"]
    assert rules(obj({"k": ab}), obj({"k": abc}), "consumed") == []
    assert rules(obj({"k": ab}), obj({"k": abc}), "produced") == ["enum widened"]
    assert rules(obj({"k": abc}), obj({"k": ab}), "produced") == []
    assert rules(obj({"k": S}), obj({"k": ab}), "consumed") == ["enum shrunk"]  # free text -> list
    assert rules(obj({"k": {"const": 1}}), obj({"k": {"const": 2}}), "consumed") == ["enum shrunk"]


def test_additional_properties_tightened_for_consumed_and_opened_for_produced():
    assert rules(obj({"a": S}), obj({"a": S}, additional=False), "consumed") == \
        ["additionalProperties tightened"]
    assert rules(obj({"a": S}, additional=False), obj({"a": S}), "consumed") == []
    assert rules(obj({"a": S}, additional=False), obj({"a": S}), "produced") == \
        ["additionalProperties opened"]
    assert rules(obj({"a": S}), obj({"a": S}, additional=False), "produced") == []


def test_bounds_tightened_for_consumed_and_loosened_for_produced():
    # a maxLength added to an input contract: writers of longer values are now refused
    assert rules(obj({"t": S}), obj({"t": S | {"maxLength": 2000}}), "consumed") == ["maxLength added"]
    assert rules(obj({"t": S | {"maxLength": 10}}), obj({"t": S | {"maxLength": 5}}), "consumed") == \
        ["maxLength tightened"]
    assert rules(obj({"t": S | {"maxLength": 5}}), obj({"t": S | {"maxLength": 10}}), "consumed") == []
    # the same limit on an output contract only promises more
    assert rules(obj({"t": S}), obj({"t": S | {"maxLength": 2000}}), "produced") == []
    assert rules(obj({"t": S | {"maxLength": 5}}), obj({"t": S}), "produced") == ["maxLength dropped"]
    unit = {"type": "number", "minimum": 0.0, "maximum": 1.0}
    assert rules(obj({"c": unit}), obj({"c": unit | {"maximum": 2.0}}), "produced") == ["maximum loosened"]
    assert rules(obj({"c": unit}), obj({"c": unit | {"minimum": 0.5}}), "consumed") == ["minimum tightened"]
    assert rules(obj({"r": I}), obj({"r": I | {"minimum": 0}}), "consumed") == ["minimum added"]
    assert rules(obj({"s": S}), obj({"s": S | {"pattern": "^D"}}), "consumed") == ["pattern added"]
    assert rules(obj({"s": S | {"pattern": "^D"}}), obj({"s": S}), "produced") == ["pattern dropped"]


def test_changes_inside_nullable_fields_arrays_and_refs_are_found():
    old = {"type": "object", "$defs": {"Tag": obj({"id": S, "label": {"anyOf": [S, NULL]}}, ["id"])},
           "properties": {"tags": {"type": "array", "items": {"$ref": "#/$defs/Tag"}}}}
    new = json.loads(json.dumps(old))
    new["$defs"]["Tag"]["properties"]["label"]["anyOf"][0]["maxLength"] = 50
    [problem] = compare(old, new, "consumed")
    assert problem == Problem("$.tags[].label", "maxLength added", "None -> 50")
    del new["$defs"]["Tag"]["properties"]["id"]
    assert sorted(rules(old, new, "consumed")) == ["maxLength added", "property removed"]


def test_a_new_variant_of_a_produced_union_is_refused():
    kinds = lambda *ks: {"oneOf": [obj({"kind": {"const": k, "type": "string"}}, ["kind"]) for k in ks]}
    old, new = obj({"e": kinds("a", "b")}), obj({"e": kinds("a", "b", "c")})
    assert rules(old, new, "produced") == ["enum widened"]
    assert rules(old, new, "consumed") == []
    assert rules(new, old, "consumed") == ["enum shrunk"]


def test_a_direction_must_be_named():
    with pytest.raises(ValueError):
        compare({}, {}, "both")
