"""The engine as a user meets it through ``CharRNN``: learning, sampling, stop rules, safety."""
import inspect
import math
import os
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

from charrnn_magic import CharRNN, TrainingDiverged
from charrnn_magic.optim import OPTIMIZERS
from tests import datasets

# An original rhyme, 136 characters, in which every 4-character context has one continuation.
POEM = ("Hop, frog, hop! A lily pad waits;\nsing, moon, of big green gates.\n"
        "Quick fox, jump over my wall;\nsleepy owls hum, dusk comes for us all.\n")


def unigram_entropy(text: str) -> float:
    counts = np.array(list(Counter(text).values()), dtype=float)
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum())


@pytest.fixture(scope="module")
def poem_model():
    model = CharRNN(hidden_size=30)
    model.fit(POEM, steps=3000, seq_length=5, val_fraction=0, seed=0)
    return model


def test_poem_is_memorised_and_reproduced_greedily(poem_model):
    assert poem_model.sample(len(POEM), temperature=0, seed_char=POEM[0]) == POEM


@pytest.mark.slow
def test_names_in_lines_mode_are_new_and_name_like():
    names = datasets.names()
    text = "\n".join(names)
    model = CharRNN(cell="gru", hidden_size=64)
    history = model.fit(text, steps=600, mode="lines", optimizer="adam", lr=0.01, seed=1)
    entropy = unigram_entropy(text.replace("\n", "") + "\n" * len(names))
    assert history.val_loss[-1] < entropy - 0.5, (history.val_loss[-1], entropy)
    samples = model.sample(count=40, temperature=0.8, seed=3)
    assert all("\n" not in s and s == s.strip() for s in samples)
    assert all(set(s) <= set("abcdefghijklmnopqrstuvwxyz") for s in samples)
    assert sum(2 <= len(s) <= 12 for s in samples) >= 32
    assert len(set(samples) - set(names)) >= 10          # mostly invented, not recalled


def test_stream_training_on_prose_beats_unigram_entropy():
    text = datasets.prose(300_000)
    model = CharRNN.from_preset("classic")
    history = model.fit(text, steps=400, batch_size=32, seed=1)
    assert history.val_loss[-1] < unigram_entropy(text) - 0.6
    assert history.val_loss[-1] < history.val_loss[0]


@pytest.mark.parametrize("cell,mode", [("rnn", "stream"), ("lstm", "stream"), ("gru", "lines")])
def test_same_seed_same_weights_bit_for_bit(cell, mode):
    text = "\n".join(["abba", "cabbage", "bad", "dacca", "acab", "beaded"] * 5)
    runs = []
    for _ in range(2):
        model = CharRNN(cell=cell, hidden_size=16, layers=2, dropout=0.2)
        model.fit(text, steps=30, mode=mode, batch_size=4, seq_length=7, seed=42)
        runs.append(model._net.flat.copy())
    assert np.array_equal(runs[0], runs[1])
    other = CharRNN(cell=cell, hidden_size=16, layers=2, dropout=0.2)
    other.fit(text, steps=30, mode=mode, batch_size=4, seq_length=7, seed=43)
    assert not np.array_equal(runs[0], other._net.flat)


@pytest.mark.parametrize("cell,mode,optimizer",
                         [("rnn", "stream", "adagrad"), ("lstm", "lines", "adam")])
def test_resume_is_exact(tmp_path, cell, mode, optimizer):
    text = "\n".join(["abba", "cabbage", "bad", "dacca", "acab", "beaded", "ebb"] * 6)
    # Without keep_best: a run split in two restores no best weights in the middle.
    settings = dict(mode=mode, batch_size=3, seq_length=6, optimizer=optimizer, seed=7,
                    val_fraction=0.1, lr_schedule="constant", keep_best=False, patience=0)

    straight = CharRNN(cell=cell, hidden_size=12, layers=2, dropout=0.1)
    straight.fit(text, steps=40, **settings)

    first = CharRNN(cell=cell, hidden_size=12, layers=2, dropout=0.1)
    first.fit(text, steps=20, **settings)
    first.save(tmp_path / "half.safetensors")
    resumed = CharRNN.load(tmp_path / "half.safetensors")
    resumed.fit(text, steps=20, keep_best=False)

    assert resumed.step == straight.step == 40
    assert np.array_equal(resumed._net.flat, straight._net.flat)
    assert resumed.history.step == straight.history.step
    first.fit(text, steps=20, keep_best=False)      # continuing in memory is exact too
    assert np.array_equal(first._net.flat, straight._net.flat)


def test_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "model.safetensors"
    model = CharRNN(hidden_size=8)
    model.fit(POEM, steps=5, seq_length=5, seed=1)
    model.save(path)
    before = path.read_bytes()
    model.fit(POEM, steps=5)

    import os
    def crash(*args):
        raise OSError("disk full")
    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        model.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before                       # the old checkpoint survived
    assert list(tmp_path.iterdir()) == [path]                # and no temporary file was left
    assert CharRNN.load(path).step == 5


