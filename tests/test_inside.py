"""Looking inside a model: traces, the unit finder, gate saturation and the n-gram baseline."""
import math
from collections import Counter

import numpy as np
import pytest

from charrnn_magic import CharRNN
from charrnn_magic.ngram import NGram
from charrnn_magic.trace import KINDS, Trace
from charrnn_magic.unit_finder import FEATURES, features_of, find_units, gate_saturation

POEM = ("Hop, frog, hop! A lily pad waits;\nsing, moon, of big green gates.\n"
        "Quick fox, jump over my wall;\nsleepy owls hum, dusk comes for us all.\n")
TEXT = POEM * 10                                   # 1,360 characters: evaluate uses one stream


@pytest.fixture(scope="module", params=["rnn", "lstm", "gru"])
def model(request):
    m = CharRNN(cell=request.param, hidden_size=12, layers=2)
    m.fit(POEM, steps=30, seq_length=16, batch_size=4, val_fraction=0, seed=0)
    return m


def test_trace_loss_equals_evaluate(model):
    tr = model.trace(TEXT)
    assert tr.loss.shape == (len(TEXT) - 1,)
    assert tr.mean_loss == pytest.approx(model.evaluate(TEXT), rel=1e-5)


def test_trace_probabilities_are_those_of_sampling(model):
    prime = "Hop, f"
    text, probs = model.sample_with_probs(40, temperature=0, prime=prime, seed=1)
    tr = model.trace(prime + text)
    ids = model.vocab.encode(text)
    rows = np.arange(len(prime) - 1, len(prime) - 1 + len(text))
    np.testing.assert_allclose(tr.probs[rows, ids], probs, rtol=1e-4)
    np.testing.assert_allclose(tr.char_probs[len(prime):], probs, rtol=1e-4)
    assert tr.probs[rows].argmax(axis=1).tolist() == ids.tolist()        # greedy: the likeliest
    np.testing.assert_allclose(tr.probs.sum(axis=1), 1.0, rtol=1e-5)


def test_chunked_and_unchunked_traces_are_equal(model):
    whole = model.trace(TEXT, chunk=len(TEXT))
    chunked = model.trace(TEXT, chunk=7)
    for l in whole.layers:
        for kind in KINDS[model.cell]:
            np.testing.assert_allclose(chunked.state(l, kind), whole.state(l, kind), atol=1e-6)
    np.testing.assert_allclose(chunked.probs, whole.probs, atol=1e-6)
    np.testing.assert_allclose(chunked.loss, whole.loss, atol=1e-5)


def test_traced_states_obey_the_cell_equations(model):
    tr = model.trace(POEM)
    for l in tr.layers:
        s = {k: tr.state(l, k).astype(np.float64) for k in KINDS[model.cell]}
        prev_h = np.vstack([np.zeros((1, tr.hidden_size)), s["h"][:-1]])
        if model.cell == "lstm":
            prev_c = np.vstack([np.zeros((1, tr.hidden_size)), s["c"][:-1]])
            np.testing.assert_allclose(s["c"], s["f"] * prev_c + s["i"] * s["g"], atol=1e-5)
            np.testing.assert_allclose(s["h"], s["o"] * np.tanh(s["c"]), atol=1e-5)
            assert 0 < s["f"].min() and s["f"].max() < 1 and s["g"].min() < 0
        elif model.cell == "gru":
            np.testing.assert_allclose(s["h"], (1 - s["z"]) * s["n"] + s["z"] * prev_h, atol=1e-5)
            assert 0 < s["r"].min() and s["z"].max() < 1 and s["n"].min() < 0
        else:
            assert np.abs(s["h"]).max() < 1 and s["h"].std() > 0


def test_trace_keeps_only_what_was_asked(model):
    full = model.trace(POEM)
    part = model.trace(POEM, layers=1, states=["h"], probs=False)
    assert list(part.states) == [1] and list(part.states[1]) == ["h"]
    np.testing.assert_array_equal(part.state(1, "h"), full.state(1, "h"))
    np.testing.assert_array_equal(part.loss, full.loss)
    assert part.probs is None
    with pytest.raises(ValueError, match="layer 0 was not traced"):
        part.state(0, "h")
    with pytest.raises(ValueError, match="probs=True"):
        part.top(5)


def test_top_predictions_are_sorted_and_right(model):
    tr = model.trace(POEM)
    ids, p = tr.top(3)
    assert ids.shape == p.shape == (len(POEM), 3)
    assert (np.diff(p, axis=1) <= 0).all()
    np.testing.assert_array_equal(ids[:, 0], tr.probs.argmax(axis=1))
    np.testing.assert_allclose(p, np.take_along_axis(tr.probs, ids, axis=1))


