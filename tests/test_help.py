"""Help and usage errors as a new user meets them: extras named in full, options grouped with
whole defaults in one style, and every mistake answered in one line."""

from __future__ import annotations

import pytest
import typer.main
from rich.text import Text
from typer.testing import CliRunner

from glass_cli.cli import app

runner = CliRunner(env={"COLUMNS": "80", "GLASS_WEIGHTS": ""})
COMMANDS = ["scan", "export", "train", "tune", "eval", "cv"]


def test_the_extras_keep_their_brackets_in_help():
    text = runner.invoke(app, ["scan", "--help"], env={"COLUMNS": "300"}).stdout
    assert "pip install 'glass-cli[ray]'" in text and "pip install 'glass-cli[trustmark]'" in text


@pytest.mark.parametrize("name", COMMANDS)
def test_no_help_text_loses_words_to_markup(name):
    command = typer.main.get_command(app).commands[name]
    for param in command.params:
        text = param.help or ""
        assert Text.from_markup(text).plain == text.replace("\\[", "["), f"{name} {param.name}"


@pytest.mark.parametrize("name", COMMANDS)
def test_options_sit_in_panels_with_one_default_style(name):
    text = runner.invoke(app, [name, "--help"]).stdout
    assert "[default:" not in text and "<bool>" not in text
    assert text.count("╭─") >= (1 if name in ("export", "eval") else 4)  # arguments/options plus the named panels


def test_help_fits_far_fewer_lines_than_before():
    lines = {name: len(runner.invoke(app, [name, "--help"]).stdout.splitlines()) for name in ("scan", "train", "tune", "cv")}
    assert lines["scan"] < 160 and lines["train"] < 180 and lines["tune"] < 240 and lines["cv"] < 240, lines


def test_the_top_level_flags_take_no_value():
    text = runner.invoke(app, ["--help"]).stdout
    version = next(line for line in text.splitlines() if "--version" in line)
    assert "<bool>" not in text and version.split("--version")[1].strip().startswith("Print the version")


@pytest.mark.parametrize("argv, line", [
    (["scan", "x.jpg", "--threshold", "1.5"],
     "glass: error: Invalid value for '--threshold': Input should be less than or equal to 1 (see glass scan --help)"),
    (["scan"], "glass: error: Missing argument 'PATHS...'. (see glass scan --help)"),
    (["scan", "x.jpg", "--nope"], "glass: error: No such option: --nope (Possible options: --model) (see glass scan --help)"),
    (["scna"], "glass: error: No such command 'scna'. Did you mean 'scan'? (see glass --help)"),
])
def test_usage_mistakes_are_one_line_in_the_same_style_as_other_errors(argv, line):
    result = runner.invoke(app, argv)
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", line + "\n")
