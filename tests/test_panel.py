"""The sampler panel and background training, without a browser.

Controls are driven the way the front end drives them: by setting their ``.value``.
Panels here are unthreaded (no kernel), so the text changes before the assignment returns;
the threaded path is tested separately with ``panel.wait()``.
"""
from __future__ import annotations

import threading
import time

import pytest

from charrnn_magic import CharRNN
from charrnn_magic.notebook.panel import (
    LatestOnly,
    SamplerPanel,
    sampler_panel,
    train_in_background,
)

TEXT = """The quick brown fox jumps over the lazy dog.
Pack my box with five dozen liquor jugs.
How vexingly quick daft zebras jump!
Sphinx of black quartz, judge my vow.
""" * 3

NAMES = "anna\nbob\ncarla\ndavid\nemma\nfrank\ngrace\nhenry\nirene\njack\nkate\nliam\n" * 4


@pytest.fixture(scope="module")
def model():
    m = CharRNN(cell="rnn", hidden_size=32)
    m.fit(TEXT, steps=150, seed=0)
    return m


@pytest.fixture
def fresh_model():
    """A model of its own, for tests that train it further."""
    m = CharRNN(cell="rnn", hidden_size=32)
    m.fit(TEXT, steps=20, seed=1)
    return m


def _until(predicate, timeout=20.0, every=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return predicate()


# ---- the sampler panel -----------------------------------------------------------------------

def test_panel_shows_a_sample_at_once(model):
    panel = model.panel()
    assert isinstance(panel, SamplerPanel)
    assert not panel.threaded                       # no kernel here: synchronous
    shown = panel.output.value                      # the text in the panel's text box
    assert len(shown) == panel.length.value         # as long as the length slider says
    assert set(shown) <= set(model.vocab.chars)     # written in the model's characters
    assert shown == model.sample(length=panel.length.value,
                                 temperature=panel.temperature.value, seed=0)
    panel.temperature.value = 1.5                   # what `panel.text` gives follows the screen
    assert panel.text == panel.output.value != shown
    assert "ms" in panel.status.value
    bundle = panel._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == panel.widget.model_id


@pytest.mark.parametrize("control, value", [
    ("temperature", 1.6), ("temperature", 0.0), ("length", 500), ("seed_char", "P"),
    ("prime", "The "), ("top_k", 2), ("count", 3), ("seed", 12345),
])
def test_every_control_regenerates(model, control, value):
    panel = sampler_panel(model)
    before = panel.output.value
    getattr(panel, control).value = value
    assert panel.output.value != before, f"setting {control} did not change the sample"
    assert "Error" not in panel.status.value


def test_new_sample_button_moves_to_the_next_seed(model):
    panel = sampler_panel(model, seed=5)
    before = panel.output.value
    panel.new_sample.click()
    assert panel.seed.value == 6
    assert panel.output.value != before


def test_a_fixed_seed_is_reproducible(model):
    a, b = sampler_panel(model, seed=3), sampler_panel(model, seed=3)
    assert a.output.value == b.output.value
    for panel in (a, b):
        panel.temperature.value = 1.3
        panel.top_k.value = 5
    assert a.output.value == b.output.value
    first = a.output.value
    a.temperature.value = 0.5
    a.temperature.value = 1.3                       # back to the same settings: same text
    assert a.output.value == first


def test_temperature_zero_is_greedy(model):
    panel = sampler_panel(model, temperature=0.0, seed=1)
    greedy = panel.output.value
    panel.seed.value = 99                           # the seed does not matter when greedy
    assert panel.output.value == greedy
    assert greedy == model.sample(length=panel.length.value, temperature=0, seed=7)


def test_seed_character_slider_shows_invisible_characters(model):
    panel = sampler_panel(model)
    labels = [label for label, _ in panel.seed_char.options]
    values = [value for _, value in panel.seed_char.options]
    assert labels[0] == "(none)" and values[0] == ""
    assert values[1:] == model.vocab.chars
    assert "␣ (space)" in labels and "⏎ (newline)" in labels
    panel.seed_char.value = "P"
    assert panel.output.value.startswith("P")


def test_prime_is_continued_and_replaces_the_seed_character(model):
    panel = sampler_panel(model)
    panel.seed_char.value = "P"
    panel.prime.value = "How "
    assert panel.seed_char.disabled
    assert panel.output.value.startswith("How ")
    panel.prime.value = ""
    assert not panel.seed_char.disabled and panel.output.value.startswith("P")


def test_several_samples_and_the_length_slider(model):
    panel = sampler_panel(model, length=50)
    assert len(panel.output.value) == 50
    panel.count.value = 3
    assert panel.output.value.count("─" * 24) == 2


def test_heatmap_colours_the_same_sample(model):
    panel = sampler_panel(model, seed=4)
    plain = panel.output.value
    panel.heatmap.value = True
    assert panel.output.layout.display == "none" and panel.heat.layout.display is None
    assert panel.output.value == plain              # same seed: the same text, now coloured
    assert panel.heat.value.count('title="p = ') == len(plain)    # one span per character
    panel.seed_char.value = "P"                     # the seed character is given, not drawn
    assert "<b title=\"seed character\">P</b>" in panel.heat.value
    panel.heatmap.value = False
    assert panel.output.layout.display is None and panel.heat.layout.display == "none"


def test_errors_are_shown_in_the_panel(model):
    panel = sampler_panel(model)
    before = panel.output.value
    panel.prime.value = "Ω"
    assert "outside the model" in panel.status.value and "Ω" in panel.status.value
    assert panel.output.value == before             # the last good sample stays


def test_lines_mode_model_gives_one_line_per_sample():
    m = CharRNN(cell="gru", hidden_size=24)
    m.fit(NAMES, steps=60, mode="lines", seed=0)
    panel = sampler_panel(m)
    assert panel.seed_char.options[0] == ("(none: start of line)", "")
    assert panel.count.value > 1
    assert len(panel.output.value.split("\n")) == panel.count.value
    panel.count.value = 4
    assert len(panel.output.value.split("\n")) == 4


def test_untrained_model_fills_in_after_training():
    m = CharRNN(cell="rnn", hidden_size=16)
    panel = sampler_panel(m)
    assert panel.output.value == "" and "not trained yet" in panel.status.value
    m.fit(TEXT, steps=5, seed=0)
    panel.refresh()
    assert panel.output.value and len(panel.seed_char.options) == len(m.vocab) + 1


def test_regenerate_shows_and_returns_the_sample_of_the_model_as_it_is_now(fresh_model):
    panel = sampler_panel(fresh_model, length=100, temperature=0.8, seed=3)
    before = panel.output.value
    fresh_model.fit(TEXT, steps=40)                 # the model learns more; the panel waits
    text = panel.regenerate()
    assert len(text) == 100
    assert text == fresh_model.sample(length=100, temperature=0.8, seed=3) != before
    assert panel.output.value == text               # and it is what the panel shows
    assert panel.last_seconds is not None and panel.last_seconds > 0


# ---- stale requests: the threaded panel ------------------------------------------------------

def test_latest_only_drops_requests_that_wait():
    seen = []
    gate = threading.Event()

    def slow(request):
        gate.wait(5)
        seen.append(request)

    runner = LatestOnly(slow)
    for i in range(50):                             # the worker is stuck on request 0
        runner.submit(i)
    gate.set()
    assert runner.wait_idle(5)
    assert seen[-1] == 49                           # the newest request always runs
    assert len(seen) <= 3 and runner.dropped >= 47  # the ones in between were dropped
    assert seen == sorted(seen)                     # and never out of order
    runner.close()


def test_threaded_panel_ends_on_the_newest_settings(model):
    panel = sampler_panel(model, threaded=True, seed=2)
    assert panel.threaded and panel.output.value    # the first sample is drawn synchronously
    for length in range(20, 1000, 20):              # a slider dragged quickly
        panel.length.value = length
    panel.temperature.value = 0.7
    assert panel.wait(10)
    reference = sampler_panel(model, seed=2, temperature=0.7, length=980, threaded=False)
    assert panel.output.value == reference.output.value
    assert panel._worker.done < 50                  # not every position was generated
    panel.close()


# ---- background training ---------------------------------------------------------------------

def test_panel_follows_background_training_and_stop_ends_it(fresh_model):
    panel = sampler_panel(fresh_model, seed=0)
    texts = {panel.output.value}
    run = train_in_background(fresh_model, TEXT, steps=1_000_000, sample_every=0.1,
                              refresh_every=0.05)
    try:
        assert run.running and fresh_model.is_training
        assert _until(lambda: len(texts | {panel.output.value}) > 1 or not run.running, 30)
        texts.add(panel.output.value)
        assert len(texts) > 1, "the panel did not change while the model trained"
        panel.temperature.value = 0.3               # the controls still work during training
        assert "Error" not in panel.status.value
        assert run.stop_button.disabled is False
    finally:
        run.stop(timeout=30)
    assert not run.running and not run._thread.is_alive() and not fresh_model.is_training
    assert run.error is None and run.history.stop_reason == "stopped"
    assert run.stop_button.disabled and run.bar.bar_style == "warning"
    assert "stopped" in run.info.value
    assert fresh_model.step > 20
    assert isinstance(fresh_model.sample(length=30, seed=0), str)
    assert fresh_model.evaluate(TEXT) > 0
    assert "svg" in run.curve.value


def test_stop_button_stops(fresh_model):
    run = train_in_background(fresh_model, TEXT, steps=1_000_000)
    run.stop_button.click()
    assert run.join(timeout=30) is fresh_model.history
    assert run.history.stop_reason == "stopped"


def test_a_finished_run_leaves_a_usable_model(fresh_model):
    start = fresh_model.step
    run = train_in_background(fresh_model, TEXT, steps=30, refresh_every=0.05)
    history = run.join(timeout=60)
    assert history.stop_reason == "steps" and fresh_model.step == start + 30
    assert run.bar.value == 1.0 and run.bar.bar_style == "success"
    assert "done" in run.info.value and run.stop_button.disabled
    assert len(fresh_model.sample(length=40, seed=0)) == 40


def test_second_training_while_one_runs_is_a_clear_error(fresh_model):
    run = train_in_background(fresh_model, TEXT, steps=1_000_000)
    try:
        with pytest.raises(RuntimeError, match="already training"):
            train_in_background(fresh_model, TEXT, steps=10)
        with pytest.raises(RuntimeError, match="already training"):
            fresh_model.fit(TEXT, steps=10)
        assert run.running                          # the first run is unharmed
    finally:
        run.stop(timeout=30)
    run2 = train_in_background(fresh_model, TEXT, steps=5)   # after Stop: allowed again
    assert run2.join(timeout=60).stop_reason == "steps"


def test_bad_arguments_raise_at_once(fresh_model):
    with pytest.raises(ValueError):
        train_in_background(fresh_model, TEXT, steps=-3)
    assert not fresh_model.is_training


def test_an_error_during_training_is_shown_and_raised_by_join(fresh_model):
    def explode(progress):
        if progress.run_step == 5:
            raise OSError("disk on fire")

    run = train_in_background(fresh_model, TEXT, steps=1000, callback=explode)
    with pytest.raises(OSError, match="disk on fire"):
        run.join(timeout=30)
    assert "disk on fire" in run.info.value and run.bar.bar_style == "danger"
    assert not fresh_model.is_training
    assert isinstance(fresh_model.sample(length=10, seed=0), str)


def test_rerunning_a_cell_closes_the_panels_its_earlier_run_made(model, monkeypatch):
    import charrnn_magic.notebook.panel as panel_module

    origin = {"value": ("cell-a", "run-1")}
    monkeypatch.setattr(panel_module, "_cell_origin", lambda: origin["value"])
    first, second = sampler_panel(model), sampler_panel(model)     # one run, two panels
    origin["value"] = ("cell-a", "run-2")                           # the cell is run again
    third = sampler_panel(model)
    origin["value"] = ("cell-b", "run-3")                           # another cell
    fourth = sampler_panel(model)
    assert first._closed and second._closed and not first.follow_training
    assert not third._closed and not fourth._closed
    before = first.output.value
    first.temperature.value = 1.9                                   # closed: no work any more
    assert first.output.value == before


def test_start_values_outside_the_default_ranges_are_kept(model):
    panel = sampler_panel(model, length=2500, count=55, top_k=3, temperature=0.0, seed=9)
    assert panel.length.value == 2500 and panel.count.value == 55 and panel.top_k.value == 3
    panel.close()


@pytest.mark.slow
def test_after_a_finished_background_run_the_model_and_its_worker_child_are_freed():
    import gc
    import weakref

    from charrnn_magic.second_worker import _children

    model = CharRNN(cell="lstm", hidden_size=12, layers=2)
    model.workers = 2
    run = train_in_background(model, TEXT, steps=5, batch_size=4, seq_length=6, refresh_every=0.05)
    run.join(timeout=60)
    child = _children[model._net].process
    gone = weakref.ref(model)
    dashboard = run.widget                   # still open, as on a notebook page: holds no model
    del model, run
    gc.collect()
    assert gone() is None
    assert child.wait(timeout=10) == 0
    assert dashboard.children                # (the dashboard itself is still there)
