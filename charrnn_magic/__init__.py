"""charrnn_magic: train a character-level RNN on any text from a notebook cell, in pure NumPy.

``from charrnn_magic import CharRNN`` is the Python API (no IPython needed);
``%load_ext charrnn_magic`` adds the ``%%charrnn_train`` / ``%charrnn_sample`` magics.
"""
from .charrnn import PRESETS, CharRNN
from .train import History, Progress, TrainingDiverged
from .vocab import Vocab

__all__ = ["CharRNN", "History", "Progress", "TrainingDiverged", "Vocab", "PRESETS"]
__version__ = "0.1.0"


def load_ipython_extension(ipython):
    """``%load_ext charrnn_magic``: register the magics (imported only now, so the engine alone
    never imports IPython)."""
    from .magics import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython):
    from .magics import unload_ipython_extension as unload

    unload(ipython)