def test_loaded_model_samples_the_same(tmp_path):
    model = CharRNN(cell="gru", hidden_size=16)
    model.fit(POEM, steps=50, seq_length=10, seed=3)
    loaded = CharRNN.load(model.save(tmp_path / "m.safetensors"))
    assert loaded.sample(80, seed=5) == model.sample(80, seed=5)
    assert loaded.summary() == model.summary()
    assert loaded.evaluate(POEM) == pytest.approx(model.evaluate(POEM))


def _saved(tmp_path):
    model = CharRNN(hidden_size=8)
    model.fit(POEM, steps=3, seq_length=5, seed=1)
    return model.save(tmp_path / "good.safetensors")


def test_truncated_checkpoint_is_named(tmp_path):
    good = _saved(tmp_path)
    bad = tmp_path / "cut.safetensors"
    bad.write_bytes(good.read_bytes()[:-100])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        CharRNN.load(bad)


def test_garbage_and_missing_checkpoints_are_named(tmp_path):
    garbage = tmp_path / "junk.safetensors"
    garbage.write_bytes(b"\x00\x01not a checkpoint" * 10)
    with pytest.raises(ValueError, match="truncated or corrupt"):
        CharRNN.load(garbage)
    with pytest.raises(ValueError, match="no checkpoint file"):
        CharRNN.load(tmp_path / "nothing.safetensors")


def test_wrong_version_and_wrong_shapes_are_named(tmp_path):
    import json

    from safetensors.numpy import load_file, save_file
    good = _saved(tmp_path)
    tensors = load_file(good)
    from safetensors import safe_open
    with safe_open(good, "np") as f:
        meta = json.loads(f.metadata()["charrnn_magic"])

    newer = tmp_path / "newer.safetensors"
    save_file(tensors, newer,
              metadata={"charrnn_magic": json.dumps({**meta, "format_version": 99})})
    with pytest.raises(ValueError, match="format version 99"):
        CharRNN.load(newer)

    tensors["weights/Wy"] = np.zeros((3, 3), np.float32)
    reshaped = tmp_path / "reshaped.safetensors"
    save_file(tensors, reshaped, metadata={"charrnn_magic": json.dumps(meta)})
    with pytest.raises(ValueError, match=r"'weights/Wy' has shape \(3, 3\)"):
        CharRNN.load(reshaped)

    plain = tmp_path / "plain.safetensors"
    save_file({"x": np.zeros(2)}, plain)
    with pytest.raises(ValueError, match="not a charrnn_magic checkpoint"):
        CharRNN.load(plain)


def test_keyboard_interrupt_keeps_what_was_learned():
    model = CharRNN(hidden_size=16)

    def interrupt_at_25(progress):
        if progress.run_step == 25:
            raise KeyboardInterrupt

    history = model.fit(POEM, steps=1000, seq_length=5, seed=1, callback=interrupt_at_25)
    assert history.interrupted and history.stop_reason == "interrupted"
    assert model.step == 25 and len(history.loss) == 25
    assert isinstance(model.sample(20, seed=1), str)
    model.fit(POEM, steps=5)                                  # and training goes on from there
    assert model.step == 30


def test_non_finite_loss_stops_with_last_finite_weights():
    model = CharRNN(hidden_size=16)
    model.fit(POEM, steps=3, seq_length=5, seed=1)
    with pytest.raises(TrainingDiverged, match="diverged at step"):
        model.fit(POEM, steps=200, optimizer="sgd", lr=1e38, clip=0)
    assert np.isfinite(model._net.flat).all()
    assert model.history.stop_reason == "error"
    assert isinstance(model.sample(10, seed=1), str)


def test_stop_rules():
    text = POEM * 3
    model = CharRNN(hidden_size=16)
    model.fit(text, epochs=2, seq_length=10, val_fraction=0, seed=1)
    windows = math.ceil((len(text) - 1) / 10)
    assert model.step == 2 * windows and model.history.stop_reason == "steps"

    history = CharRNN(hidden_size=16).fit(text, steps=5000, target_loss=2.5, seq_length=10, seed=1)
    assert (history.stop_reason == "target_loss" and history.loss[-1] <= 2.5
            and len(history.loss) < 5000)

    history = CharRNN(hidden_size=16).fit(text, minutes=0.01, seq_length=10, seed=1)
    assert history.stop_reason == "minutes"


def test_progress_reports_what_the_front_ends_show():
    seen = []
    CharRNN(hidden_size=16).fit(POEM * 2, steps=40, seq_length=5, seed=1, eval_every=10,
                                val_fraction=0.1, callback=seen.append)
    assert [p.run_step for p in seen] == list(range(1, 41))
    last = seen[-1]
    assert last.run_steps == 40 and last.fraction == 1.0 and last.eta == 0.0
    assert last.chars_per_sec > 0 and last.val_loss is not None and last.loss > 0
    assert [p.validated for p in seen].count(True) == 4


