"""The command line explains itself: a version, a description, and help on every option of every command."""

from __future__ import annotations

import argparse

import pytest
from arttag_cli.main import build_parser, main

from .support import walk_parsers



def test_every_option_and_argument_of_every_command_has_help():
    missing = []
    commands = 0
    for path, parser in walk_parsers(build_parser(), "arttag"):
        commands += 1
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction, argparse._VersionAction)):
                continue
            if not action.help or action.help == argparse.SUPPRESS:
                missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}")
    assert commands > 15
    assert missing == []


def test_every_command_has_help_in_the_command_list():
    for path, parser in walk_parsers(build_parser(), "arttag"):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                helped = {a.dest for a in action._choices_actions if a.help}
                assert helped == set(action.choices), f"{path}: commands without help: {set(action.choices) - helped}"


def test_version_and_description(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"arttag {version('arttag')}"
    description = build_parser().description
    assert "console script" not in description and "Kafka" in description


def test_every_option_with_a_default_states_it():
    """An option that has a value when not given says which (argparse does not print it)."""
    unstated = []
    for path, parser in walk_parsers(build_parser(), "arttag"):
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction, argparse._VersionAction,
                                   argparse._StoreConstAction, argparse._StoreTrueAction,
                                   argparse._StoreFalseAction)):
                continue
            if action.default is None or action.default == argparse.SUPPRESS:
                continue  # nothing, or a default the help names by its setting (ARTTAG_...)
            if "default" not in (action.help or ""):
                unstated.append(f"{path} {'/'.join(action.option_strings) or action.dest} "
                                f"(default {action.default!r})")
    assert unstated == []
