"""The README tells the truth about the commands, magics and options it names.

- Its Quickstart has exactly two commands: one that installs and runs the main job
  (``python -m charrnn_magic``), one that installs the test extra and runs the tests; the
  second is the command ``.ci/run`` runs.
- Every ``%magic`` / ``%%magic`` it names exists once the extension is loaded (a cell magic
  as a cell magic).
- Every option it names next to a magic exists in that magic's parser; every other option it
  names exists in some magic's parser (or, for ``python -m charrnn_magic``, in that command's
  parser); and every option of every magic parser is documented.
- Every ``CharRNNMagics.setting`` it names is a configurable trait.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text(encoding="utf-8")
CI_RUN = (REPO / ".ci" / "run").read_text(encoding="utf-8")

MAGIC = re.compile(r"(?<![\w%])(%%?)([A-Za-z_]\w*)")
SHELL_START = re.compile(r"^\s*(\$\s*)?(python\d?|pip\d?|apt-get|apt|bash|jupyter|ipython|"
                         r"chromium|playwright|git)\b")


def section(title: str) -> str:
    """The text of the README's ``## title`` section."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", README, re.M | re.S)
    assert match, f"README.md has no '## {title}' section"
    return match.group(1)


def fenced_lines(text: str, language: str | None = None) -> list[str]:
    """The lines inside fenced code blocks (of one language, if given)."""
    lines = []
    for lang, body in re.findall(r"^```(\w*)\n(.*?)^```", text, re.M | re.S):
        if language is None or lang == language:
            lines += body.splitlines()
    return lines


def commands(text: str) -> list[str]:
    return [line.strip() for line in fenced_lines(text, "bash")
            if line.strip() and not line.strip().startswith("#")]


# ---- the two quickstart commands -----------------------------------------------------------
def test_quickstart_has_the_two_commands_and_ci_runs_the_test_one():
    run, test = commands(section("Quickstart"))       # exactly two: unpacking fails otherwise
    assert run.startswith("pip install ") and run.endswith("&& python -m charrnn_magic"), run
    assert "[test]" in test and test.endswith("python -m pytest"), test
    ci_lines = [line.strip() for line in CI_RUN.splitlines()
                if line.strip() and not line.strip().startswith("#")]
    assert test in ci_lines, f".ci/run does not run the README's test command {test!r}"
    assert [line for line in ci_lines if "pytest" in line] == [test], (
        ".ci/run runs pytest in some other way than the README's command")
    assert "apt-get install chromium" in section("Quickstart")