@pytest.mark.slow
def test_keep_best_restores_the_best_validation_weights():
    text = datasets.prose(20_000)
    model = CharRNN(hidden_size=32)
    history = model.fit(text, steps=150, batch_size=8, eval_every=10, seed=1, keep_best=True,
                        optimizer="sgd", lr=2.0)
    best = min(history.val_loss)
    assert history.val_loss[-1] == best
    assert model.evaluate(text[:2000]) == pytest.approx(best, rel=1e-4)   # held out: the start


def test_sampling_controls(poem_model):
    model = poem_model
    assert model.sample(50, temperature=0) == model.sample(50, temperature=0)
    assert model.sample(50, seed=9) == model.sample(50, seed=9)
    assert model.sample(50, top_k=1, seed=1) == model.sample(50, temperature=0)
    many = model.sample(30, count=5, seed=4)
    assert isinstance(many, list) and len(many) == 5 and all(len(s) == 30 for s in many)
    assert len(set(many)) > 1
    # The poem is memorised from its first character, so greedy continuations of it are known.
    stopped = model.sample(200, temperature=0, seed_char="H", stop=";")
    assert stopped == "Hop, frog, hop! A lily pad waits;"
    primed = model.sample(9, temperature=0, prime="Hop, frog, ")
    assert primed == "hop! A li"
    streamed = "".join(model.sample_stream(40, seed=11, seed_char="s"))
    assert streamed == model.sample(40, seed=11, seed_char="s")
    text, probs = model.sample_with_probs(40, seed=3, seed_char="H")
    assert (len(probs) == len(text) == 40 and np.isnan(probs[0])
            and ((probs[1:] > 0) & (probs[1:] <= 1)).all())
    assert model.sample(0) == ""
    texts, probs = model.sample_with_probs(25, count=3, seed=8)
    assert texts == model.sample(25, count=3, seed=8) and [len(p) for p in probs] == [25, 25, 25]


def test_samples_follow_the_probabilities_the_model_gives():
    """Gumbel-max sampling draws each next character as often as the model's softmax says."""
    model = CharRNN(hidden_size=16)
    model.fit(POEM, steps=30, seq_length=10, val_fraction=0, seed=0)   # unsure yet: spread odds
    n = 4000
    texts, probs = model.sample_with_probs(1, count=n, seed=5, prime="Hop, f")
    given = {t: float(p[0]) for t, p in zip(texts, probs, strict=True)}   # p(char | prime)
    counts = Counter(texts)
    likely = [c for c, p in given.items() if p > 0.03]
    assert len(likely) >= 3
    for c in likely:
        p = given[c]
        assert abs(counts[c] / n - p) < 4 * math.sqrt(p * (1 - p) / n), (c, counts[c] / n, p)


def test_unicode_text_trains_and_samples():
    text = "héllo wörld 🙂 日本語 " * 40
    model = CharRNN(hidden_size=24)
    model.fit(text, steps=300, seq_length=10, val_fraction=0, seed=1)
    assert set(model.sample(200, seed=1)) <= set(text)
    assert "🙂" in model.sample(200, temperature=0, seed_char="w")


def test_evaluate_in_nats_and_bits():
    model = CharRNN(hidden_size=16)
    model.fit(POEM, steps=200, seq_length=5, seed=1)
    nats = model.evaluate(POEM)
    assert 0 < nats < math.log(len(model.vocab))
    assert model.bits_per_char(POEM) == pytest.approx(nats / math.log(2))
    with pytest.raises(ValueError, match="'Z'"):
        model.evaluate("Zoo")


@pytest.mark.parametrize("kwargs,match", [
    (dict(text=""), "the text is empty"),
    (dict(text="aaaaaaa"), "only one distinct character"),
    (dict(text="abcabc", seq_length=25), "fewer than one window"),
    (dict(seq_length=0), r"seq_length=0 is out of range"),
    (dict(lr=0), r"lr=0 is out of range"),
    (dict(lr=-0.1), r"lr=-0.1 is out of range"),
    (dict(batch_size=500),
     r"batch_size=500 is larger than the text allows: .* use batch_size <= \d+"),
    (dict(mode="lines", batch_size=500),
     r"batch_size=500 is larger than the text allows: it has \d+ training lines"),
    (dict(steps=0), r"steps=0 is out of range"),
    (dict(mode="words"), r"mode='words' is not a data mode"),
    (dict(optimizer="rmsprop"), r"optimizer='rmsprop' is not supported"),
    (dict(val_fraction=1.0), r"val_fraction=1.0 is out of range"),
    (dict(weight_decay=-1), r"weight_decay=-1 is out of range: use 0 \(no decay\)"),
])
def test_bad_training_input_is_refused_before_any_work(kwargs, match):
    model = CharRNN(hidden_size=8)
    text = kwargs.pop("text", POEM)
    with pytest.raises(ValueError, match=match):
        model.fit(text, **kwargs)
    assert model.step == 0 and model.vocab is None and not model.is_trained


