"""charrnn_magic: train a character-level RNN on any text from a notebook cell, in pure NumPy.

``from charrnn_magic import CharRNN`` is the Python API (no IPython needed);
``%load_ext charrnn_magic`` adds the ``%%charrnn_train`` / ``%charrnn_sample`` magics.

Four layers, each importing only the ones below it:

* the engine, the modules at this package's top level (pure NumPy);
* the notebook front end, :mod:`charrnn_magic.notebook` (IPython magics and ipywidgets);
* the web page, :mod:`charrnn_magic.web` (plain JavaScript and CSS, assembled at export);
* this file, the extension entry: the public API and ``load_ipython_extension``.

The modules, in the order a text flows through them (engine first, then the front ends):

- ``text``: reads the user's text (regular files only) and normalises line ends and the BOM;
  ``corpora``: built-in texts
- ``budget``: what a fit, a sample, a trace or a file will cost in memory, checked up front
- ``vocab``: characters <-> integer ids
- ``data``: the ids cut into stream or line batches, and the validation split
- ``settings``: every setting declared once (default, check, help, options), the presets
- ``defaults_from_text``: the rule that chooses a first fit's model and settings from the text
- ``session``: one fit call, text to data, network and optimiser (``prepare_fit``)
- ``workspace``: reused arrays for a step's temporaries; ``blas_threads``: BLAS threads
- ``cells``: the RNN, LSTM and GRU, forward and backward over a window
- ``network``: ``Network``: embedding, stacked cells, softmax head, one flat weight array
- ``optim``: optimisers, gradient clipping, learning-rate schedules
- ``workers``: one or two workers per batch; ``second_worker``: the second one's child process
- ``interrupts``: Ctrl-C between training steps
- ``stopping``: stop rules, validations, best weights, patience
- ``evaluation``: the loss of a text (``evaluate``, validation)
- ``train``: the training loop, ``History``, ``Progress``
- ``progress``: progress lines while training, and the words for each stop reason
- ``timeline``: weight snapshots taken while training, and a model of one
- ``sampling``: generating text
- ``checkpoint``: save and load (safetensors)
- ``torch_bridge``, ``torch_model``: a model handed to PyTorch and back (torch optional)
- ``charrnn``: ``CharRNN``, the facade over all of the above; ``version``: the version
- ``trace``: every unit's values over a text; ``unit_finder``: which units track what;
  ``ngram``: the n-gram baseline
- ``__main__``: ``python -m charrnn_magic``
- ``notebook``: ``magics`` joins the families ``train_magics``, ``sample_magics``,
  ``inspect_magics``, ``file_magics`` and ``export_magics`` (on ``magic_base``, with ``options``
  and ``display``); ``background`` training, ``progress``, ``plots``, the sampler ``panel``, the
  ``inspector``, ``widget_tools`` and ``widget_compat`` (ipywidgets 7 and 8)
- ``web``: ``export`` writes one HTML file of ``engine.js``, ``page.js``, ``page.css`` and the
  model's data
"""
from .charrnn import PRESETS, CharRNN
from .train import History, Progress, TrainingDiverged
from .version import __version__
from .vocab import Vocab

__all__ = ["CharRNN", "History", "Progress", "TrainingDiverged", "Vocab", "PRESETS", "__version__"]


def load_ipython_extension(ipython):
    """``%load_ext charrnn_magic``: register the magics (imported only now, so the engine alone
    never imports IPython)."""
    from .notebook.magics import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython):
    from .notebook.magics import unload_ipython_extension as unload

    unload(ipython)
