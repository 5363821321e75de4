"""charrnn_magic: train a character-level RNN on any text from a notebook cell, in pure NumPy."""
from .vocab import Vocab

__all__ = ["Vocab"]
__version__ = "0.1.0"