@pytest.mark.parametrize("kwargs,match", [
    (dict(hidden_size=0), r"hidden_size=0 is out of range"),
    (dict(layers=0), r"layers=0 is out of range"),
    (dict(cell="transformer"), r"cell='transformer' is not a cell type"),
    (dict(dtype="float16"), r"dtype='float16' is not supported"),
    (dict(dropout=1.0), r"dropout=1.0 is out of range"),
])
def test_bad_model_settings_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CharRNN(**kwargs)


@pytest.fixture(scope="module")
def trained():
    model = CharRNN(hidden_size=16)
    model.fit(POEM, steps=20, seq_length=5, seed=1)
    return model


@pytest.mark.parametrize("kwargs,match", [
    (dict(temperature=-0.5), r"temperature=-0.5 is out of range"),
    (dict(top_k=0), r"top_k=0 is out of range"),
    (dict(length=-1), r"length=-1 is out of range"),
    (dict(seed_char="Z"), r"seed_char has character\(s\) outside the model's vocabulary: 'Z'"),
    (dict(prime="Hop XYZ"),
     r"prime has character\(s\) outside the model's vocabulary: 'X', 'Y', 'Z'"),
    (dict(seed_char="ab"), r"must be exactly one character"),
    (dict(top_p=0), r"top_p=0 is out of range"),
])
def test_bad_sampling_input_is_refused(trained, kwargs, match):
    with pytest.raises(ValueError, match=match):
        trained.sample(**kwargs)


@pytest.fixture(scope="module")
def lower_cased():
    model = CharRNN(hidden_size=16)
    model.fit(POEM, steps=5, seq_length=5, lower=True, seed=1)
    return model


BAD_SAMPLING_ARGUMENTS = [
    (dict(prime=123), r"^prime must be a str, not int$"),
    (dict(prime=b"Hop"), r"^prime must be a str, not bytes$"),
    (dict(seed_char=5), r"^seed_char=5 must be exactly one character$"),
    (dict(seed_char=""), r"^seed_char='' must be exactly one character$"),
    (dict(seed_char=["H"]), r"^seed_char=\['H'\] must be exactly one character$"),
    (dict(stop=5), r"^stop=5 must be one character or None$"),
    (dict(stop="ab"), r"^stop='ab' must be one character or None$"),
    (dict(stop=...), r"^stop=Ellipsis must be one character or None$"),
    (dict(stop="Z"), r"^stop has character\(s\) outside the model's vocabulary: 'Z'"),
    (dict(prime="Hop", seed_char="H"), r"^give either prime or seed_char, not both$"),
    (dict(length="10"), r"^length='10' is out of range"),
    (dict(length=2.5), r"^length=2.5 is out of range"),
    (dict(count=0), r"^count=0 is out of range"),
    (dict(top_k=1.5), r"^top_k=1.5 is out of range"),
    (dict(top_p=True), r"^top_p=True is out of range"),
    (dict(top_p=1.5), r"^top_p=1.5 is out of range"),
    (dict(temperature="hot"), r"^temperature='hot' is out of range"),
    (dict(temperature=math.nan), r"^temperature=nan is out of range"),
    (dict(seed=-1), r"^seed=-1 is out of range"),
    (dict(seed="1"), r"^seed='1' is out of range"),
]


@pytest.mark.parametrize("method,kwargs,match", [
    (method, kwargs, match) for method in ("sample", "sample_with_probs", "sample_stream")
    for kwargs, match in BAD_SAMPLING_ARGUMENTS
    if not (method == "sample_stream" and "count" in kwargs)])
def test_every_bad_sampling_argument_is_a_one_line_value_error(trained, lower_cased, method,
                                                               kwargs, match):
    for model in (trained, lower_cased):        # a lower-cased model lower-cases after the checks
        with pytest.raises(ValueError, match=match) as caught:
            getattr(model, method)(**kwargs)     # sample_stream: at the call, not the first next()
        assert "\n" not in str(caught.value)


def test_the_default_stop_is_a_named_rule(trained):
    from charrnn_magic.charrnn import LINE_END

    assert repr(LINE_END) == "<the end of the line in lines mode, none in stream mode>"
    assert inspect.signature(CharRNN.sample).parameters["stop"].default is LINE_END
    assert trained.sample(80, seed=2, stop=LINE_END) == trained.sample(80, seed=2, stop=None)
    lines = CharRNN(hidden_size=8)
    lines.fit("\n".join(["abba", "baba", "abab", "bbaa"] * 5), steps=3, mode="lines", batch_size=4,
              seed=0)
    for seed in range(5):
        assert "\n" not in lines.sample(100, seed=seed)                # stopped at the line's end
        assert lines.sample(100, seed=seed, stop=LINE_END) == lines.sample(100, seed=seed)


