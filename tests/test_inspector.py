"""The inspector panel without a browser: set the controls' values, read the HTML they show."""
from __future__ import annotations

import html
import re

import numpy as np
import pytest

from charrnn_magic import CharRNN
from charrnn_magic.ngram import NGram
from charrnn_magic.notebook.inspector import InspectorPanel, activation_colours, inspector_panel

POEM = ("Hop, frog, hop! A lily pad waits;\nsing, moon, of big green gates.\n"
        "Quick fox, jump over my wall;\nsleepy owls hum, dusk comes for us all.\n")
TEXT = POEM * 4 + 'A "quote" & <tag>\n'
SPAN = re.compile(r'<span style="background:([^"]+)" title="([^"]*)">(.*?)</span>', re.S)


@pytest.fixture(scope="module")
def lstm():
    m = CharRNN(cell="lstm", hidden_size=10, layers=2)
    m.fit(TEXT, steps=40, seq_length=16, batch_size=4, val_fraction=0, seed=0)
    return m


@pytest.fixture
def panel(lstm):
    p = inspector_panel(lstm, TEXT, train_text=POEM, window=200)
    yield p
    p.close()


def spans(panel):
    """(colour, title, shown text) of each character on the page."""
    return [(c, html.unescape(t), html.unescape(s)) for c, t, s in SPAN.findall(panel.view.value)]


def rgb(colour):
    return tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))


def test_activation_colours_are_blue_white_red():
    assert activation_colours([-1.0, -0.5, 0.0, 0.5, 1.0, 7.0]) == [
        "#0000ff", "#8080ff", "#ffffff", "#ff8080", "#ff0000", "#ff0000"]
    assert activation_colours([2.0], scale=4.0) == ["#ff8080"]


def test_the_view_shows_the_page_coloured_by_the_chosen_unit(panel, lstm):
    tr = panel.trace
    for layer, state, unit in [(1, "c", 3), (0, "h", 0), (1, "f", 9)]:
        before = panel.view.value
        panel.layer.value, panel.state.value, panel.unit.value = layer, state, unit
        assert panel.view.value != before
        shown = spans(panel)
        assert len(shown) == 200
        assert "".join(s.replace("↵\n", "\n") for _, _, s in shown) == TEXT[:200]
        values = tr.unit(layer, state, unit)[:200]
        scale = np.abs(tr.unit(layer, state, unit)).max() if state == "c" else 1.0
        for (colour, title, _), v in zip(shown, values, strict=True):
            r, g, b = rgb(colour)
            fade = round(255 * (1 - min(abs(v) / scale, 1)))
            want = (255, fade, fade) if v >= 0 else (fade, fade, 255)
            assert np.abs(np.subtract((r, g, b), want)).max() <= 2, (v, colour)   # 201 steps
            assert f"{state}[{unit}] = {v:+.3f}" in title


def test_hover_text_has_the_five_likeliest_next_characters(panel):
    tr = panel.trace
    ids, p = tr.top(5)
    for t, (_, title, _) in enumerate(spans(panel)[:60]):
        nxt = title.split("next: ")[1].split("  ")
        assert len(nxt) == 5
        first, prob = nxt[0].rsplit(" ", 1)
        assert first == {" ": "␣", "\n": "↵"}.get(tr.chars[ids[t, 0]], tr.chars[ids[t, 0]])
        assert float(prob) == pytest.approx(p[t, 0], abs=0.005)


def test_predictions_toggle_puts_five_rows_under_each_character(panel):
    panel.predictions.value = True
    view = panel.view.value
    assert view.count('<span class="k"') == 200
    assert len(re.findall(r'<i class="q[0-3]">', view)) == 5 * 200
    tr = panel.trace
    ids, p = tr.top(5)
    column = re.search(r'<span class="k".*?</span>', view.split("</style>", 1)[1]).group(0)
    predicted = [html.unescape(x) for x in re.findall(r'<i class="q[0-3]">(.*?)</i>', column)]
    assert predicted == [{" ": "␣", "\n": "↵"}.get(tr.chars[i], tr.chars[i]) for i in ids[0]]
    panel.predictions.value = False
    assert '<span class="k"' not in panel.view.value


