"""The tests' texts, made from what every Python install has: nothing is read from outside the
repository, so a plain clone passes its own tests.

``prose(n)``
    English technical prose with code in it: the built-in ``pydoc`` corpus (CPython's own
    reference documentation, about 460,000 characters), for the quality, over-fitting and
    scaling tests. Longer requests repeat it, which only the tests of sizes ask for.
``names()``
    A names-like list for lines mode: the distinct lower-case words of 2 to 12 letters in that
    text (about 2,700), in a fixed shuffled order so that the held-out tenth is a fair sample.

The benchmarks use the same two as their fallback when their data sets are not beside the
repository (``benchmarks/_common.py``).
"""
from __future__ import annotations

import functools
import random
import re

from charrnn_magic.corpora import load_corpus


@functools.cache
def _pydoc() -> str:
    return load_corpus("pydoc")


def prose(n_chars: int | None = None) -> str:
    """The first ``n_chars`` characters of the pydoc corpus (all of it for ``None``), the corpus
    repeated where more are asked for."""
    text = _pydoc()
    if n_chars is None:
        return text
    return (text * -(-n_chars // len(text)))[:n_chars]


@functools.cache
def names() -> list[str]:
    """Distinct lower-case words of the pydoc corpus, 2 to 12 letters, shuffled with a fixed
    seed."""
    words = sorted(set(re.findall(r"\b[a-z]{2,12}\b", _pydoc())))
    random.Random(0).shuffle(words)
    return words
