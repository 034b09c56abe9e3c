"""Numeric options of every command are range-checked before anything runs, and the refusal names the option."""

from __future__ import annotations

import argparse

import pytest
from arttag_cli.main import build_parser, main

from .support import walk_parsers

# actions that take no value of their own
_NO_VALUE = (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction,
             argparse._StoreConstAction, argparse._StoreTrueAction, argparse._StoreFalseAction,
             argparse._CountAction, argparse._AppendConstAction)



def _numeric(action: argparse.Action) -> bool:
    """Takes a number: a plain int/float type, a range checker, or a numeric default with no type."""
    if action.type in (int, float) or hasattr(action.type, "checks_option"):
        return True
    default = action.default
    return action.type is None and isinstance(default, (int, float)) and not isinstance(default, bool)


def test_every_numeric_option_of_every_command_is_range_checked():
    unchecked, misnamed, numeric = [], [], 0
    for path, parser in walk_parsers(build_parser(), "arttag"):
        for action in parser._actions:
            if isinstance(action, _NO_VALUE) or not _numeric(action):
                continue
            numeric += 1
            names = action.option_strings or [action.dest]
            checks = getattr(action.type, "checks_option", None)
            if checks is None:
                unchecked.append(f"{path} {names[0]}")
            elif checks not in names:
                misnamed.append(f"{path} {names[0]} (its checker names {checks})")
    # the walk must reach the numeric options this test is about (audit, api, model export, ...)
    assert numeric >= 20, numeric
    assert unchecked == [], f"numeric options without a range check (arttag_cli.options): {unchecked}"
    assert misnamed == []


@pytest.mark.parametrize(("argv", "option", "says"), [
    (["audit", "CATALOGUE", "--out", "OUT", "--min-confidence", "5"], "--min-confidence", "from 0 to 1"),
    (["audit", "CATALOGUE", "--out", "OUT", "--tag-similarity", "-3"], "--tag-similarity", "from 0 to 1"),
    (["audit", "CATALOGUE", "--out", "OUT", "--artwork-similarity", "7"], "--artwork-similarity", "from 0 to 1"),
    (["audit", "CATALOGUE", "--out", "OUT", "--learn-threshold", "9"], "--learn-threshold", "from 0 to 1"),
    (["api", "--port", "99999"], "--port", "≤ 65535"),
    (["api", "--workers", "0"], "--workers", "≥ 1"),
    (["model", "export", "--opset", "9"], "--opset", "≥ 13"),
    (["model", "export", "--calibration-size", "0"], "--calibration-size", "≥ 1"),
    (["evaluate", "CATALOGUE", "--acquired-from", "next year"], "--acquired-from", "whole number"),
])
def test_out_of_range_numbers_are_refused_naming_the_option(argv, option, says, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # OUT would be created here if the audit ran
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}" in err and f"{option} must" in err and says in err, err
    assert list(tmp_path.iterdir()) == []

