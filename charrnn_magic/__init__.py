"""charrnn_magic: train a character-level RNN on any text from a notebook cell, in pure NumPy.

``from charrnn_magic import CharRNN`` is the Python API (no IPython needed);
``%load_ext charrnn_magic`` adds the ``%%charrnn_train`` / ``%charrnn_sample`` magics.

Three layers, each importing only the ones below it:

* the engine, the modules at this package's top level (pure NumPy);
* the notebook front end, :mod:`charrnn_magic.notebook` (IPython magics and ipywidgets);
* this file, the extension entry: the public API and ``load_ipython_extension``.
"""
from .charrnn import PRESETS, CharRNN
from .train import History, Progress, TrainingDiverged
from .vocab import Vocab

__all__ = ["CharRNN", "History", "Progress", "TrainingDiverged", "Vocab", "PRESETS"]
__version__ = "0.1.0"


def load_ipython_extension(ipython):
    """``%load_ext charrnn_magic``: register the magics (imported only now, so the engine alone
    never imports IPython)."""
    from .notebook.magics import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython):
    from .notebook.magics import unload_ipython_extension as unload

    unload(ipython)
