"""The sampler panel's training-step slider: sampling from the snapshots of the timeline."""
from __future__ import annotations

import time

import pytest

from charrnn_magic import CharRNN
from charrnn_magic.notebook.panel import NOW, sampler_panel, train_in_background

TEXT = ("The quick brown fox jumps over the lazy dog.\n"
        "Pack my box with five dozen liquor jugs.\n") * 4


@pytest.fixture
def model():
    m = CharRNN(hidden_size=24)
    m.fit(TEXT, steps=120, seed=0)
    return m


def test_the_step_slider_lists_the_snapshots_and_starts_now(model):
    panel = sampler_panel(model)
    steps = model.timeline.steps
    assert steps[-1] == model.step
    assert [v for _, v in panel.step.options] == steps[:-1] + [NOW]
    assert panel.step.value == NOW and not panel.step.disabled
    assert panel.step.options[-1][0] == "now" and panel.step.options[0][0] == f"{steps[0]:,}"
    panel.close()


def test_moving_the_step_slider_samples_from_that_snapshot(model):
    panel = sampler_panel(model, temperature=0.5, length=150, seed=3)
    now = panel.output.value
    assert now == model.sample(150, temperature=0.5, seed=3)
    early = model.timeline.steps[0]
    panel.step.value = early
    assert panel.output.value != now
    assert panel.output.value == model.at_step(early).sample(150, temperature=0.5, seed=3)
    assert f"as it was at step {early:,}" in panel.title.value
    panel.heatmap.value = True                     # the heat-map is of the snapshot too
    assert panel.output.value == model.at_step(early).sample(150, temperature=0.5, seed=3)
    panel.step.value = NOW
    assert panel.output.value == now and "as it was" not in panel.title.value
    panel.close()


def test_new_snapshots_join_the_slider_and_the_chosen_step_stays(model):
    panel = sampler_panel(model)
    chosen = model.timeline.steps[2]
    panel.step.value = chosen
    text = panel.output.value
    model.fit(TEXT, steps=40)
    panel.refresh()
    steps = [v for _, v in panel.step.options]
    assert steps[-2] == model.timeline.steps[-2] > 120 and steps[-1] == NOW
    if chosen in model.timeline.steps:
        assert panel.step.value == chosen and panel.output.value == text
    else:                                          # thinned away: the nearest one left
        assert panel.step.value == min(steps[:-1], key=lambda s: abs(s - chosen))
    panel.close()


def test_an_untrained_model_has_only_now_and_fills_in():
    m = CharRNN(hidden_size=8)
    panel = sampler_panel(m)
    assert [v for _, v in panel.step.options] == [NOW] and panel.step.disabled
    m.fit(TEXT, steps=10, seed=1)
    panel.refresh()
    assert len(panel.step.options) > 1 and not panel.step.disabled
    panel.close()


def test_snapshots_appear_during_background_training():
    m = CharRNN(hidden_size=16)
    m.fit(TEXT, steps=5, seed=2)
    panel = sampler_panel(m)
    first = len(panel.step.options)
    run = train_in_background(m, TEXT, steps=100_000, sample_every=0.1)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and max(v for _, v in panel.step.options) < 64:
        time.sleep(0.05)
    run.stop()
    steps = [v for _, v in panel.step.options]
    assert max(steps) >= 64 and len(steps) >= first, steps
    panel.close()
