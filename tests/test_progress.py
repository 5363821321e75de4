"""Progress reporters (text and widgets) and the SVG loss curve, without a kernel."""
from __future__ import annotations

import math
import re
import xml.dom.minidom

import pytest

from charrnn_magic import CharRNN
from charrnn_magic.notebook.plots import loss_curve_svg
from charrnn_magic.notebook.progress import WidgetReporter, make_reporter
from charrnn_magic.notebook.widget_tools import close_tree, in_kernel
from charrnn_magic.progress import QuietReporter, TextReporter, format_duration

TEXT = "a small text to train on, with a few words in it.\n" * 12
HOLD_OUT = dict(val_fraction=0.1)       # TEXT is short: without it, it is learned whole


def fit(model, reporter, **kwargs):
    reporter.start("header line")
    history = model.fit(TEXT, callback=reporter, seed=0, **{**HOLD_OUT, **kwargs})
    return reporter.finish(history)


def test_text_reporter_prints_throttled_lines_previews_and_summary(capsys):
    model = CharRNN(hidden_size=16)
    reporter = make_reporter(model, name="m", widgets=False, sample_every=10, interval=3600)
    assert isinstance(reporter, TextReporter)
    line = fit(model, reporter, steps=30)
    out = capsys.readouterr().out.splitlines()
    # The header, then what was chosen from the text (the model here is 1x16 GRU by default).
    notes = model.fit_notes
    assert out[:1 + len(notes)] == ["header line", *notes] and "1×16 GRU" in notes[0]
    out = out[len(notes):]
    # The first step is drawn, then nothing for an hour (the interval), except the previews.
    assert re.fullmatch(r"  step 1/30 \(3%\) · loss \d\.\d{3}( · val \d\.\d{3})? · [\d,]+ chars/s"
                        r" · ETA .+", out[1])
    assert [l for l in out if l.startswith("  --- sample at step")] == [
        "  --- sample at step 10 ---", "  --- sample at step 20 ---", "  --- sample at step 30 ---"]
    assert [s for s, _ in reporter.previews] == [10, 20, 30]
    assert out[-1] == line and re.fullmatch(
        r"m: 30 steps in [\d.]+ s \([\d,]+ chars/s\): loss \d\.\d{3}, val \d\.\d{3}", line)


def test_nothing_is_shown_when_fit_refuses_its_arguments(capsys):
    model = CharRNN(hidden_size=16)
    reporter = make_reporter(model, widgets=False)
    reporter.start("header line")
    with pytest.raises(ValueError):
        model.fit(TEXT, steps=5, seq_length=10_000, callback=reporter)
    reporter.fail()
    assert capsys.readouterr().out == ""


def test_quiet_reporter_speaks_only_of_interruptions(capsys):
    model = CharRNN(hidden_size=16)
    reporter = make_reporter(model, quiet=True, sample_every=1)
    assert isinstance(reporter, QuietReporter)
    fit(model, reporter, steps=5)
    assert capsys.readouterr().out == "" and reporter.previews == []

    def stop(progress, inner=reporter.__class__.__call__):
        inner(reporter, progress)
        if progress.run_step == 3:
            raise KeyboardInterrupt

    reporter = make_reporter(model, name="m", quiet=True)
    reporter.start()
    history = model.fit(TEXT, steps=10, callback=lambda p: stop(p), **HOLD_OUT)
    reporter.finish(history)
    assert re.fullmatch(r"m: stopped at step 3 of 10 after [\d.]+ s; the model keeps what it "
                        r"learned \(loss \d\.\d{3}, val \d\.\d{3}; 8 steps in all\)\n",
                        capsys.readouterr().out)


def test_widget_reporter_draws_bar_status_curve_and_preview(capsys):
    pytest.importorskip("ipywidgets")
    model = CharRNN(hidden_size=16)
    reporter = make_reporter(model, name="m", widgets=True, sample_every=10)
    assert isinstance(reporter, WidgetReporter)
    try:
        line = fit(model, reporter, steps=20)
        assert reporter.bar.value == 1.0 and reporter.bar.bar_style == "success"
        assert reporter.status_html.value == line.replace("&", "&amp;")
        assert reporter.curve.value.startswith("<svg") and "train " in reporter.curve.value
        assert "sample at step 20" in reporter.preview_html.value
        # also as text, for saved notebooks
        assert capsys.readouterr().out.splitlines()[-1] == line
    finally:
        close_tree(reporter.widget)


def test_widget_bar_follows_a_target_loss():
    pytest.importorskip("ipywidgets")
    model = CharRNN(hidden_size=16)
    reporter = make_reporter(model, widgets=True, target_loss=0.5, interval=0)
    try:
        reporter.start()

        def callback(progress):
            reporter(progress)
            if progress.run_step == 40:
                raise KeyboardInterrupt

        # Only a target loss: the engine cannot tell how far along the run is.
        model.fit(TEXT, target_loss=0.5, callback=callback, seed=0)
        assert reporter.last.fraction is None
        assert 0.0 < reporter.bar.value < 1.0      # part of the way from the first loss to 0.5
    finally:
        close_tree(reporter.widget)


def test_format_duration_and_environment():
    assert [format_duration(s) for s in (None, 0.04, 4.12, 42, 185, 3725)] == [
        "?", "0.0 s", "4.1 s", "42 s", "3 min 05 s", "1 h 02 min"]
    assert in_kernel() is False     # pytest is not a kernel


def test_loss_curve_svg():
    history = {"step": list(range(1, 5001)),
               "loss": [1.5 + 3 * math.exp(-i / 700) for i in range(5000)],
               "val_step": list(range(250, 5001, 250)),
               "val_loss": [1.6 + 3 * math.exp(-i / 700) for i in range(250, 5001, 250)]}
    svg = loss_curve_svg(history, width=400, height=150, title="a <title> & more")
    xml.dom.minidom.parseString(svg)                        # well-formed
    assert 'width="400" height="150"' in svg and "a &lt;title&gt; &amp; more" in svg
    train_points = re.findall(r'<polyline points="([^"]+)"[^>]*stroke="#1f77b4"', svg)[0]
    assert len(train_points.split()) <= 400                 # downsampled to the plot width
    assert "train 1.502" in svg and "val 1.602" in svg
    # Empty, single-point and non-finite histories still give a picture.
    assert "no steps yet" in loss_curve_svg({})
    xml.dom.minidom.parseString(loss_curve_svg({"step": [1], "loss": [4.0]}))
    xml.dom.minidom.parseString(loss_curve_svg({"step": [1, 2, 3], "loss": [4.0, math.nan, 3.0]}))
    model = CharRNN(hidden_size=8)
    model.fit(TEXT, steps=5, seed=0, **HOLD_OUT)
    assert loss_curve_svg(model.history).count("<polyline") == 3   # axes, train, val