def one_line_error(call, *match):
    with pytest.raises(ValueError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message
    for m in match:
        assert m in message, message


def test_bad_inputs_give_one_line_value_errors(model):
    tr = model.trace(POEM)
    one_line_error(lambda: CharRNN().trace("abc"), "not trained")
    one_line_error(lambda: model.trace("Hop Z€"), "'Z'", "'€'")
    one_line_error(lambda: model.trace(""), "empty")
    one_line_error(lambda: model.trace(POEM * 3, max_chars=100), "max_chars=100")
    one_line_error(lambda: model.trace(POEM, layers=[2]), "layer 2", "2 layer(s)")
    one_line_error(lambda: model.trace(POEM, states=["x"]), "'x'")
    one_line_error(lambda: tr.state(5, "h"), "layer=5")
    one_line_error(lambda: tr.unit(0, "h", 12), "unit=12", "0 to 11")
    one_line_error(lambda: tr.unit(0, "q", 0), "'q'")
    one_line_error(lambda: model.find_units(POEM, features=["nope"]), "'nope'")
    one_line_error(lambda: model.find_units(POEM, features={"mine": np.zeros(3)}),
                   "'mine'", "3 values")
    one_line_error(lambda: model.find_units(POEM, top=0), "top=0")
    if model.cell == "rnn":
        one_line_error(lambda: gate_saturation(tr), "no gates")


# ---------------------------------------------------------------- features and the unit finder
def test_built_in_features_on_a_hand_checked_text():
    text = '  ab(c[d]) "Hi" “x”\n\tif x:\n    \n12 word'
    want = {
        "line_position": "012345678901234567890123456012340123456",
        "line_start":    "100000000000000000001000000100001000000",
        "in_quotes":     "000000000001110011000000000000000000000",
        "bracket_depth": "000011221000000000000000000000000000000",
        "paren_depth":   "000011111000000000000000000000000000000",
        "square_depth":  "000000110000000000000000000000000000000",
        "in_word":       "001101010000110001000110100000000001111",
        "word_position": "001201010000120001000120100000000001234",
        "upper_case":    "000000000000100000000000000000000000000",
        "digit":         "000000000000000000000000000000001100000",
        "indent":        "222222222222222222221111111444440000000",
    }
    got = features_of(text, list(want))
    for name, digits in want.items():
        assert "".join(str(int(v))[-1] for v in got[name]) == digits, name
    assert features_of(text, "line_position")["line_position"][19] == 19     # the newline
    assert set(features_of(text)) == set(FEATURES)


def test_a_close_without_an_open_is_ignored():
    assert features_of(")(a))(", "paren_depth")["paren_depth"].tolist() == [0, 1, 1, 0, 0, 1]


def quote_corpus(seed: int, n_chars: int = 6000) -> str:
    """Words of a-e; a double quote starts or ends a quotation now and then, and every letter
    inside a quotation is upper case: to predict a letter's case the model has to know whether
    it is inside quotes."""
    rng = np.random.default_rng(seed)
    out, quoted, n = [], False, 0
    while n < n_chars:
        if rng.random() < 0.15:
            out.append('"')
            quoted = not quoted
        word = "".join(rng.choice(list("abcde"), rng.integers(1, 5)))
        out += [word.upper() if quoted else word, " "]
        n += len(word) + 1
    return "".join(out)


def quote_model(text):
    model = CharRNN(cell="gru", hidden_size=16)
    model.fit(text, steps=200, seed=3, batch_size=16, seq_length=50, optimizer="adam", lr=0.01,
              val_fraction=0)
    return model


@pytest.mark.slow
def test_the_finder_finds_the_quote_unit():
    text = quote_corpus(0)
    matches = quote_model(text).find_units(text[:3000], features=["in_quotes", "upper_case"])
    quotes = [m for m in matches if m.feature == "in_quotes"]
    assert len(quotes) == 5
    assert abs(quotes[0].r) >= 0.8, matches
    assert [abs(m.r) for m in quotes] == sorted((abs(m.r) for m in quotes), reverse=True)


@pytest.mark.slow
def test_no_quote_unit_when_quotes_tell_nothing():
    text = quote_corpus(0)
    chars = np.array(list(text))
    np.random.default_rng(1).shuffle(chars)                 # quotes no longer predict the case
    shuffled = "".join(chars)
    matches = quote_model(shuffled).find_units(shuffled[:3000], features=["in_quotes"])
    assert max(abs(m.r) for m in matches) < 0.5, matches


def test_finder_correlations_are_pearson_r(model):
    tr = model.trace(POEM)
    vowel = np.array([c in "aeiou" for c in POEM], float)
    matches = find_units(tr, {"vowel": vowel, "line_position": None,
                              "caps": lambda s: [c.isupper() for c in s]}, top=4)
    assert [m.feature for m in matches] == ["vowel"] * 4 + ["line_position"] * 4 + ["caps"] * 4
    feats = {"vowel": vowel, "line_position": features_of(POEM)["line_position"],
             "caps": np.array([c.isupper() for c in POEM], float)}
    for m in matches:
        u = tr.unit(m.layer, m.state, m.unit).astype(np.float64)
        assert m.r == pytest.approx(np.corrcoef(u, feats[m.feature])[0, 1], abs=1e-4)
    # The best of all units: no unit of any layer or state correlates more.
    best = max(abs(np.corrcoef(tr.unit(l, k, j), vowel)[0, 1]) for l in tr.layers for k in tr.kinds
               for j in range(tr.hidden_size) if np.ptp(tr.unit(l, k, j)) > 0)
    assert abs(matches[0].r) == pytest.approx(best, abs=1e-4)
    assert "vowel" in repr(matches) and "<table>" in matches._repr_html_()
    assert f"{matches[0].r:+.3f}" in matches._repr_html_()


def test_constant_features_are_skipped_and_said_so(model):
    matches = model.find_units(POEM, features=["digit", "in_word"], top=2)
    assert {m.feature for m in matches} == {"in_word"}
    assert matches.skipped == ["digit"] and "digit" in repr(matches)


# ---------------------------------------------------------------- gate saturation
def test_gate_saturation_counts_positions_below_and_above():
    rng = np.random.default_rng(0)
    T, H = 50, 3
    states = {l: {k: rng.random((T, H)) for k in KINDS["lstm"]} for l in (0, 1)}
    states[1]["f"][:, 2] = 0.95                                 # always right-saturated
    states[0]["i"][:10, 0] = 0.05
    tr = Trace("x" * T, np.zeros(T, int), ["x"], "lstm", H, 2, states, None, np.zeros(T - 1),
               np.zeros(T))
    sat = gate_saturation(tr)
    assert [(s.layer, s.gate) for s in sat] == [(l, g) for l in (0, 1) for g in "ifo"]
    for s in sat:
        a = states[s.layer][s.gate]
        for j in range(H):
            assert s.left[j] == sum(a[t, j] < 0.1 for t in range(T)) / T
            assert s.right[j] == sum(a[t, j] > 0.9 for t in range(T)) / T
    assert sat[4].right[2] == 1.0 and sat[4].left[2] == 0.0


def test_saturation_reports_each_cells_gates(model):
    if model.cell == "rnn":
        with pytest.raises(ValueError, match="^a RNN has no gates to saturate$"):
            gate_saturation(model.trace(POEM))
        return
    sat = gate_saturation(model.trace(POEM))
    assert [s.gate for s in sat] == (["i", "f", "o"] if model.cell == "lstm" else ["r", "z"]) * 2
    assert all(s.left.shape == (12,) and ((s.left + s.right) <= 1).all() for s in sat)


# ---------------------------------------------------------------- n-gram baseline
@pytest.mark.parametrize("smoothing", ["witten-bell", "add-k"])
@pytest.mark.parametrize("n", [1, 2, 4])
def test_ngram_distributions_sum_to_one(smoothing, n):
    ng = NGram(POEM, n=n, smoothing=smoothing, k=0.5)
    for context in ["", "H", "Hop", "ooo", "all.\n", "QQQ"]:
        p = ng.distribution(context)
        assert p.shape == (len(set(POEM)),) and (p > 0).all()
        assert p.sum() == pytest.approx(1.0, abs=1e-12)


def witten_bell(counts, vocab, context, c):
    """A direct, recursive Witten-Bell from a Counter of every substring count."""
    if context is None:
        return 1 / len(vocab)
    shorter = context[1:] if context else None
    followers = [d for d in vocab if counts[context + d]]
    N = sum(counts[context + d] for d in vocab)
    if N == 0:
        return witten_bell(counts, vocab, shorter, c)
    u = len(followers)
    return (counts[context + c] + u * witten_bell(counts, vocab, shorter, c)) / (N + u)


def test_ngram_loss_matches_a_direct_count():
    train, text, n = "abracadabra abba", "cabab rad", 3
    counts = Counter(train[i : i + m] for m in range(1, n + 1) for i in range(len(train) - m + 1))
    vocab = sorted(set(train))
    ng = NGram(train, n=n)
    want = [-math.log(witten_bell(counts, vocab, text[max(0, t - n + 1) : t], text[t]))
            for t in range(1, len(text))]
    np.testing.assert_allclose(ng.loss(text), want, rtol=1e-12)
    addk = NGram(train, n=n, smoothing="add-k", k=0.5)
    want = []
    for t in range(1, len(text)):
        ctx = text[max(0, t - n + 1) : t]
        N = sum(counts[ctx + d] for d in vocab)
        want.append(-math.log((counts[ctx + text[t]] + 0.5) / (N + 0.5 * len(vocab))))
    np.testing.assert_allclose(addk.loss(text), want, rtol=1e-12)


def test_ngram_bad_inputs():
    one_line_error(lambda: NGram(POEM, n=0), "n=0")
    one_line_error(lambda: NGram(POEM, smoothing="kneser"), "'kneser'")
    one_line_error(lambda: NGram(""), "empty")
    one_line_error(lambda: NGram(POEM).loss("Hop€"), "'€'")
    one_line_error(lambda: NGram(POEM).loss("H"), "too short")


def test_ngram_with_the_models_vocabulary_compares_per_character(model):
    ng = NGram(POEM, n=4, vocab=model.vocab)
    diff = ng.loss(TEXT) - model.trace(TEXT).loss
    assert diff.shape == (len(TEXT) - 1,) and np.isfinite(diff).all()
    assert ng.mean_loss(TEXT) < math.log(len(model.vocab)) / 2        # it learned the poem
