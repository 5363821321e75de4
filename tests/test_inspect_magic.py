"""%charrnn_inspect in a real IPython shell (see conftest.py): the text it reads, the options
that reach the inspector panel, and every mistake as a one-line UsageError."""
from __future__ import annotations

import pytest
from IPython.core.error import UsageError

from charrnn_magic import CharRNN
from charrnn_magic.ngram import NGram
from charrnn_magic.notebook.inspector import InspectorPanel

TEXT = ('the quick (brown) fox "jumps" over the lazy dog.\n'
        'pack my box [with] five "dozen" liquor jugs.\n') * 4


@pytest.fixture
def model(ip):
    ip.run_cell_magic("charrnn_train", "--cell lstm --hidden 12 --layers 2 --steps 40 --seed 1 -q",
                      TEXT)
    return ip.user_ns["charrnn"]


def usage_error(func, *args) -> str:
    with pytest.raises(UsageError) as info:
        func(*args)
    assert type(info.value) is UsageError
    message = str(info.value)
    assert "\n" not in message, message
    return message


def test_the_cell_is_inspected_with_the_options_given(ip, model):
    panel = ip.run_cell_magic("charrnn_inspect", "--layer 1 --state c --unit 5 --window 50", TEXT)
    assert isinstance(panel, InspectorPanel)
    assert panel.trace.text == TEXT
    assert (panel.layer.value, panel.state.value, panel.unit.value) == (1, "c", 5)
    assert panel.window == 50 and "c[5] = " in panel.view.value
    panel.close()


def test_the_ngram_is_counted_on_the_training_text_by_default(ip, model):
    panel = ip.run_cell_magic("charrnn_inspect", "--ngram 3 --colour ngram", TEXT[:80])
    assert panel.colour.value == "vs n-gram" and panel.ngram.n == 3
    expected = NGram(TEXT, n=3, vocab=model.vocab).loss(TEXT[:80])
    assert (panel.ngram.loss(TEXT[:80]) == expected).all()
    panel.close()
    panel = ip.run_cell_magic("charrnn_inspect", "--ngram 0", TEXT[:80])
    assert panel.ngram is None and "vs n-gram" not in panel.colour.options
    panel.close()


def test_train_file_sample_and_file(ip, model, tmp_path):
    other = tmp_path / "other.txt"
    other.write_text("the lazy dog jumps.\n" * 3, encoding="utf-8")
    panel = ip.run_line_magic("charrnn_inspect", f"--file {other} --train-file {other}")
    assert panel.trace.text == other.read_text()
    assert panel.ngram.mean_loss("the lazy dog") < NGram(TEXT, vocab=model.vocab).mean_loss(
        "the lazy dog")
    panel.close()
    panel = ip.run_line_magic("charrnn_inspect", "--sample 300 -t 0.5 -r 3")
    assert panel.trace.text == model.sample(300, temperature=0.5, stop=None, seed=3)
    assert len(panel.trace) == 300
    panel.close()


def test_step_inspects_a_snapshot(ip, model):
    k = model.timeline.steps[0]
    panel = ip.run_cell_magic("charrnn_inspect", f"--step {k}", TEXT)
    assert panel.model.step == k and panel.model is not model
    assert panel.trace.mean_loss == model.at_step(k).trace(TEXT).mean_loss
    assert panel.trace.mean_loss != model.trace(TEXT).mean_loss
    panel.close()


def test_mistakes_are_one_line_usage_errors(ip, model, tmp_path):
    cell = lambda line, text=TEXT: ip.run_cell_magic("charrnn_inspect", line, text)  # noqa: E731
    line = lambda text: ip.run_line_magic("charrnn_inspect", text)                   # noqa: E731
    for call, args, words in [
        (line, ("",), "needs text"),
        (cell, ("", "  \n"), "the cell is empty"),
        (cell, ("", "THE €"), "never saw: 'E' (try 'e'), 'H' (try 'h'), 'T' (try 't'), '€'"),
        (cell, ("--layer 2",), "--layer 2 is out of range: the model has 2 layer(s)"),
        (cell, ("--unit 12",), "--unit 12 is out of range: layers have 12 units"),
        (cell, ("--state z",), "--state 'z' is not a state of a LSTM"),
        (cell, ("--window 9999",), "--window 9999 is out of range"),
        (cell, ("--step 3",), "--step: there is no snapshot of step 3"),
        (cell, ("--sample 10",), "one way only"),
        (cell, ("-t 0.3",), "-t and -r are for --sample"),
        (cell, ("--max-chars 20",), "more than --max-chars 20"),
        (cell, ("--ngram 0 --train-file x",), "--ngram 0 leaves the n-gram out"),
        (cell, ("--train-corpus nope",), "--train-corpus"),
        (line, (f"--file {tmp_path / 'missing.txt'}",), "--file"),
        (cell, ("--colour pink",), "--colour"),
        (cell, ("--bogus",), "unknown option --bogus"),
        (cell, ("nobody",), "there is no model 'nobody'"),
    ]:
        assert words in usage_error(call, *args), (args, words)


def test_an_untrained_or_loaded_model(ip, tmp_path):
    message = usage_error(ip.run_cell_magic, "charrnn_inspect", "", TEXT)
    assert "no model yet" in message
    ip.user_ns["fresh"] = CharRNN()
    message = usage_error(ip.run_cell_magic, "charrnn_inspect", "fresh", TEXT)
    assert "'fresh' is not trained yet" in message
    trained = CharRNN(hidden_size=8)
    trained.fit(TEXT, steps=5, seed=1)
    trained.save(tmp_path / "m.safetensors")
    ip.run_line_magic("charrnn_load", f"{tmp_path / 'm.safetensors'} loaded")
    panel = ip.run_cell_magic("charrnn_inspect", "loaded", TEXT)       # no n-gram, no error
    assert panel.ngram is None
    panel.close()
    message = usage_error(ip.run_cell_magic, "charrnn_inspect", "loaded --colour ngram", TEXT)
    assert "--train-file" in message
    message = usage_error(ip.run_cell_magic, "charrnn_inspect", "loaded --ngram 3", TEXT)
    assert "does not keep its training text" in message


def test_save_snapshots_option_keeps_the_timeline(ip, model, tmp_path):
    ip.run_line_magic("charrnn_save", f"{tmp_path / 'with.safetensors'} --snapshots")
    ip.run_line_magic("charrnn_save", f"charrnn {tmp_path / 'without.safetensors'}")
    ip.run_line_magic("charrnn_load", f"{tmp_path / 'with.safetensors'} back")
    assert ip.user_ns["back"].timeline.steps == model.timeline.steps != []
    assert len(CharRNN.load(tmp_path / "without.safetensors").timeline) == 0