def test_surprise_colours_follow_the_probability_of_each_character(panel):
    panel.colour.value = "surprise"
    shown = spans(panel)
    tr = panel.trace
    assert "no prediction" in shown[0][1]
    for t in range(1, 200):
        colour, title, _ = shown[t]
        q = tr.char_probs[t]
        assert colour == f"hsl({120 * round(q * 100) / 100:.0f},80%,82%)"
        assert f"p = {q:.3f}" in title
    assert np.isclose(tr.char_probs[1:], np.exp(-tr.loss)).all()


def test_ngram_colouring_shows_where_the_rnn_wins(panel, lstm):
    panel.colour.value = "vs n-gram"
    shown = spans(panel)
    rnn = panel.trace.loss
    ngram = NGram(POEM, n=4, vocab=lstm.vocab).loss(TEXT)
    for t in range(1, 200):
        colour, title, _ = shown[t]
        r, g, b = rgb(colour)
        diff = ngram[t - 1] - rnn[t - 1]
        if diff > 0.02:
            assert g == 255 and r < 255, (diff, colour)          # green: the RNN did better
        elif diff < -0.02:
            assert r == 255 and g < 255, (diff, colour)
        assert f"RNN {rnn[t - 1]:.2f} nats, 4-gram {ngram[t - 1]:.2f} nats" in title


def test_paging_shows_the_next_window(panel):
    assert panel.page.max == -(-len(TEXT) // 200) - 1
    panel.page.value = panel.page.max
    shown = "".join(s.replace("↵\n", "\n") for _, _, s in spans(panel))
    assert shown == TEXT[panel.page.max * 200 :]
    assert 'A "quote" & <tag>' in shown
    assert ">&lt;</span>" in panel.view.value and ">&amp;</span>" in panel.view.value
    assert "<tag>" not in panel.view.value
    assert f"of {len(TEXT):,}" in panel.status.value


def test_choosing_a_finder_row_shows_that_unit(panel):
    options = panel.finder.options
    assert len(options) == len(panel.matches) + 1 and panel.matches
    label, index = options[7]
    m = panel.matches[index]
    panel.colour.value = "surprise"
    panel.finder.value = index
    assert (panel.colour.value, panel.layer.value, panel.state.value, panel.unit.value) == (
        "activation", m.layer, m.state, m.unit)
    assert f"{m.state}[{m.unit}] = " in spans(panel)[0][1]
    assert m.feature in label and f"{m.r:+.3f}" in label


def test_gate_saturation_is_one_point_per_gate_unit_coloured_by_layer(panel):
    svg = panel.saturation.value
    assert svg.startswith("<svg")
    circles = re.findall(r'<circle class="unit layer(\d)"[^>]*fill="([^"]+)"', svg)
    assert len(circles) == 2 * 3 * 10                           # layers x gates x units
    colours = {layer: {c for l, c in circles if l == layer} for layer in "01"}
    assert all(len(c) == 1 for c in colours.values()) and colours["0"] != colours["1"]
    for gate in ("input gate", "forget gate", "output gate"):
        assert gate in svg


def test_without_train_text_there_is_no_ngram_mode_and_rnns_have_no_saturation():
    m = CharRNN(cell="rnn", hidden_size=8, layers=1)
    m.fit(POEM, steps=5, val_fraction=0, seed=1)
    p = InspectorPanel(m, POEM)
    assert list(p.colour.options) == ["activation", "surprise"]
    assert list(p.state.options) == ["h"] and p.layer.disabled
    assert "no gates" in p.saturation.value
    p.close()


def test_bad_options_give_one_line_value_errors(lstm):
    for kwargs, words in [({"window": 5000}, "window=5000"), ({"colour": "x"}, "colour='x'"),
                          ({"unit": 10}, "unit=10"), ({"state": "q"}, "'q'"),
                          ({"colour": "vs n-gram"}, "train_text=")]:
        with pytest.raises(ValueError) as info:
            inspector_panel(lstm, POEM, **kwargs)
        assert words in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(ValueError, match="'€'"):
        inspector_panel(lstm, POEM + "€")


def test_inspect_on_the_model_opens_the_panel(lstm):
    p = lstm.inspect(POEM, unit=2)
    assert isinstance(p, InspectorPanel) and p.unit.value == 2
    assert "h[2] = " in spans(p)[0][1]
    p.close()
