"""Every setting is explained once (settings_doc), in every --help that uses it and in the README table."""

from __future__ import annotations

import argparse
import re
from dataclasses import fields
from pathlib import Path

import pytest

from clickagg import cli
from clickagg.config import Settings
from clickagg.settings_doc import FOR_COMMAND, HELP

README = (Path(__file__).parents[2] / "README.md").read_text()
NAMES = [f.name for f in fields(Settings)]


def subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = cli.build_parser()
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def test_every_setting_has_help_and_nothing_else_does() -> None:
    assert sorted(HELP) == sorted(NAMES)
    assert all(text.strip() for text in HELP.values())


def test_every_setting_is_a_row_of_the_readme_settings_table() -> None:
    first_cells = re.findall(r"^\| ([^|]+) \|", README, re.M)
    rows = {name for cell in first_cells for name in re.findall(r"`([A-Z0-9_]+)`", cell)}
    missing = [n.upper() for n in NAMES if n.upper() not in rows]
    assert not missing, f"not in the README's settings table: {missing}"


@pytest.mark.parametrize("command", ["worker", "produce", "query", "bench", "config", "stack"])
def test_every_flag_has_help(command: str) -> None:
    for action in subparsers()[command]._actions:
        assert action.help and action.help.strip(), (command, action.option_strings or action.dest)


@pytest.mark.parametrize("command", [c for c, names in FOR_COMMAND.items() if names is not None])
def test_a_command_lists_only_the_settings_it_reads(command: str) -> None:
    dests = {a.dest for a in subparsers()[command]._actions}
    settings_flags = dests & set(NAMES)
    assert settings_flags == set(FOR_COMMAND[command] or ())


def test_the_issue_examples() -> None:
    sub = subparsers()
    query_help, produce_help, bench_help = (sub[c].format_help() for c in ("query", "produce", "bench"))
    assert "--web-port" not in query_help and "--window-seconds" not in produce_help
    assert re.findall(r"--window[-\w]*", bench_help) == ["--window-seconds"] * bench_help.count("--window")
    assert (
        "CLICKAGG_STACK_DIR" in sub["stack"].format_help()
        and "CLICKAGG_KAFKA_PORT" in sub["stack"].format_help()
    )


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0 and re.fullmatch(r"clickagg \d+\.\d+\.\d+\S*\n", capsys.readouterr().out)


@pytest.mark.parametrize("flag", ["--minutes", "--count", "--rate"])
def test_produce_refuses_negative_numbers(flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        cli.build_parser().parse_args(["produce", flag, "-1"])
    assert done.value.code == 2
    assert (
        capsys.readouterr().err.splitlines()[-1]
        == f"clickagg produce: error: argument {flag}: must be >= 0, got -1"
    )
