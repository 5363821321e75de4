"""What differs between ipywidgets 7 and 8 (``notebook/widget_compat.py``), under the installed one.

The main run has ipywidgets 8; ``.ci/widgets7.sh`` runs this file again under ipywidgets 7.8.
Either way, the panel, the inspector and the training dashboard show up as their widget when a
cell ends with them, and building them sets no option the installed ipywidgets does not know.
"""
from __future__ import annotations

import warnings

import ipywidgets as W
import pytest

from charrnn_magic import CharRNN
from charrnn_magic.notebook import train_in_background
from charrnn_magic.notebook.widget_compat import VIEW_MIMETYPE, tooltip, widget_bundle

TEXT = "the owl and the pussycat went to sea\nin a beautiful pea-green boat\n" * 6


@pytest.fixture(scope="module")
def model():
    m = CharRNN(cell="gru", hidden_size=16)
    m.fit(TEXT, steps=30, seed=0)
    return m


@pytest.fixture
def wrappers(model):
    """The panel, the inspector and a background run's dashboard, built with every warning an
    error: an option that the installed ipywidgets deprecates or ignores warns."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        panel = model.panel()
        inspector = model.inspect(TEXT[:80])
    run = train_in_background(CharRNN(cell="rnn", hidden_size=8), TEXT, steps=5)
    yield {"panel": panel, "inspector": inspector, "dashboard": run}
    run.stop(timeout=30)
    panel.close()
    inspector.close()


@pytest.mark.parametrize("name", ["panel", "inspector", "dashboard"])
def test_a_cell_ending_with_it_shows_its_widget(ip, wrappers, name):
    shown = wrappers[name]
    data, _ = ip.display_formatter.format(shown)      # what IPython sends to the front end
    assert data[VIEW_MIMETYPE]["model_id"] == shown.widget.model_id
    assert data[VIEW_MIMETYPE]["version_major"] == 2
    assert data["text/plain"].startswith("VBox(")


def test_the_bundle_of_a_plain_widget_names_it():
    box = W.VBox([W.HTML("hello")])
    bundle = widget_bundle(box)
    assert bundle[VIEW_MIMETYPE]["model_id"] == box.model_id
    assert "VBox" in bundle["text/plain"]
    box.close()


def test_tooltips_land_on_the_trait_the_installed_ipywidgets_shows(wrappers):
    step = wrappers["panel"].step
    # ipywidgets 8 gives every widget a tooltip; 7 only has the description's.
    name = "tooltip" if step.has_trait("tooltip") else "description_tooltip"
    assert "this step of its training" in getattr(step, name)
    # Buttons have a tooltip of their own in both majors.
    assert tooltip(W.Button, "x") == {"tooltip": "x"}
    assert W.Button(**tooltip(W.Button, "stop it")).tooltip == "stop it"
