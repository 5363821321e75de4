"""The IPython extension, driven through a real InteractiveShell (see conftest.py).

Trainings are tiny (a few dozen steps of a 16-unit network) so the file runs in seconds.
Every user mistake must raise exactly ``UsageError`` (IPython shows only that class as one
line) and must leave trained models and saved files alone.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from IPython.core.error import UsageError

from charrnn_magic import PRESETS, CharRNN
from charrnn_magic import progress as progress_module
from charrnn_magic.corpora import CORPORA, DEFAULT_CORPUS, load_corpus
from charrnn_magic.defaults_from_text import choose
from charrnn_magic.notebook.widget_tools import close_tree

TEXT = """the quick brown fox jumps over the lazy dog.
pack my box with five dozen liquor jugs.
how vexingly quick daft zebras jump!
sphinx of black quartz, judge my vow.
""" * 3

NAMES = "anna\nbob\ncarla\ndavid\nemma\nfrank\ngrace\nhenry\nirene\njack\nkate\nliam\n" * 3

# TEXT is short enough to be learned whole by default: these tests hold out a tenth.
SMALL = "--hidden 16 --layers 1 --seed 1 --val-fraction 0.1"
CELL = choose(len(TEXT))["cell"]           # what a model gets, chosen from the text


def train(ip, line="", text=TEXT):
    return ip.run_cell_magic("charrnn_train", f"{SMALL} --steps 20 {line}", text)


def usage_error(func, *args) -> str:
    """The message of the UsageError that ``func(*args)`` must raise (exactly that class)."""
    with pytest.raises(UsageError) as info:
        func(*args)
    assert type(info.value) is UsageError
    return str(info.value)


# ---- training ----------------------------------------------------------------------------------
def test_cell_training_binds_model_and_prints_summary(ip, capsys):
    assert train(ip) is None
    model = ip.user_ns["charrnn"]
    assert isinstance(model, CharRNN)
    assert (model.cell, model.hidden_size, model.layers, model.step) == (CELL, 16, 1, 20)
    out = capsys.readouterr().out
    assert f"training charrnn: {CELL} 1x16, {len(TEXT)} characters from the cell" in out
    assert re.search(r"charrnn: 20 steps in [\d.]+ s \([\d,]+ chars/s\): loss \d\.\d{3}, "
                     r"val \d\.\d{3}", out)


def test_named_model_and_options_reach_the_engine(ip):
    ip.run_cell_magic("charrnn_train", "poem --cell gru --hidden 8 --layers 2 --steps 5 "
                      "--optimizer sgd --lr 0.05 --clip 2 --clip-mode value --seq-length 10 "
                      "--batch-size 3 --val-fraction 0.2 --dtype float64 --seed 3 --quiet "
                      "--lr-schedule cosine --weight-decay 0.05", TEXT)
    model = ip.user_ns["poem"]
    config = model.config()
    assert (model.cell, model.hidden_size, model.layers, model.dtype) == ("gru", 8, 2, "float64")
    assert {k: config[k] for k in ("optimizer", "lr", "clip", "clip_mode", "seq_length",
                                   "batch_size", "val_fraction", "seed", "lr_schedule",
                                   "weight_decay")} == dict(
        optimizer="sgd", lr=0.05, clip=2.0, clip_mode="value", seq_length=10, batch_size=3,
        val_fraction=0.2, seed=3, lr_schedule="cosine", weight_decay=0.05)
    assert model.step == 5


def test_same_seed_same_model(ip):
    train(ip, "a")
    train(ip, "b")
    a, b = ip.user_ns["a"], ip.user_ns["b"]
    assert a.sample(length=60, seed=4) == b.sample(length=60, seed=4)


def test_quiet_prints_nothing(ip, capsys):
    train(ip, "--quiet")
    assert capsys.readouterr().out == ""
    assert ip.user_ns["charrnn"].step == 20


def test_previews_every_n_steps(ip, capsys):
    train(ip, "--sample-every 10")
    out = capsys.readouterr().out
    assert "--- sample at step 10 ---" in out and "--- sample at step 20 ---" in out


def test_five_previews_by_default_when_the_run_length_is_known(ip, capsys):
    ip.run_cell_magic("charrnn_train", f"{SMALL} --epochs 5", TEXT)
    out = capsys.readouterr().out
    steps = ip.user_ns["charrnn"].step
    assert "5 epochs" in out and steps >= 5
    assert out.count("--- sample at step") == steps // (steps // 5) >= 5


def test_short_text_shrinks_preset_batch_with_a_note(ip, capsys):
    # The default preset (GRU 2x128, 32 streams of 50) cannot fill a four-line poem.
    ip.run_cell_magic("charrnn_train", "--preset default --steps 2", TEXT[:170])
    model = ip.user_ns["charrnn"]
    assert (model.cell, model.layers, model.hidden_size) == (
        CELL, PRESETS["default"]["layers"], PRESETS["default"]["hidden_size"])
    assert model.config()["batch_size"] == 3
    assert "(the text is short: batch size 3 instead of 32)" in capsys.readouterr().out


def test_presets_and_precedence(ip):
    ip.run_cell_magic("charrnn_train", "--preset tiny --steps 2 --quiet", TEXT)
    tiny = ip.user_ns["charrnn"]
    assert (tiny.cell, tiny.hidden_size) == ("rnn", 64)
    assert tiny.config()["optimizer"] == "adagrad"
    ip.run_cell_magic("charrnn_train", "--preset tiny --hidden 8 --steps 2 --quiet", TEXT)
    assert ip.user_ns["charrnn"].hidden_size == 8        # an option beats the preset


def test_config_changes_defaults(ip):
    ip.run_line_magic("config", "CharRNNMagics.hidden_size = 12")
    ip.run_line_magic("config", "CharRNNMagics.cell = 'gru'")
    ip.run_cell_magic("charrnn_train", "--layers 1 --steps 2 --quiet", TEXT)
    model = ip.user_ns["charrnn"]
    assert (model.cell, model.hidden_size) == ("gru", 12)
    ip.run_cell_magic("charrnn_train", "--hidden 10 --layers 1 --steps 2 --quiet", TEXT)
    assert ip.user_ns["charrnn"].hidden_size == 10       # the line beats %config
    ip.run_cell_magic("charrnn_train", "--preset tiny --steps 2 --quiet", TEXT)
    assert ip.user_ns["charrnn"].hidden_size == 64       # a preset named on the line too


def test_config_file_setting_is_read_at_load(ip):
    # What `c.CharRNNMagics.hidden_size = 9` in ipython_config.py does: config of the shell.
    ip.config.CharRNNMagics.hidden_size = 9
    ip.config.CharRNNMagics.default_name = "m"
    ip.extension_manager.reload_extension("charrnn_magic")
    ip.run_cell_magic("charrnn_train", "--layers 1 --steps 2 --quiet", TEXT)
    assert ip.user_ns["m"].hidden_size == 9


def test_bad_config_value_is_a_usage_error(ip):
    ip.run_line_magic("config", "CharRNNMagics.hidden_size = -3")
    msg = usage_error(ip.run_cell_magic, "charrnn_train", "--steps 2", TEXT)
    assert "hidden_size" in msg


def test_train_on_files_and_expansion(ip, tmp_path, capsys):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("first file, no newline at its end", encoding="utf-8")
    b.write_bytes("\ufeffsecond file\r\nwith windows lines\r\n".encode("utf-8"))
    ip.user_ns["path_a"] = str(a)
    ip.run_line_magic("charrnn_train", f"{SMALL} --steps 3 --file {{path_a}} --file {b}")
    model = ip.user_ns["charrnn"]
    assert "\r" not in model.vocab and "\ufeff" not in model.vocab
    assert "from 2 files" in capsys.readouterr().out


def test_train_on_corpus_and_list_corpora(ip, capsys):
    ip.run_line_magic("charrnn_train", "--list-corpora")
    out = capsys.readouterr().out
    assert "verse" in out and "pydoc" in out and "charrnn" not in ip.user_ns
    ip.run_line_magic("charrnn_train", f"{SMALL} --steps 3 --corpus verse")
    assert "characters from corpus verse" in capsys.readouterr().out
    assert ip.user_ns["charrnn"].step == 3


def test_corpora_module():
    assert DEFAULT_CORPUS in CORPORA and set(CORPORA) >= {"verse", "pydoc"}
    verse = load_corpus("verse")
    assert verse.startswith("THE LAMPLIGHTER'S ALMANAC") and verse.count("\n") > 150
    pydoc = load_corpus("pydoc")
    assert len(pydoc) > 100_000 and pydoc == load_corpus("pydoc")
    with pytest.raises(ValueError, match="the built-in corpora are verse, pydoc"):
        load_corpus("shakespeare")


def test_lines_mode_samples_one_line(ip):
    ip.run_cell_magic("charrnn_train", f"names {SMALL} --steps 20 --mode lines --quiet", NAMES)
    x = ip.run_line_magic("charrnn_sample", "names -n 30 --random-seed 2 --quiet")
    assert "\n" not in x and 0 < len(x) <= 30
    xs = ip.run_line_magic("charrnn_sample", "names --count 4 --random-seed 2 --quiet")
    assert isinstance(xs, list) and len(xs) == 4 and all("\n" not in s for s in xs)


def test_lower(ip):
    train(ip, "--lower --quiet", TEXT.upper())
    model = ip.user_ns["charrnn"]
    assert "Q" not in model.vocab and "q" in model.vocab
    # Primes are lower-cased like the training text, so capitals are fine.
    assert isinstance(ip.run_line_magic("charrnn_sample", "--prime 'THE QUICK' -n 5 -q"), str)


# ---- sampling ----------------------------------------------------------------------------------
def test_sample_assignment_returns_the_printed_text(ip, capsys):
    train(ip, "--quiet")
    ip.run_cell("x = %charrnn_sample -n 50 -t 0.7 --random-seed 5").raise_error()
    x = ip.user_ns["x"]
    assert isinstance(x, str) and len(x) == 50
    assert x == ip.user_ns["charrnn"].sample(length=50, temperature=0.7, seed=5)
    assert capsys.readouterr().out == x + "\n"


def test_sample_is_not_echoed_twice(ip, capsys):
    train(ip, "--quiet")
    result = ip.run_cell("%charrnn_sample -n 40 --random-seed 1", store_history=True)
    result.raise_error()
    text = ip.user_ns["charrnn"].sample(length=40, seed=1)
    out = capsys.readouterr().out
    assert out.count(text) == 1 and repr(text) not in out
    assert result.result == text                   # still the value of the cell
    # Later, the value displays like any str.
    ip.run_cell("y = %charrnn_sample -n 40 --random-seed 1", store_history=True).raise_error()
    capsys.readouterr()
    ip.run_cell("y", store_history=True).raise_error()
    assert repr(text) in capsys.readouterr().out


def test_sample_count_seed_char_prime_and_topk(ip, capsys):
    train(ip, "--quiet")
    model = ip.user_ns["charrnn"]
    xs = ip.run_line_magic("charrnn_sample", "--count 3 -n 20 --random-seed 1")
    assert xs == model.sample(length=20, count=3, seed=1)
    out = capsys.readouterr().out
    assert out.startswith("--- sample 1 ---\n") and "--- sample 3 ---" in out
    for name, char in [("space", " "), ("newline", "\n"), ("\\n", "\n"), ("'␣ (space)'", " "),
                       ("q", "q"), ('" "', " ")]:
        x = ip.run_line_magic("charrnn_sample", f"--seed-char {name} -n 10 -q")
        assert x[0] == char and len(x) == 10
    x = ip.run_line_magic("charrnn_sample", '--prime "the quick" -n 30 -t 0.5 --top-k 3 '
                                            "--random-seed 9 -q")
    assert x == model.sample(length=30, temperature=0.5, top_k=3, prime="the quick", seed=9)
    x = ip.run_line_magic("charrnn_sample", r'--prime "dog.\npack" -n 10 --random-seed 9 -q')
    assert x == model.sample(length=10, prime="dog.\npack", seed=9)
    assert len(ip.run_line_magic("charrnn_sample", "-n 25 --top-p 0.9 -t 0 -q")) == 25


def test_sample_names_the_current_model(ip):
    train(ip, "first --quiet")
    train(ip, "second --quiet", TEXT.upper())
    assert ip.run_line_magic("charrnn_sample", "-n 20 -q").isupper()        # the last trained
    assert not ip.run_line_magic("charrnn_sample", "first -n 20 -q").isupper()


def test_sample_mistakes(ip):
    sample = lambda line: usage_error(ip.run_line_magic, "charrnn_sample", line)  # noqa: E731
    assert sample("") == ("no model yet: train one with %%charrnn_train (a cell of text) or "
                          "%charrnn_train --corpus verse, or load one with %charrnn_load PATH")
    train(ip, "--quiet")
    assert sample("nope") == "there is no model 'nope'; the models here: charrnn"
    assert sample("100") == "'100' is not a model name: for a length write -n 100"
    ip.user_ns["text"] = "hello"
    assert sample("text") == "'text' is a str, not a model; the models here: charrnn"
    assert sample("-n -1") == ("%charrnn_sample: argument -n/--length: must be at least 0, "
                               "got -1; see %charrnn_sample? for the options")
    assert sample("-t x") == ("%charrnn_sample: argument -t/--temperature: expected a number, "
                              "got 'x'; see %charrnn_sample? for the options")
    assert "must be above 0" in sample("--top-p 0")
    assert "must be at least 1" in sample("--top-k 0")
    assert sample("--tempreature 2") == ("%charrnn_sample: unknown option --tempreature (did "
                                         "you mean --temperature?); see %charrnn_sample? for "
                                         "the options")
    assert sample("charrnn extra") == ("%charrnn_sample: unexpected argument 'extra'; see "
                                       "%charrnn_sample? for the usage")
    assert sample('--prime "open') == ('%charrnn_sample: a quote is not closed in: --prime "open '
                                       '(write \\" for the character)')
    assert sample("--seed-char ab") == ("--seed-char takes one character, or one of the names "
                                        "space, newline (\\n), tab (\\t); got 'ab'")
    assert sample("--seed-char a --prime the") == "give --seed-char or --prime, not both"
    msg = sample("--prime 'The Quick Émile'")
    assert msg.startswith("--prime has 3 character(s) that 'charrnn' never saw: 'Q' (try 'q'), "
                          "'T' (try 't'), 'É' (try 'e'); it knows 31: '\\n', ' ', '!', ',', ")
    assert sample("--seed-char Z").startswith(
        "--seed-char has 1 character(s) that 'charrnn' never saw: 'Z' (try 'z')")
    ip.user_ns["fresh"] = CharRNN()
    assert sample("fresh") == "'fresh' is not trained yet: train it with %%charrnn_train fresh"


# ---- mistakes in training ------------------------------------------------------------------------
def test_text_source_mistakes(ip, tmp_path):
    cell = lambda line, body: usage_error(ip.run_cell_magic, "charrnn_train", line, body)  # noqa
    line = lambda text: usage_error(ip.run_line_magic, "charrnn_train", text)  # noqa: E731
    assert cell("", "  \n\t\n") == (
        "the cell is empty: put the text to learn below the %%charrnn_train line, or use "
        "%charrnn_train --file PATH or --corpus NAME")
    assert line("--steps 5") == (
        "%charrnn_train needs text: write it in a cell below %%charrnn_train, or give "
        "--file PATH or --corpus NAME (try --corpus verse)")
    assert cell("--corpus verse", TEXT) == (
        "give the text one way only, not the cell and --corpus: the cell (%%charrnn_train), "
        "--file PATH, or --corpus NAME")
    assert line("--corpus shakespeare") == (
        "unknown corpus 'shakespeare': the built-in corpora are verse, pydoc (see "
        "%charrnn_train --list-corpora)")
    missing = tmp_path / "missing.txt"
    assert line(f"--file {missing}") == (
        f"--file {missing}: no such file (relative paths start in {os.getcwd()})")
    assert line(f"--file {tmp_path}") == f"--file {tmp_path} is a folder: give a text file"
    binary = tmp_path / "model.bin"
    binary.write_bytes(b"abc\x00\x01\x02def")
    assert line(f"--file {binary}") == (
        f"--file {binary} looks binary (it has NUL bytes): give a UTF-8 text file")
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("caf\u00e9 au lait".encode("latin-1"))
    assert line(f"--file {latin1}") == (
        f"--file {latin1} is not UTF-8 text (byte 0xe9 at offset 3): convert it to UTF-8 "
        "first, e.g. iconv -f latin1 -t utf-8")
    utf16 = tmp_path / "utf16.txt"
    utf16.write_bytes("hello".encode("utf-16"))
    assert line(f"--file {utf16}") == (
        f"--file {utf16} is UTF-16 text: save it as UTF-8 and try again")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    assert line(f"--file {empty}") == f"--file {empty} is empty: give a file with some text"
    spaced = tmp_path / "with space.txt"
    spaced.write_text(TEXT)
    ip.run_line_magic("charrnn_train", f'{SMALL} --steps 2 --quiet --file "{spaced}"')
    assert ip.user_ns["charrnn"].step == 2


def test_option_mistakes(ip):
    cell = lambda line: usage_error(ip.run_cell_magic, "charrnn_train", line, TEXT)  # noqa
    assert cell("--hidden 0") == ("%charrnn_train: argument --hidden: must be at least 1, "
                                  "got 0; see %charrnn_train? for the options")
    assert cell("--cell transformer") == (
        "%charrnn_train: argument --cell: use one of rnn, lstm, gru (got 'transformer'); see "
        "%charrnn_train? for the options")
    assert "must be below 1, got 1" in cell("--dropout 1")
    assert "must be above 0, got 0" in cell("--lr 0")
    assert "must be below 1, got 1.5" in cell("--val-fraction 1.5")
    assert "must be at least 0, got -0.1" in cell("--weight-decay -0.1")
    assert "expected a finite number" in cell("--minutes nan")
    assert cell("--hiden 8") == ("%charrnn_train: unknown option --hiden (did you mean "
                                 "--hidden?); see %charrnn_train? for the options")
    assert cell("2fast") == ("'2fast' cannot be a variable name: use letters, digits and _, "
                             "not starting with a digit (e.g. charrnn2)")
    assert cell("class") .startswith("'class' cannot be a variable name")
    assert "charrnn" not in ip.user_ns


def test_every_choice_of_the_engine_is_an_option_and_a_setting(ip):
    """The magics offer exactly the engine's cells, modes, dtypes, optimisers, clip modes and
    schedules, in their options, their help and their %config traits: one source for each."""
    from charrnn_magic.cells import CELLS
    from charrnn_magic.data import MODES
    from charrnn_magic.network import DTYPES
    from charrnn_magic.notebook.magics import CharRNNMagics
    from charrnn_magic.optim import CLIP_MODES, LR_SCHEDULES, OPTIMIZERS

    parser = ip.magics_manager.registry["CharRNNMagics"].magics["line"]["charrnn_train"].parser
    actions = {a.dest: a for a in parser._actions}
    traits = CharRNNMagics.class_traits()
    for key, choices in [("cell", CELLS), ("mode", MODES), ("dtype", DTYPES),
                         ("optimizer", OPTIMIZERS), ("clip_mode", CLIP_MODES),
                         ("lr_schedule", LR_SCHEDULES)]:
        assert traits[key].values == list(choices), key
        for choice in choices:
            assert actions[key].type(choice.upper()) == choice
            assert re.search(rf"\b{choice}\b", actions[key].help), (key, choice)
        with pytest.raises(Exception, match="use one of " + ", ".join(choices)):
            actions[key].type("no-such-choice")
    assert "2%" in parser.format_help()                 # the schedule's help, %-escaped once


def test_mistakes_never_destroy_a_trained_model(ip, capsys):
    train(ip, "--quiet")
    model = ip.user_ns["charrnn"]
    weights = model.sample(length=80, seed=0)
    # A new training the engine refuses (explicit window longer than the text).
    msg = usage_error(ip.run_cell_magic, "charrnn_train", f"{SMALL} --seq-length 5000", TEXT)
    assert "seq_length=5000" in msg
    # Resuming on text with new characters.
    msg = usage_error(ip.run_cell_magic, "charrnn_train", "--resume --steps 3", "NEW TEXT!")
    assert "vocabulary" in msg and "'E', 'N', 'T', 'W', 'X'" in msg
    # Resuming with another architecture, or a preset.
    assert usage_error(ip.run_cell_magic, "charrnn_train", "--resume --hidden 32", TEXT) == (
        "--hidden cannot change when resuming: 'charrnn' has hidden_size 16; drop --hidden, "
        "or train a new model under another NAME")
    assert "cannot be combined with --resume" in usage_error(
        ip.run_cell_magic, "charrnn_train", "--resume --preset tiny", TEXT)
    # Binding a model over a variable that is not a model.
    ip.user_ns["data"] = [1, 2, 3]
    assert usage_error(ip.run_cell_magic, "charrnn_train", "data", TEXT) == (
        "'data' already holds a list in your namespace: give the model another NAME (e.g. "
        "%charrnn_train data_model ...) or `del data` first")
    assert ip.user_ns["data"] == [1, 2, 3]
    assert ip.user_ns["charrnn"] is model and model.step == 20
    assert model.sample(length=80, seed=0) == weights


def test_resume_continues_the_same_model(ip, capsys):
    train(ip, "--quiet")
    model = ip.user_ns["charrnn"]
    ip.run_cell_magic("charrnn_train", "--resume --steps 7 --lr 0.01", TEXT[:200] * 3)
    assert ip.user_ns["charrnn"] is model
    assert model.step == 27 and len(model.history.step) == 27 and model.config()["lr"] == 0.01
    out = capsys.readouterr().out
    assert "resuming charrnn from step 20" in out and "27 steps in all" in out
    assert usage_error(ip.run_cell_magic, "charrnn_train", "other --resume", TEXT) == (
        "--resume: there is no model 'other' to continue; train it first without --resume "
        "(the models here: charrnn)")


def test_diverging_training_is_a_usage_error_and_keeps_the_old_model(ip):
    train(ip, "--quiet")
    model = ip.user_ns["charrnn"]
    msg = usage_error(ip.run_cell_magic, "charrnn_train",
                      f"{SMALL} --optimizer sgd --lr 1e38 --clip 0 --quiet", TEXT)
    assert "diverged" in msg and msg.endswith("(the model in 'charrnn' was not replaced)")
    assert ip.user_ns["charrnn"] is model


# ---- interrupt ---------------------------------------------------------------------------------
def interrupt_at_step(monkeypatch, step: int) -> None:
    """Make the progress reporter raise KeyboardInterrupt after ``step``, as Ctrl-C would."""
    original = progress_module.Reporter.__call__

    def interrupting(self, progress):
        original(self, progress)
        if progress.run_step == step:
            raise KeyboardInterrupt

    monkeypatch.setattr(progress_module.Reporter, "__call__", interrupting)


def test_keyboard_interrupt_from_the_progress_callback(ip, capsys, monkeypatch):
    """A KeyboardInterrupt raised inside the progress callback, as Ctrl-C would be."""
    interrupt_at_step(monkeypatch, 7)
    ip.run_cell_magic("charrnn_train", f"{SMALL} --steps 50", TEXT)
    model = ip.user_ns["charrnn"]
    assert model.step == 7 and model.history.interrupted
    out = capsys.readouterr().out
    assert re.search(r"charrnn: stopped at step 7 of 50 after [\d.]+ s; the model keeps what it "
                     r"learned \(loss \d\.\d{3}, val \d\.\d{3}\)", out)
    assert "to continue: %%charrnn_train charrnn --resume (with the same cell)" in out
    monkeypatch.undo()
    # The model is usable, and training continues from there.
    assert len(ip.run_line_magic("charrnn_sample", "-n 30 -q")) == 30
    ip.run_cell_magic("charrnn_train", "--resume --steps 5 --quiet", TEXT)
    assert model.step == 12 and not model.history.interrupted


def test_interrupt_message_tells_how_to_continue_a_line_training(ip, capsys, monkeypatch):
    interrupt_at_step(monkeypatch, 2)
    ip.run_line_magic("charrnn_train", f"verse {SMALL} --steps 9 --corpus verse")
    assert ip.user_ns["verse"].step == 2
    assert ("to continue: %charrnn_train verse --resume --corpus verse"
            in capsys.readouterr().out)


def test_real_sigint_stops_training_cleanly(ip, capsys, monkeypatch):
    """A real SIGINT, the signal a kernel interrupt sends, in the middle of training."""
    original = progress_module.Reporter.__call__

    def signal_at_step_20(self, progress):
        original(self, progress)
        if progress.run_step == 20:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(progress_module.Reporter, "__call__", signal_at_step_20)
    ip.run_cell_magic("charrnn_train", f"{SMALL} --steps 100000 --quiet", TEXT)
    model = ip.user_ns["charrnn"]
    assert 20 <= model.step <= 21 and model.history.interrupted
    # Even --quiet reports an interruption.
    assert re.search(r"stopped at step 2[01] of 100,000", capsys.readouterr().out)


# ---- save, load, list, info ----------------------------------------------------------------------
def test_save_load_round_trip(ip, tmp_path, capsys):
    train(ip, "--quiet")
    model = ip.user_ns["charrnn"]
    path = tmp_path / "m.safetensors"
    ip.run_line_magic("charrnn_save", str(path))
    assert f"saved charrnn (CharRNN({CELL}, 16, vocab 31, 20 steps" in capsys.readouterr().out
    ip.run_line_magic("charrnn_load", f"{path} copy")
    copy = ip.user_ns["copy"]
    assert copy is not model and copy.step == 20
    assert f"loaded copy = CharRNN({CELL}, 16, vocab 31, 20 steps" in capsys.readouterr().out
    a = ip.run_line_magic("charrnn_sample", "charrnn -n 60 --random-seed 3 -q")
    b = ip.run_line_magic("charrnn_sample", "-n 60 --random-seed 3 -q")    # current: copy
    assert a == b
    # Saving by name, into a path with a space.
    spaced = tmp_path / "my models"
    spaced.mkdir()
    ip.run_line_magic("charrnn_save", f'copy "{spaced}/c.safetensors"')
    assert (spaced / "c.safetensors").is_file()
    # --save right after training.
    train(ip, f"third --quiet --save {tmp_path}/third.safetensors")
    assert (tmp_path / "third.safetensors").is_file()


def test_save_and_load_mistakes_keep_models_and_files(ip, tmp_path):
    assert usage_error(ip.run_line_magic, "charrnn_save", "x.safetensors").startswith(
        "no model yet")
    train(ip, "--quiet")
    model = ip.user_ns["charrnn"]
    good = tmp_path / "good.safetensors"
    ip.run_line_magic("charrnn_save", str(good))
    before = good.read_bytes()
    msg = usage_error(ip.run_line_magic, "charrnn_save", f"{tmp_path}/no/such/dir/m.safetensors")
    assert msg.startswith(f"could not save 'charrnn' to '{tmp_path}/no/such/dir/m.safetensors': ")
    assert msg.endswith("(the model is unchanged, and so is any file already there)")
    assert usage_error(ip.run_line_magic, "charrnn_save", f"nope {good}") == (
        "there is no model 'nope'; the models here: charrnn")
    assert good.read_bytes() == before
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"this is not a checkpoint")
    msg = usage_error(ip.run_line_magic, "charrnn_load", str(bad))
    assert msg.startswith(f"could not load '{bad}': ") and "not a readable checkpoint" in msg
    assert usage_error(ip.run_line_magic, "charrnn_load", f"{tmp_path}/missing.safetensors") \
        .startswith("could not load")
    ip.user_ns["notes"] = "keep me"
    assert usage_error(ip.run_line_magic, "charrnn_load", f"{good} notes") == (
        f"'notes' already holds a str in your namespace: load into another NAME "
        f"(%charrnn_load {good} NAME)")
    assert ip.user_ns["charrnn"] is model and ip.user_ns["notes"] == "keep me"
    ip.user_ns["fresh"] = CharRNN()
    assert usage_error(ip.run_line_magic, "charrnn_save", f"fresh {good}") == (
        "'fresh' is not trained yet: there is nothing to save")
    assert good.read_bytes() == before


def test_list_and_info(ip, capsys):
    ip.run_line_magic("charrnn_list", "")
    assert capsys.readouterr().out == (
        "no models yet: train one with %%charrnn_train, or %charrnn_load PATH\n")
    train(ip, "small --quiet")
    ip.run_cell_magic("charrnn_train", "big --cell gru --hidden 20 --layers 2 --steps 3 --quiet",
                      TEXT)
    ip.run_line_magic("charrnn_list", "")
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["name", "cell", "size", "vocab", "steps", "loss", "val"]
    assert lines[1].split()[:5] == ["small", CELL, "1x16", "31", "20"]
    assert lines[2].split()[:6] == ["*", "big", "gru", "2x20", "31", "3"]
    ip.run_line_magic("charrnn_info", "small")
    out = capsys.readouterr().out
    assert out.startswith(f"small = CharRNN({CELL}, 16, vocab 31, 20 steps, loss ")
    assert "parameters" in out and "hidden_size    16" in out and "optimizer      adam" in out
    assert "  training on    1 worker (this process)\n" in out          # a small model: one core


def test_info_says_where_training_runs(ip, capsys, monkeypatch):
    train(ip, "small --quiet --batch-size 4")     # a batch of one has no halves to share
    model = ip.user_ns["small"]
    hint = " (CharRNN.workers = 1 to use one core)"
    for workers, process, where in [
            (2, True, "2 workers: this process and a child process" + hint),
            (2, False, "2 workers: this process and a second thread" + hint),
            (1, True, "1 worker (this process)")]:
        monkeypatch.setattr(model, "workers", workers)
        monkeypatch.setattr(model, "worker_process", process)
        capsys.readouterr()
        ip.run_line_magic("charrnn_info", "small")
        assert f"  training on    {where}\n" in capsys.readouterr().out
        assert model.where_training_runs() == where          # the API says the same
    assert usage_error(ip.run_line_magic, "charrnn_list", "extra").startswith(
        "%charrnn_list: unexpected argument 'extra'")


def test_which_model_when_several_and_no_current(ip):
    train(ip, "one --quiet")
    train(ip, "two --quiet")
    ip.extension_manager.reload_extension("charrnn_magic")   # forgets the current model
    assert usage_error(ip.run_line_magic, "charrnn_sample", "-q") == (
        "which model? there are several (one, two): give its NAME")


# ---- the extension -----------------------------------------------------------------------------
MAGICS = {"line": {"charrnn_train", "charrnn_sample", "charrnn_panel", "charrnn_save",
                   "charrnn_load", "charrnn_list", "charrnn_info"},
          "cell": {"charrnn_train"}}


def test_load_unload_reload(ip):
    manager = ip.magics_manager
    for kind, names in MAGICS.items():
        assert names <= set(manager.magics[kind])
    train(ip, "--quiet")
    ip.run_line_magic("unload_ext", "charrnn_magic")
    for kind, names in MAGICS.items():
        assert not names & set(manager.magics[kind])
    assert "CharRNNMagics" not in manager.registry
    assert not [c for c in ip.configurables if type(c).__name__ == "CharRNNMagics"]
    with pytest.raises(UsageError, match="charrnn_list"):
        ip.run_line_magic("charrnn_list", "")
    ip.run_line_magic("load_ext", "charrnn_magic")
    ip.run_line_magic("reload_ext", "charrnn_magic")
    assert [type(c).__name__ for c in ip.configurables].count("CharRNNMagics") == 1
    for kind, names in MAGICS.items():
        assert names <= set(manager.magics[kind])
    # The model trained before the reload is still the one %charrnn_sample finds.
    assert len(ip.run_line_magic("charrnn_sample", "-n 10 -q")) == 10


@pytest.mark.slow
def test_autoload_and_defaults_from_ipython_config(tmp_path):
    """`c.InteractiveShellApp.extensions` and `c.CharRNNMagics.*` in a real ipython_config.py."""
    profile = tmp_path / "profile_default"
    profile.mkdir()
    (profile / "ipython_config.py").write_text(
        'c.InteractiveShellApp.extensions = ["charrnn_magic"]\n'
        "c.CharRNNMagics.hidden_size = 7\nc.CharRNNMagics.layers = 1\n"
        'c.CharRNNMagics.default_name = "lamps"\n')
    repo = Path(__file__).resolve().parent.parent
    env = {**os.environ, "IPYTHONDIR": str(tmp_path),
           "PYTHONPATH": os.pathsep.join(p for p in (str(repo), os.environ.get("PYTHONPATH"))
                                         if p)}
    code = ("%charrnn_train --corpus verse --steps 2 --quiet\n"
            "print(lamps.hidden_size, lamps.layers, lamps.step)")
    done = subprocess.run([sys.executable, "-m", "IPython", "--no-banner", "-c", code], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "7 1 2"


def test_help_shows_every_option(ip, capsys):
    ip.run_cell("%charrnn_train?")
    out = capsys.readouterr().out
    for option in ["--file", "--corpus", "--list-corpora", "--resume", "--hidden", "--layers",
                   "--cell", "--seq-length", "--batch-size", "--lr", "--optimizer", "--clip",
                   "--clip-mode", "--steps", "--epochs", "--minutes", "--target-loss",
                   "--val-fraction", "--mode", "--lower", "--dtype", "--dropout", "--seed",
                   "--sample-every", "--save", "--quiet", "--preset", "--keep-best",
                   "--background", "--lr-schedule", "--weight-decay", "Examples"]:
        assert option in out, option
    ip.run_cell("%charrnn_sample?")
    out = capsys.readouterr().out
    assert "--seed-char" in out and "--random-seed" in out and "--top-p" in out


def test_usage_errors_print_one_line_in_a_cell(ip, capsys):
    result = ip.run_cell("%charrnn_sample nope")
    assert type(result.error_in_exec) is UsageError
    err = capsys.readouterr().err
    assert "UsageError: no model yet" in err or "UsageError: there is no model" in err
    assert "Traceback" not in err


def test_background_training(ip, capsys):
    assert usage_error(ip.run_cell_magic, "charrnn_train", "--background --save x.safetensors",
                       TEXT).startswith("--save cannot wait for a background run")
    run = ip.run_cell_magic("charrnn_train", f"{SMALL} --steps 30 --background", TEXT)
    model = ip.user_ns["charrnn"]
    assert "charrnn is training in the background" in capsys.readouterr().out
    run.join()
    assert model.step == 30 and not model.is_training
    assert len(ip.run_line_magic("charrnn_sample", "-n 10 -q")) == 10
    close_tree(run.widget)


def test_panel_magic(ip):
    assert usage_error(ip.run_line_magic, "charrnn_panel", "").startswith("no model yet")
    train(ip, "--quiet")
    panel = ip.run_line_magic("charrnn_panel", "-t 0.5 -n 40")
    assert panel.model is ip.user_ns["charrnn"]
    assert panel.temperature.value == 0.5 and panel.length.value == 40
    panel.close()
    close_tree(panel.widget)


def test_a_comment_after_the_options_is_ignored(ip, capsys):
    train(ip, "--quiet")
    text = ip.run_line_magic("charrnn_sample", "-n 30 --random-seed 2   # a note to self")
    assert len(text) == 30
    # A quoted "#" is the character, not a comment: it reaches the vocabulary check.
    assert "'#'" in usage_error(ip.run_line_magic, "charrnn_sample", '-n 5 --prime "the #"')


def test_lines_mode_samples_print_one_per_line(ip, capsys):
    ip.run_cell_magic("charrnn_train", f"names {SMALL} --steps 20 --mode lines --quiet", NAMES)
    capsys.readouterr()
    names = ip.run_line_magic("charrnn_sample", "names --count 4 --random-seed 1")
    assert capsys.readouterr().out.splitlines() == list(names)
