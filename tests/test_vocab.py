import numpy as np
import pytest

from charrnn_magic.vocab import Vocab


def test_unicode_round_trip_and_sorted_ids():
    text = "héllo wörld 🙂 日本語\n\tdone"
    vocab = Vocab.from_text(text)
    ids = vocab.encode(text)
    assert ids.dtype == np.uint8 and ids.shape == (len(text),)
    assert vocab.decode(ids) == text
    assert vocab.chars == sorted(set(text))
    assert "🙂" in vocab and len(vocab) == len(set(text))


def test_same_text_same_ids_regardless_of_order():
    assert Vocab.from_text("banana").chars == Vocab.from_text("nab").chars == ["a", "b", "n"]


def test_readable_labels_for_whitespace():
    vocab = Vocab.from_text("a b\n\t")
    assert vocab.label(" ") == "␣ (space)"
    assert vocab.label("\n") == "⏎ (newline)"
    assert vocab.label("\t") == "⇥ (tab)"
    assert vocab.label("a") == "a"


def test_unknown_characters_are_named():
    vocab = Vocab.from_text("abc")
    with pytest.raises(ValueError, match=r"'x', 'z'"):
        vocab.encode("abxcz")
    assert vocab.missing("zax") == ["x", "z"]


def test_large_text_encodes_to_one_array():
    text = "abcdefgh" * 250_000  # 2 MB
    ids = Vocab.from_text(text).encode(text)
    assert isinstance(ids, np.ndarray) and ids[:8].tolist() == list(range(8))