def test_probabilities_of_an_empty_sample(trained):
    text, probs = trained.sample_with_probs(0)
    assert text == "" and probs.shape == (0,)
    text, probs = trained.sample_with_probs(1, seed_char="H")
    assert text == "H" and probs.shape == (1,) and np.isnan(probs[0])
    texts, probs = trained.sample_with_probs(0, count=2)
    assert texts == ["", ""] and [p.shape for p in probs] == [(0,), (0,)]


def test_new_characters_on_continued_training_are_named(trained):
    step = trained.step
    with pytest.raises(ValueError, match=r"outside the model's vocabulary: 'Z'"):
        trained.fit("Zoo " + POEM, steps=5)
    assert trained.step == step


def test_untrained_model_cannot_sample():
    with pytest.raises(ValueError, match="not trained yet"):
        CharRNN().sample(10)


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_weight_decay_shrinks_every_weight_by_the_rate_times_the_decay(optimizer):
    opt = OPTIMIZERS[optimizer](3, np.float64, lr=0.05)
    opt.weight_decay = 0.2
    params = np.array([1.0, -2.0, 0.5])
    opt.step(params, np.zeros(3))              # no gradient: only the decay moves the weights
    assert np.allclose(params, [0.99, -1.98, 0.495], rtol=0, atol=1e-12)


@pytest.mark.slow
def test_weight_decay_keeps_a_model_s_weights_smaller():
    text = datasets.prose(3000)
    norms = {}
    for decay in (0.0, 0.5):
        model = CharRNN(cell="gru", hidden_size=16, layers=1, dropout=0.0)
        model.fit(text, steps=200, seed=3, val_fraction=0.1, weight_decay=decay)
        assert model.config()["weight_decay"] == decay
        norms[decay] = float(np.linalg.norm(model._net.flat))
    assert norms[0.5] < 0.9 * norms[0.0]


def test_cosine_schedule_lowers_the_learning_rate_over_the_run():
    model = CharRNN(hidden_size=16)
    rates = []
    model.fit(POEM, steps=50, seq_length=5, optimizer="adam", lr=0.01, lr_schedule="cosine", seed=1,
              callback=lambda p: rates.append(model._optimizer.lr))
    assert rates[0] == pytest.approx(0.01) and rates[-1] < 0.001
    # rates[1:] is one shorter: zip pairs each rate with the next one.
    assert all(a >= b for a, b in zip(rates, rates[1:], strict=False))
    assert model._optimizer.lr == 0.01                  # the base rate is kept for the next fit
    open_ended = CharRNN(hidden_size=8)                   # no known end: the rate stays put
    open_ended.fit(POEM, target_loss=3.0, optimizer="adam", lr=0.01, lr_schedule="cosine", seed=1,
                   callback=lambda p: rates.append(open_ended._optimizer.lr))
    assert rates[-1] == 0.01


