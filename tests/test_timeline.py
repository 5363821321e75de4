"""The training timeline: bounded weight snapshots, models made of them, and saving them."""
from __future__ import annotations

import numpy as np
import pytest

from charrnn_magic import CharRNN
from charrnn_magic.timeline import Recorder

TEXT = ("The quick brown fox jumps over the lazy dog.\n"
        "Pack my box with five dozen liquor jugs.\n") * 6


def small(**kw):
    m = CharRNN(hidden_size=16, **kw)
    return m


@pytest.mark.slow
def test_the_timeline_is_bounded_and_spread_over_the_whole_training():
    m = small()
    m.snapshots = 6
    m.fit(TEXT, steps=150, seed=1)
    steps = m.timeline.steps
    assert len(steps) <= 6 and len(steps) >= 3, steps
    assert steps[-1] == m.step == 150
    every = m.timeline.every
    assert all(s % every == 0 for s in steps[:-1]), (steps, every)
    assert steps[0] <= 150 // 3, f"the snapshots are not spread from the start: {steps}"
    m.fit(TEXT, steps=300)                     # a second fit thins the first one's too
    steps = m.timeline.steps
    assert len(steps) <= 6 and steps[-1] == 450 and steps[0] <= 450 // 3, steps


def test_the_latest_snapshot_is_the_model_as_it_is_even_with_keep_best():
    m = small()
    m.fit(TEXT, steps=60, seed=2, keep_best=True, eval_every=5, lr=0.5)
    last = m.timeline[-1]
    assert last.step == m.step
    assert np.array_equal(last.weights, m._net.flat)
    with pytest.raises(ValueError):
        last.weights[0] = 1.0                  # read-only: nobody changes history by accident


def test_thinning_keeps_the_coarser_grid_and_the_latest():
    r = Recorder()
    for step in range(1, 42):
        r.add(step, np.full(3, float(step)), limit=10)
    assert r.every == 8 and [s.step for s in r.snapshots] == [8, 16, 24, 32, 40, 41]
    assert all(s.weights[0] == s.step for s in r.snapshots)
    r.add(48, np.zeros(3), limit=10)           # 41 was off the grid: it goes
    assert [s.step for s in r.snapshots] == [8, 16, 24, 32, 40, 48]
    r.thin(1)
    assert [s.step for s in r.snapshots] == [48]


def test_zero_snapshots_takes_none_and_the_repr_states_the_memory():
    m = small()
    m.fit(TEXT, steps=30, seed=3)
    text = repr(m.timeline)
    n = len(m.timeline)
    assert f"{n} × {m.n_params:,} weights × 4 bytes" in text
    assert m.timeline.nbytes == n * m.n_params * 4
    m.snapshots = 0
    m.fit(TEXT, steps=10)
    assert len(m.timeline) == 0 and "none are taken" in repr(m.timeline)
    m64 = small(dtype="float64")
    m64.fit(TEXT, steps=3, seed=3)
    assert "× 8 bytes" in repr(m64.timeline)


def test_sampling_a_snapshot_equals_sampling_the_model_saved_at_that_step(tmp_path):
    m = small(cell="gru")
    m.fit(TEXT, steps=32, seed=4)
    path = m.save(tmp_path / "step32.safetensors")
    m.fit(TEXT, steps=100)
    assert 32 in m.timeline.steps
    then, saved = m.at_step(32), CharRNN.load(path)
    assert np.array_equal(then._net.flat, saved._net.flat)
    for seed in (0, 1, 2):
        assert then.sample(120, temperature=0.9, seed=seed) == saved.sample(
            120, temperature=0.9, seed=seed)
    assert then.sample(120, seed=0) != m.sample(120, seed=0)   # the model itself moved on
    assert then.evaluate(TEXT) == saved.evaluate(TEXT)
    assert then.step == 32 and then.history.step[-1] == 32 and then.timeline.steps[-1] == 32
    assert m.step == 132                                        # unchanged by at_step


def test_a_snapshot_model_can_be_inspected_and_trained_on_its_own():
    m = small(cell="lstm")
    m.fit(TEXT, steps=40, seed=5)
    early = m.at_step(m.timeline.steps[0])
    assert early.trace(TEXT[:50]).mean_loss > m.trace(TEXT[:50]).mean_loss
    before = m._net.flat.copy()
    early.fit(TEXT, steps=5)
    assert early.step == m.timeline.steps[0] + 5
    assert np.array_equal(m._net.flat, before)


def test_save_and_load_round_trip_the_snapshots(tmp_path):
    m = small()
    m.fit(TEXT, steps=70, seed=6)
    path = m.save(tmp_path / "with.safetensors", snapshots=True)
    loaded = CharRNN.load(path)
    assert loaded.timeline.steps == m.timeline.steps
    assert loaded.timeline.every == m.timeline.every
    for a, b in zip(loaded.timeline, m.timeline, strict=True):
        assert a.weights.dtype == b.weights.dtype and np.array_equal(a.weights, b.weights)
    k = m.timeline.steps[1]
    assert loaded.at_step(k).sample(80, seed=1) == m.at_step(k).sample(80, seed=1)
    # Exact resume: both go on to take the same snapshots.
    m.fit(TEXT, steps=50)
    loaded.fit(TEXT, steps=50)
    assert loaded.timeline.steps == m.timeline.steps
    assert np.array_equal(loaded.timeline[-1].weights, m.timeline[-1].weights)
    without = CharRNN.load(m.save(tmp_path / "without.safetensors"))
    assert len(without.timeline) == 0
    assert (tmp_path / "without.safetensors").stat().st_size < path.stat().st_size


def test_a_missing_snapshot_is_a_one_line_value_error():
    m = small()
    with pytest.raises(ValueError, match="has none"):
        m.at_step(1)
    m.fit(TEXT, steps=64, seed=7)
    for bad, words in [(5, "the nearest are"), (10**6, "no snapshot of step 1000000"),
                       ("3", "whole number"), (True, "whole number")]:
        with pytest.raises(ValueError, match=words) as info:
            m.at_step(bad)
        assert "\n" not in str(info.value)


def test_load_refuses_a_file_whose_snapshots_do_not_add_up(tmp_path):
    from tests.test_checkpoint import craft

    m = small()
    m.fit(TEXT, steps=40, seed=8)
    good = m.save(tmp_path / "good.safetensors", snapshots=True)
    steps = m.timeline.steps

    def add_step(meta):
        meta["snapshots"]["steps"] = sorted(meta["snapshots"]["steps"] + [steps[-1] - 1])

    def past_the_end(meta):
        meta["snapshots"]["steps"][-1] = 10**6

    def drop_entry(meta):
        del meta["snapshots"]

    def unordered(meta):
        meta["snapshots"]["steps"].reverse()

    for edit, words in [(add_step, f"tensor 'snapshots/{steps[-1] - 1}' is missing"),
                        (past_the_end, "past the model's step"),
                        (drop_entry, "a tensor 'snapshots/[0-9]+' that its configuration"),
                        (unordered, "snapshots.steps is not a rising list")]:
        bad = craft(good, tmp_path / f"{edit.__name__}.safetensors", meta=edit)
        with pytest.raises(ValueError, match=words) as info:
            CharRNN.load(bad)
        assert "\n" not in str(info.value)
