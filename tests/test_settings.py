"""Every setting is declared once (``charrnn_magic.settings.SETTINGS``), and every front end is
made from that declaration: ``fit``'s keywords and their documentation, the API's checks, the
checkpoint's checks, the options of ``python -m charrnn_magic`` and ``%%charrnn_train``, the
``%config CharRNNMagics`` traits, and the order in which their sources win.
"""
from __future__ import annotations

import argparse
import inspect
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from IPython.core.error import UsageError

from charrnn_magic import CharRNN
from charrnn_magic import __main__ as cli
from charrnn_magic.corpora import load_corpus
from charrnn_magic.settings import (
    ARCHITECTURE,
    RUN,
    SETTINGS,
    Choice,
    Flag,
    Fraction,
    Number,
    Whole,
)

PACKAGE = Path(__file__).resolve().parent.parent / "charrnn_magic"

# ---- a setting added to the declaration ------------------------------------------------------
#: One new training setting, as a developer would add it: this one entry, and nothing else.
NEW_SETTING = '''\
    Setting("label_smoothing", TRAINING, Number(0, "0 (none) or a small share such as 0.1"),
            0.0, metavar="S", label="Share of each target spread over the others",
            help="Spread S of each target over the other characters (0: none).",
            doc="spreads that share of each target over the other characters (0: none)"),
'''

#: What the added setting must do everywhere, run in a fresh process on the edited copy.
CHECKS = '''
import inspect, sys
from pathlib import Path

import charrnn_magic
assert Path(charrnn_magic.__file__).resolve().parent == Path(sys.argv[1]).resolve(), \\
    charrnn_magic.__file__
from charrnn_magic import CharRNN
from charrnn_magic import __main__ as cli
from charrnn_magic.corpora import load_corpus

tmp = Path(sys.argv[2])
text = load_corpus("verse")[:3000]

# fit: a keyword in its signature and its documentation, checked, kept from fit to fit.
parameter = inspect.signature(CharRNN.fit).parameters["label_smoothing"]
assert parameter.kind is parameter.KEYWORD_ONLY and parameter.default is None
assert "``label_smoothing``: spreads that share" in CharRNN.fit.__doc__
model = CharRNN(cell="rnn", hidden_size=8, layers=1)
try:
    model.fit(text, steps=1, label_smoothing=-1)
    raise AssertionError("a negative label_smoothing was taken")
except ValueError as exc:
    assert str(exc) == ("label_smoothing=-1 is out of range: use 0 (none) or a small share "
                        "such as 0.1"), exc
assert not model.is_trained
model.fit(text, steps=1, seed=1, label_smoothing=0.2)
model.fit(text, steps=1)
assert model.config()["label_smoothing"] == 0.2
fresh = CharRNN(cell="rnn", hidden_size=8, layers=1)
fresh.fit(text, steps=1, seed=1)
assert fresh.config()["label_smoothing"] == 0.0                 # the declared default

# Checkpoints: saved, loaded, checked; a file of before the setting loads with the default.
model.save(tmp / "good.safetensors")
assert CharRNN.load(tmp / "good.safetensors").config()["label_smoothing"] == 0.2
sys.path.append(sys.argv[3])                   # the repository, for its checkpoint helper
from tests.test_checkpoint import craft, set_field

for value, path in ((-0.5, "bad.safetensors"), ("x", "text.safetensors")):
    craft(tmp / "good.safetensors", tmp / path, meta=set_field("config.label_smoothing", value))
    try:
        CharRNN.load(tmp / path)
        raise AssertionError(f"a checkpoint with label_smoothing {value!r} was loaded")
    except ValueError as exc:
        assert f"config.label_smoothing={value!r} is out of range" in str(exc), exc
craft(tmp / "good.safetensors", tmp / "old.safetensors",
      meta=set_field("config.label_smoothing", KeyError))
assert CharRNN.load(tmp / "old.safetensors").config()["label_smoothing"] == 0.0
model._settings["label_smoothing"] = -0.5
try:
    model.save(tmp / "never.safetensors")
    raise AssertionError("a model with label_smoothing -0.5 was saved")
except ValueError as exc:
    assert "config.label_smoothing=-0.5 is out of range" in str(exc), exc
model._settings["label_smoothing"] = 0.2

# The CLI: an option, checked, that reaches fit.
seen = []
fit = CharRNN.fit
def recording(self, text, **kwargs):
    seen.append(kwargs)
    return fit(self, text, **kwargs)
CharRNN.fit = recording
assert cli.main(["--steps", "1", "--hidden", "8", "--label-smoothing", "0.1"]) == 0
assert seen[-1]["label_smoothing"] == 0.1
try:
    cli.main(["--steps", "1", "--label-smoothing", "-1"])
    raise AssertionError("the CLI took --label-smoothing -1")
except SystemExit as exc:
    assert exc.code == 2
CharRNN.fit = fit

# The magics: an option and a %config trait, and the order of their sources.
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

config = Config()
config.HistoryManager.enabled = False
ip = InteractiveShell.instance(config=config)
ip.run_line_magic("load_ext", "charrnn_magic")
from charrnn_magic.notebook.magics import CharRNNMagics
assert "label_smoothing" in CharRNNMagics.class_traits(config=True)

def trained(line=""):
    ip.run_cell_magic("charrnn_train", f"--hidden 8 --steps 1 --seed 1 --quiet {line}", text)
    return ip.user_ns["charrnn"].config()["label_smoothing"]

assert trained() == 0.0                                            # the engine's default
ip.run_line_magic("config", "CharRNNMagics.preset = 'tiny'")
assert trained() == 0.3                                            # the configured preset
ip.run_line_magic("config", "CharRNNMagics.label_smoothing = 0.2")
assert trained() == 0.2                                            # %config beats it
assert trained("--preset tiny") == 0.3                 # a preset on the line beats %config
assert trained("--preset tiny --label-smoothing 0.1") == 0.1       # the line beats all
assert trained("--resume --label-smoothing 0.05") == 0.05          # resuming takes the line's
try:
    trained("--label-smoothing -1")
    raise AssertionError("the magic took --label-smoothing -1")
except UsageError as exc:
    assert "argument --label-smoothing: must be at least 0, got -1" in str(exc), exc
print("everywhere")
'''