@pytest.mark.parametrize("process", [True, False], ids=["process", "thread"])
@pytest.mark.parametrize("cell,masked", [("lstm", False), ("gru", True)])
def test_two_halves_in_parallel_give_the_whole_batch_gradient(cell, masked, process):
    from charrnn_magic.network import Network
    from charrnn_magic.workers import HalvesInParallel

    net = Network(cell, 9, 12, layers=2, dtype="float64")
    net.init_weights(np.random.default_rng(0))
    data = np.random.default_rng(1)
    X, Y = data.integers(0, 9, (7, 5)), data.integers(0, 9, (7, 5))
    mask = ((np.arange(7)[:, None] < np.array([7, 3, 5, 7, 1])[None, :]).astype(float)
            if masked else None)
    state = [tuple(data.standard_normal((5, 12)) for _ in range(c.state_size)) for c in net.cells]
    whole_loss, whole_state = net.loss(X, Y, mask, state)
    whole_grad = net.grad.copy()
    parallel = HalvesInParallel(net, process=process)
    assert type(parallel.second).__name__ == ("ChildWorker" if process else "ThreadWorker")
    try:
        loss, new_state = parallel.loss(X, Y, mask, state)
    finally:
        parallel.close()
    assert loss == pytest.approx(whole_loss, rel=1e-12)
    np.testing.assert_allclose(net.grad, whole_grad, rtol=1e-10, atol=1e-13)
    for a, b in zip(new_state, whole_state, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_parallel_training_is_reproducible_and_resumes_exactly(tmp_path):
    text = "\n".join(["abba", "cabbage", "bad", "dacca", "acab", "beaded", "ebb"] * 6)

    def model():
        m = CharRNN(cell="lstm", hidden_size=12, layers=2, dropout=0.1)
        m.workers = 2
        return m

    straight = model()
    straight.fit(text, steps=20, batch_size=6, seq_length=6, seed=3, lr_schedule="constant")
    again = model()
    again.fit(text, steps=10, batch_size=6, seq_length=6, seed=3, lr_schedule="constant")
    resumed = CharRNN.load(again.save(tmp_path / "half.safetensors"))
    resumed.workers = 2
    resumed.fit(text, steps=10)
    assert np.array_equal(resumed._net.flat, straight._net.flat)
    assert threading_names() == set()          # the worker thread is gone after fit


def test_worker_process_and_worker_thread_train_the_same_weights():
    text = "\n".join(["abba", "cabbage", "bad", "dacca", "acab", "beaded", "ebb"] * 6)
    weights = {}
    for process in (True, False):
        m = CharRNN(cell="gru", hidden_size=12, layers=2, dropout=0.1)
        m.workers, m.worker_process = 2, process
        m.fit(text, steps=15, batch_size=6, seq_length=6, seed=3)
        weights[process] = m._net.flat
    assert np.array_equal(weights[True], weights[False])


@pytest.mark.slow
def test_worker_process_is_kept_between_fits_replaced_when_it_dies_and_ends_with_the_model():
    import gc
    import signal

    from charrnn_magic.second_worker import _children

    m = CharRNN(cell="lstm", hidden_size=12, layers=2)
    m.workers = 2
    m.fit(POEM, steps=3, batch_size=4, seq_length=6, seed=0)
    first = _children[m._net].process
    m.fit(POEM, steps=3)
    assert _children[m._net].process is first and first.poll() is None      # reused, not restarted

    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    m.fit(POEM, steps=3)                                                   # trains on a new child
    second = _children[m._net].process
    assert second is not first and second.poll() is None
    assert m.step == 9

    del m
    gc.collect()
    assert second.wait(timeout=10) == 0                                    # ended with the model


def test_the_worker_child_process_ends_quietly_when_its_parent_is_killed_mid_run():
    import signal

    script = ("import sys; sys.path.insert(0, sys.argv[1])\n"
              "from charrnn_magic import CharRNN\n"
              "m = CharRNN(cell='lstm', hidden_size=64, layers=2); m.workers = 2\n"
              "m.fit('abcdefgh' * 4000, steps=100000, batch_size=8, seq_length=20, seed=0,\n"
              "      callback=lambda p: p.step == 20 and print('training', flush=True))\n")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parent = subprocess.Popen([sys.executable, "-c", script, root],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert parent.stdout.readline() == "training\n"
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    # The child shares the parent's stderr: reading it to its end waits for the child to end.
    assert "Traceback" not in parent.stderr.read()


@pytest.mark.slow
def test_idle_worker_process_ends_itself_and_the_next_fit_starts_another(monkeypatch):
    import time

    from charrnn_magic import second_worker as worker

    monkeypatch.setattr(worker, "IDLE_SECONDS", 1.0)
    m = CharRNN(cell="lstm", hidden_size=12, layers=2)
    m.workers = 2
    m.fit(POEM, steps=2, batch_size=4, seq_length=6, seed=0)
    first = worker._children[m._net].process
    assert first.wait(timeout=10) == 0                                     # idle 1 s: gone
    m.fit(POEM, steps=2)
    assert worker._children[m._net].process is not first and m.step == 4
    # past 90 % of the idle time: replaced before it ends itself
    time.sleep(0.95)
    assert not worker._children[m._net].usable()
    m.fit(POEM, steps=2)
    assert m.step == 6


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_copy_of_the_process_trains_with_a_child_of_its_own():
    from charrnn_magic import second_worker as worker

    m = CharRNN(cell="lstm", hidden_size=12, layers=2)
    m.workers = 2
    m.fit(POEM, steps=2, batch_size=4, seq_length=6, seed=0)
    ours = worker._children[m._net].process
    pid = os.fork()
    if pid == 0:                                   # the forked copy: exit code says what it saw
        try:
            m.fit(POEM, steps=2)
            os._exit(0 if worker._children[m._net].process is not ours and m.step == 4 else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    m.fit(POEM, steps=2)                           # our child is untouched and still ours
    assert worker._children[m._net].process is ours and m.step == 4


@pytest.mark.parametrize("executable", ["/nonexistent/python", "false"],
                         ids=["missing", "exits at once"])
def test_training_falls_back_to_a_thread_when_no_worker_process_can_start(monkeypatch, executable):
    import shutil

    from charrnn_magic import second_worker as worker

    monkeypatch.setattr(worker.sys, "executable", shutil.which(executable) or executable)
    monkeypatch.setattr(worker, "_warned", False)
    m = CharRNN(cell="lstm", hidden_size=12, layers=2)
    m.workers = 2
    with pytest.warns(RuntimeWarning, match="using a thread instead"):
        m.fit(POEM, steps=3, batch_size=4, seq_length=6, seed=0)
    assert m.step == 3 and m._net not in worker._children


def test_two_workers_are_chosen_for_big_steps_and_for_smaller_ones_with_a_child_process():
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if (cores or 1) < 2:
        pytest.skip("two workers need two cores")
    gru = CharRNN(cell="gru", hidden_size=128, layers=2)          # 3.1 M multiply-adds at batch 32
    gru.fit(POEM, steps=1, batch_size=4, seq_length=5)
    assert gru._workers().count(gru._net, 32) == 2 and gru._workers().count(gru._net, 1) == 1
    gru.worker_process = False                                     # a thread pays only from 8 M
    assert gru._workers().count(gru._net, 32) == 1
    classic = CharRNN.from_preset("classic")                       # RNN 100: 0.3 M
    classic.fit(POEM, steps=1, batch_size=4, seq_length=5)
    assert classic._workers().count(classic._net, 32) == 1
    classic.workers = 2                                            # asked for: two, batch allowing
    assert classic._workers().count(classic._net, 32) == 2
    assert classic._workers().count(classic._net, 1) == 1


def threading_names():
    import threading
    return {t.name for t in threading.enumerate() if t.name.startswith("charrnn-half-batch")}


def test_a_lower_cased_model_lower_cases_primes_and_seed_characters():
    model = CharRNN(hidden_size=16)
    model.fit(POEM, steps=30, seq_length=5, lower=True, seed=1)
    assert "Q" not in model.vocab and "q" in model.vocab
    assert model.sample(10, seed_char="Q", seed=1).startswith("q")
    assert ("".join(model.sample_stream(10, seed_char="Q", seed=1))
            == model.sample(10, seed_char="Q", seed=1))
    assert isinstance(model.sample(10, prime="QUICK", seed=1), str)
    assert model.evaluate("QUICK FOX") == pytest.approx(model.evaluate("quick fox"))


def test_the_training_loop_runs_on_what_it_is_handed_without_a_model():
    """train.run needs no CharRNN: given the parts explicitly it trains the same weights."""
    import threading

    from charrnn_magic.network import Network
    from charrnn_magic.optim import OPTIMIZERS
    from charrnn_magic.session import TrainingSession
    from charrnn_magic.settings import TRAIN_DEFAULTS, resolve
    from charrnn_magic.stopping import StopRules
    from charrnn_magic.train import History, run
    from charrnn_magic.vocab import Vocab

    model = CharRNN.from_preset("classic", hidden_size=8)
    model.fit(POEM, steps=6, seq_length=5, seed=3)

    settings = resolve({**{k: None for k in TRAIN_DEFAULTS}, "seq_length": 5}, TRAIN_DEFAULTS)
    settings["seed"] = 3
    vocab = Vocab.from_text(POEM)
    rng = np.random.default_rng(3)
    net = Network("rnn", len(vocab), 8, 1)
    net.init_weights(rng)
    session = TrainingSession(vocab, vocab.encode(POEM), settings)
    history, steps = History(), []
    session.attach(net=net, optimizer=OPTIMIZERS["adagrad"](net.size, net.dtype, settings["lr"]),
                   rng=rng, lock=threading.Lock(), history=history, step=0, position=None,
                   on_step=steps.append)
    run(session, StopRules(steps=6))
    assert steps == [1, 2, 3, 4, 5, 6] and history.step == steps
    assert np.array_equal(net.flat, model._net.flat)
    assert history.loss == model.history.loss


def test_continued_lines_training_keeps_its_validation_lines(monkeypatch):
    import charrnn_magic.session as engine

    seen = []

    class Recording(engine.TrainingSession):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            seen.append(self.val_spans[0].tolist())

    monkeypatch.setattr(engine, "TrainingSession", Recording)
    text = "\n".join(["abba", "cabbage", "bad", "dacca", "acab", "beaded", "ebb"] * 6)
    model = CharRNN(hidden_size=8)
    model.fit(text, steps=2, mode="lines", batch_size=4, val_fraction=0.1)   # a seed is drawn
    model.fit(text, steps=2)
    assert seen[0] and seen[0] == seen[1]          # no validation line leaks into training


PAGE_FAULTS = """
import os, resource, sys
import numpy as np
from charrnn_magic import CharRNN

def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt

def plain_numpy_faults():
    # Four 8 MiB arrays made, written and freed, a round and then five more: with glibc's own
    # thresholds each round faults fresh memory in (about 2,000 faults here); with raised
    # thresholds, as a process-wide mallopt would leave them, only the first round does.
    for rounds in (1, 5):
        before = faults()
        for _ in range(rounds):
            arrays = [np.ones(1 << 21, np.float32) for _ in range(4)]
            del arrays
    return (faults() - before) / 5

numpy_before = plain_numpy_faults()
text = "".join(f"line {i}: the lamplighter walks the quay at dusk, and every lamp is lit.\\n"
               for i in range(400))
model = CharRNN(cell="lstm", hidden_size=128, layers=2)
model.workers = int(sys.argv[1])
model.snapshots = 0     # the timeline's weight copies are memory kept on purpose, not a step's
model.fit(text, steps=3, batch_size=32, seq_length=25, val_fraction=0)      # warm up
before = faults()
model.fit(text, steps=20)
per_step = (faults() - before) / 20
malloc_env = any(k.startswith("MALLOC_") for k in os.environ)
print(per_step, numpy_before, plain_numpy_faults(), malloc_env)
"""


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_training_steps_reuse_their_arrays_and_leave_the_processs_allocator_alone(workers):
    if not sys.platform.startswith("linux"):
        pytest.skip("page-fault counts as measured here are Linux's")
    done = subprocess.run([sys.executable, "-c", PAGE_FAULTS, str(workers)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    per_step, numpy_before, numpy_after, malloc_env = done.stdout.split()
    # An LSTM 2x128 window at batch 32 allocated about 10 MB of arrays afresh: 1,370 page
    # faults a step with glibc's defaults. Its workspace reuses them: a few dozen at most.
    assert float(per_step) < 200
    # The process's allocator is as it was: plain NumPy arrays still fault as much after a fit
    # (the child process's settings stay in the child).
    assert float(numpy_after) > 0.5 * float(numpy_before) and malloc_env == "False"


def test_the_worker_child_process_gets_this_processs_sys_path(monkeypatch, tmp_path):
    from charrnn_magic.second_worker import _children

    monkeypatch.syspath_prepend(str(tmp_path))          # first, where PYTHONPATH would not put it
    m = CharRNN(cell="lstm", hidden_size=12, layers=2)
    m.workers = 2
    m.fit(POEM, steps=2, batch_size=4, seq_length=6, seed=0)
    child = _children[m._net]
    assert child.started["sys_path"] == sys.path and child.started["pid"] == child.process.pid


def test_training_goes_on_with_one_worker_when_the_worker_child_dies(monkeypatch):
    import signal

    from charrnn_magic import second_worker
    from charrnn_magic.second_worker import _children

    m = CharRNN(cell="lstm", hidden_size=12, layers=2)
    m.workers = 2
    m.fit(POEM, steps=2, batch_size=4, seq_length=6, seed=0)
    child = _children[m._net].process

    def kill_at_step_3(progress):
        if progress.run_step == 3:
            os.kill(child.pid, signal.SIGKILL)
            child.wait()
            # As if it died during the next step, after the check that replaces a dead child.
            monkeypatch.setattr(second_worker.ChildWorker, "usable", lambda self: True)

    gone = r"stopped with exit code -9; training goes on with one worker"
    with pytest.warns(RuntimeWarning, match=gone):
        m.fit(POEM, steps=8, callback=kill_at_step_3)
    assert m.step == 10 and not m.history.interrupted and m.history.stop_reason == "steps"
    assert all(math.isfinite(x) for x in m.history.loss)
    monkeypatch.undo()
    m.fit(POEM, steps=2)                                # the next fit starts a new child
    assert _children[m._net].process is not child and m.step == 12


def test_a_model_and_its_worker_child_process_are_freed_with_the_last_reference():
    import gc
    import weakref

    from charrnn_magic.second_worker import _children

    m = CharRNN(cell="lstm", hidden_size=12, layers=2)
    m.workers = 2
    m.fit(POEM, steps=2, batch_size=4, seq_length=6, seed=0)
    child = _children[m._net].process
    gone = weakref.ref(m)
    del m
    gc.collect()
    assert gone() is None
    assert child.wait(timeout=10) == 0                  # the child ends: its socket closed


def test_the_sampling_methods_take_the_one_definition_of_their_arguments():
    """``sample``, ``sample_with_probs`` and ``sample_stream`` take ``SampleRequest``'s fields
    with its defaults (``sample_stream`` makes one sample: no ``count``), so that an option
    added there and not to a method, or a default changed in one, fails here."""
    import dataclasses
    import inspect

    from charrnn_magic.sampling import SampleRequest

    fields = {f.name: f.default for f in dataclasses.fields(SampleRequest)}
    for method in (CharRNN.sample, CharRNN.sample_with_probs, CharRNN.sample_stream):
        params = {name: p.default for name, p in inspect.signature(method).parameters.items()
                  if name != "self"}
        expected = dict(fields)
        if method is CharRNN.sample_stream:
            del expected["count"]
        assert params == expected, method.__name__