@pytest.mark.slow
def test_the_main_job_command_runs(tmp_path):
    """``python -m charrnn_magic`` (the quickstart's main job), cut short to a few steps."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p))
    done = subprocess.run([sys.executable, "-m", "charrnn_magic", "--steps", "3"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "sample at temperature" in done.stdout


# ---- magics, options and settings ------------------------------------------------------------
def magic_parsers(shell) -> dict[str, argparse.ArgumentParser]:
    registry = shell.magics_manager.registry
    return {name: func.parser for name, func in registry["CharRNNMagics"].magics["line"].items()}


def option_strings(parser: argparse.ArgumentParser) -> set[str]:
    return {o for action in parser._actions for o in action.option_strings} - {"-h", "--help"}


def main_parser_options() -> set[str]:
    """The options of ``python -m charrnn_magic``, read from its argparse parser."""
    from charrnn_magic import __main__ as cli

    captured = {}
    original = argparse.ArgumentParser.parse_args

    def capture(self, args=None, namespace=None):
        captured["parser"] = self
        raise SystemExit(0)

    argparse.ArgumentParser.parse_args = capture
    try:
        with pytest.raises(SystemExit):
            cli.main([])
    finally:
        argparse.ArgumentParser.parse_args = original
    return {o for action in captured["parser"]._actions for o in action.option_strings}


def readme_option_uses() -> list[tuple[int, str | None, str]]:
    """(line number, owner, option) for every option token in the README's code.

    Code is what is inside fenced blocks and inline `spans`. An option belongs to the magic
    named before it in the same piece of code; failing that, in prose, to the magic of the
    nearest heading above that names one (the reference sections), or to ``"(cli)"`` in the
    Quickstart section (``python -m charrnn_magic``'s options); else to ``None`` (some magic).
    Shell commands are left out, except that ``python -m charrnn_magic ...`` belongs to
    ``"(cli)"``; options after another ``%magic`` (``%config``) are not ours.
    """
    uses = []
    heading_owner = None
    in_code = False
    for number, line in enumerate(README.splitlines(), 1):
        if line.startswith("```"):
            in_code = not in_code
            continue
        if not in_code and line.startswith("#"):
            names = [m.group(2) for m in MAGIC.finditer(line) if m.group(2).startswith("charrnn")]
            heading_owner = names[0] if names else (
                "(cli)" if line.strip() == "## Quickstart" else None)
            continue
        pieces = [line] if in_code else re.findall(r"`([^`]+)`", line)
        for piece in pieces:
            if "python -m charrnn_magic" in piece:
                owner = "(cli)"
                piece = piece.split("python -m charrnn_magic", 1)[1]
            elif SHELL_START.match(piece):
                continue
            else:
                owner = None if in_code else heading_owner
            for token in re.finditer(r"%%?[A-Za-z_]\w*|(?<![\w-])--?[A-Za-z][\w-]*", piece):
                text = token.group(0)
                if text.startswith("%"):
                    name = text.lstrip("%")
                    owner = name if name.startswith("charrnn") else "(other)"
                elif owner != "(other)":
                    uses.append((number, owner, text))
    return uses


def test_every_magic_the_readme_names_exists(ip):
    line_magics = ip.magics_manager.magics["line"]
    cell_magics = ip.magics_manager.magics["cell"]
    named = {(m.group(1), m.group(2)) for m in MAGIC.finditer(README)}
    assert ("%%", "charrnn_train") in named and ("%", "charrnn_sample") in named
    missing = [percent + name for percent, name in sorted(named)
               if name not in (cell_magics if percent == "%%" else line_magics)]
    assert not missing, f"README.md names magics that do not exist: {', '.join(missing)}"


def test_every_option_the_readme_names_exists_in_the_parsers(ip):
    parsers = magic_parsers(ip)
    every = set().union(*map(option_strings, parsers.values()))
    cli = main_parser_options()
    uses = readme_option_uses()
    assert len(uses) > 50, "the README's options were not found: has its layout changed?"
    assert any(magic == "(cli)" for _, magic, _ in uses)
    wrong = []
    for number, magic, option in uses:
        if magic == "(cli)":
            if option not in cli:
                wrong.append(f"line {number}: python -m charrnn_magic has no option {option}")
        elif magic is None:
            if option not in every:
                wrong.append(f"line {number}: {option} is no option of any magic")
        elif magic not in parsers:
            wrong.append(f"line {number}: {option} given to %{magic}, which has no parser")
        elif option not in option_strings(parsers[magic]):
            wrong.append(f"line {number}: %{magic} has no option {option}")
    assert not wrong, "\n".join(wrong)


def test_every_magic_option_is_documented(ip):
    for name, parser in magic_parsers(ip).items():
        missing = [o for o in sorted(option_strings(parser))
                   if not re.search(rf"(?<![\w-]){re.escape(o)}(?![\w-])", README)]
        assert not missing, f"README.md does not document %{name} {', '.join(missing)}"


def test_every_setting_the_readme_names_is_configurable():
    from charrnn_magic.notebook.magics import CharRNNMagics

    traits = set(CharRNNMagics.class_traits(config=True))
    named = set(re.findall(r"CharRNNMagics\.(\w+)", README))
    assert named and named <= traits, f"not settings of CharRNNMagics: {sorted(named - traits)}"
    table = section("Configuration")
    documented = set(re.findall(r"`(\w+)`", table))
    assert traits <= documented, f"settings missing from the table: {sorted(traits - documented)}"