@pytest.mark.slow
def test_a_setting_added_to_the_declaration_reaches_every_front_end(tmp_path):
    """A copy of the package with one more ``Setting`` in ``SETTINGS`` (and, to test the order
    of the sources, a value for it in the "tiny" preset): fit, checkpoints, the CLI and the
    magics all take it, check it and keep it, with nothing else changed."""
    copy = tmp_path / "charrnn_magic"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    settings = copy / "settings.py"
    source = settings.read_text(encoding="utf-8")
    anchor = '    Setting("weight_decay", TRAINING'
    preset = '"tiny": dict('
    assert source.count(anchor) == 1 and source.count(preset) == 1
    source = source.replace(anchor, NEW_SETTING + anchor)
    source = source.replace(preset, preset + "label_smoothing=0.3, ")
    settings.write_text(source, encoding="utf-8")

    env = {**os.environ, "PYTHONPATH": str(tmp_path), "IPYTHONDIR": str(tmp_path / "ipython")}
    out = subprocess.run([sys.executable, "-c", CHECKS, str(copy), str(tmp_path),
                          str(PACKAGE.parent)], env=env,
                         capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().endswith("everywhere")


# ---- every declared setting, in every front end ----------------------------------------------
def cli_parser() -> argparse.ArgumentParser:
    return cli.make_parser()


def train_parser(ip) -> argparse.ArgumentParser:
    return ip.magics_manager.registry["CharRNNMagics"].magics["line"]["charrnn_train"].parser


def good_and_bad(check) -> tuple[str, str]:
    """An option text the check takes, and one it refuses."""
    if isinstance(check, Choice):
        return list(check.choices)[-1].upper(), "no-such-choice"
    if isinstance(check, Whole):
        return str(check.minimum + 2), str(check.minimum - 1)
    if isinstance(check, Fraction):
        return "0.25", "1"
    if isinstance(check, Number):
        return "0.5", "-1"
    raise AssertionError(check)


@pytest.mark.parametrize("setting", SETTINGS, ids=[s.name for s in SETTINGS])
def test_every_setting_is_an_option_of_the_cli_and_the_magic(ip, setting):
    """Each declared setting has the same option, with the same check, in ``python -m
    charrnn_magic`` and ``%%charrnn_train``; its help is in both."""
    for parser in (cli_parser(), train_parser(ip)):
        actions = {a.option_strings[0]: a for a in parser._actions if a.option_strings}
        action = actions[setting.option_name]
        assert action.dest == setting.name
        assert setting.help_text().split(" (")[0][:30] in action.help.replace("%%", "%")
        if isinstance(setting.check, Flag):
            assert action.const is True and action.default is None
            if setting.off:
                assert actions[setting.off].dest == setting.name
                assert actions[setting.off].const == setting.off_value
            continue
        good, bad = good_and_bad(setting.check)
        assert action.type(good) == setting.check.parse(good)
        with pytest.raises(argparse.ArgumentTypeError):
            action.type(bad)


@pytest.mark.parametrize("setting", [s for s in SETTINGS if s.configurable],
                         ids=[s.name for s in SETTINGS if s.configurable])
def test_every_configurable_setting_is_a_config_trait(ip, setting):
    from charrnn_magic.notebook.magics import CharRNNMagics

    trait = CharRNNMagics.class_traits(config=True)[setting.name]
    assert trait.default_value is None and trait.allow_none
    assert setting.option_name in trait.help
    choices = getattr(setting.check, "choices", None)
    if choices is not None:
        assert trait.values == list(choices)


@pytest.mark.parametrize("setting", [s for s in SETTINGS if s.kind != RUN],
                         ids=[s.name for s in SETTINGS if s.kind != RUN])
def test_every_model_setting_is_checked_by_the_api_and_saved(tmp_path, setting):
    """Architecture settings are the constructor's, training settings fit's keywords (and in
    its documentation); a wrong value is a ValueError that names it; a checkpoint keeps it."""
    text = load_corpus("verse")[:2000]
    if setting.kind == ARCHITECTURE:
        assert setting.name in inspect.signature(CharRNN).parameters
    else:
        parameter = inspect.signature(CharRNN.fit).parameters[setting.name]
        assert parameter.kind is parameter.KEYWORD_ONLY and parameter.default is None
        assert f"``{setting.name}``: {setting.doc[:20]}" in " ".join(CharRNN.fit.__doc__.split())
    if not isinstance(setting.check, Flag):
        bad = {Choice: "no-such-choice", Whole: 0 if getattr(setting.check, "minimum", 0) else -1,
               Fraction: 1.5, Number: -1.0}[next(t for t in (Choice, Whole, Fraction, Number)
                                                if isinstance(setting.check, t))]
        with pytest.raises(ValueError, match=rf"^{setting.name}="):
            if setting.kind == ARCHITECTURE:
                CharRNN(**{setting.name: bad})
            else:
                CharRNN(cell="rnn", hidden_size=4, layers=1).fit(text, steps=1,
                                                                 **{setting.name: bad})
    model = CharRNN(cell="rnn", hidden_size=4, layers=1)
    model.fit(text, steps=1, seed=1)
    value = model.config()[setting.name]
    loaded = CharRNN.load(model.save(tmp_path / "m.safetensors"))
    assert loaded.config()[setting.name] == value


def test_fit_refuses_a_keyword_it_does_not_know():
    with pytest.raises(TypeError, match=r"fit\(\) got an unexpected keyword argument 'lrate'"):
        CharRNN().fit("some text", lrate=0.1)


def test_the_stop_rules_and_run_settings_are_checked_as_declared():
    text = load_corpus("verse")[:2000]
    for keywords, message in [({"steps": 0}, "steps=0 is out of range"),
                              ({"minutes": -1}, "minutes=-1 is out of range"),
                              ({"steps": 1, "eval_every": 0}, "eval_every=0 is out of range"),
                              ({"steps": 1, "seed": -2}, "seed=-2 is out of range"),
                              ({"steps": 1, "patience": -1}, "patience=-1 is out of range")]:
        with pytest.raises(ValueError, match=message):
            CharRNN(cell="rnn", hidden_size=4, layers=1).fit(text, **keywords)


# ---- the random seed: one spelling everywhere, the old ones kept ------------------------------
def test_seed_is_the_random_seed_of_every_magic_and_r_still_works(ip):
    ip.run_cell_magic("charrnn_train", "--hidden 8 --layers 1 --steps 5 --seed 1 --quiet",
                      load_corpus("verse")[:2000])
    texts = {spelling: ip.run_line_magic("charrnn_sample", f"-n 40 {spelling} 7 -q")
             for spelling in ("--seed", "-r", "--random-seed")}
    assert len(set(texts.values())) == 1
    assert ip.run_line_magic("charrnn_sample", "-n 40 --seed 8 -q") != texts["--seed"]
    panel = ip.run_line_magic("charrnn_panel", "--seed 5")
    assert panel.seed.value == 5
    panel.close()
    inspector = ip.run_line_magic("charrnn_inspect", "--sample 200 --seed 3")
    again = ip.run_line_magic("charrnn_inspect", "--sample 200 -r 3")
    assert inspector.trace.text == again.trace.text
    inspector.close()
    again.close()
    with pytest.raises(UsageError, match="seed-char takes one character"):
        ip.run_line_magic("charrnn_sample", "-s 42")          # -s is still the seed character


def test_the_stop_reasons_are_worded_once():
    from charrnn_magic.progress import STOP_REASONS, stop_words

    engine = "".join(p.read_text(encoding="utf-8") for p in PACKAGE.glob("*.py")
                     if p.name != "progress.py")
    for reason in STOP_REASONS:
        assert f'"{reason}"' in engine, f"{reason!r} is no stop reason the training loop sets"
    assert stop_words("minutes") == "used its time budget" and stop_words(None) == "?"
    for path in (PACKAGE / "notebook").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "ran all its steps" not in text and "time budget used" not in text, path.name


def test_unloading_removes_every_magics_class_of_the_package(ip):
    """A family registered as a class of its own goes with ``%unload_ext`` too."""
    from charrnn_magic.notebook.sample_magics import SampleMagics

    ip.register_magics(SampleMagics(shell=ip))
    assert "SampleMagics" in ip.magics_manager.registry
    ip.run_line_magic("unload_ext", "charrnn_magic")
    assert not {"SampleMagics", "CharRNNMagics"} & set(ip.magics_manager.registry)
    assert "charrnn_sample" not in ip.magics_manager.magics["line"]
    assert not any(type(c).__module__.startswith("charrnn_magic") for c in ip.configurables)
