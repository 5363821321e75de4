"""A model handed to PyTorch and back: ``CharRNN.to_torch`` and ``CharRNN.from_torch``.

torch is imported plainly: without it these tests fail (they cannot run), they do not skip.
"""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

from charrnn_magic import CharRNN, Vocab, torch_bridge
from charrnn_magic.corpora import load_corpus
from tests.test_readme import REPO, fenced_lines, section

TEXT = load_corpus("verse")
#: Below this, the logits of PyTorch and of the engine are the same (float32).
TOLERANCE = 1e-5


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """PyTorch's threads spin while waiting, which stalls badly on a busy two-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def engine_model(cell: str, layers: int, hidden: int = 24, spread: float = 0.5, seed: int = 0,
                 dtype: str = "float32"):
    """A model of the engine with weights drawn at random, wide enough that every gate works
    (one step of training leaves them small), with recurrent weights of spectral radius about
    0.9: in a chaotic network (radius well above 1) float32 rounding grows without bound, and no
    two implementations agree after a few hundred characters."""
    model = CharRNN(cell, hidden_size=hidden, layers=layers, dropout=0.1, dtype=dtype)
    model.fit(TEXT, steps=1, seed=seed)
    rng = np.random.default_rng(seed)
    for name, view in model._net.params.items():
        scale = 0.9 / np.sqrt(hidden) if name.endswith("Wh") else spread
        view[...] = rng.normal(0.0, scale, view.shape)
    return model


def engine_logits(model, text: str) -> np.ndarray:
    """(T, V) the logits of the character after each of ``text``'s, from the engine's own
    forward pass (``trace``): the top layer's state times the head."""
    top = model.trace(text, probs=False).state(model.layers - 1, "h")            # (T, H)
    return top @ model._net.params["Wy"] + model._net.params["by"]


def torch_logits(module, ids) -> np.ndarray:
    with torch.no_grad():
        logits, _ = module.eval()(torch.as_tensor(np.asarray(ids, np.int64))[None])
    return logits[0].numpy()                                                        # (T, V)


def one_line(error) -> str:
    message = str(error.value)
    assert message and "\n" not in message, message
    return message


# ---- to_torch: the same network in PyTorch -------------------------------------------------------
@pytest.mark.parametrize("layers", [1, 2, 3])
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_to_torch_gives_the_same_logits(cell, layers):
    model = engine_model(cell, layers)
    module = model.to_torch()
    assert isinstance(module, nn.Module)
    assert type(module.rnn) is {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[cell]
    assert module.rnn.batch_first and module.rnn.num_layers == layers
    assert isinstance(module.embedding, nn.Embedding) and isinstance(module.head, nn.Linear)
    text = TEXT[:1500]
    ours, theirs = engine_logits(model, text), torch_logits(module, model.vocab.encode(text))
    assert theirs.dtype == np.float32 and theirs.shape == ours.shape == (1500, len(model.vocab))
    assert np.abs(ours).max() > 1.0                  # logits that say something
    assert np.abs(theirs - ours).max() < TOLERANCE
    # And back: the same weights, exactly.
    back = CharRNN.from_torch(module, model.vocab)
    assert (back.cell, back.hidden_size, back.layers, back.dropout) == (cell, 24, layers, 0.1)
    np.testing.assert_array_equal(back._net.flat, model._net.flat)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_in_float64_the_logits_agree_to_rounding(cell):
    """The mapping itself is exact: what float32 leaves (the order of the sums differs between
    the two) shrinks to float64's rounding in float64."""
    model = engine_model(cell, 3, hidden=64, dtype="float64")
    module = model.to_torch()
    assert module.rnn.weight_hh_l0.dtype == torch.float64
    text = TEXT[:1000]
    assert np.abs(torch_logits(module, model.vocab.encode(text))
                  - engine_logits(model, text)).max() < 1e-12
    assert CharRNN.from_torch(module, model.vocab).dtype == "float64"


def test_the_module_trains_on_another_device_and_keeps_its_parts_plain():
    module = engine_model("gru", 2).to_torch()
    # Plain parameters, nothing pinned: moving moves them all (to the meta device here, which
    # every machine has; a GPU the same way).
    moved = module.to("meta")
    assert all(p.device.type == "meta" for p in moved.parameters())
    trainable = [n for n, p in engine_model("gru", 2).to_torch().named_parameters()
                 if p.requires_grad]
    assert "embedding.weight" not in trainable               # one-hot input
    assert {"rnn.weight_ih_l0", "rnn.bias_hh_l1", "head.weight"} <= set(trainable)


# ---- trained in PyTorch, back here ------------------------------------------------------------
def train_in_torch(module, ids: np.ndarray, steps: int, seed: int = 0):
    """A few steps of Adam on windows of ``ids``, as a PyTorch user trains."""
    torch.manual_seed(seed)
    data = torch.as_tensor(ids.astype(np.int64))
    optimizer = torch.optim.Adam([p for p in module.parameters() if p.requires_grad], lr=0.02)
    module.train()
    losses = []
    for _ in range(steps):
        starts = torch.randint(0, len(data) - 33, (8,)).tolist()
        chunk = torch.stack([data[s : s + 33] for s in starts])                  # (B, T + 1)
        logits, _ = module(chunk[:, :-1])
        loss = nn.functional.cross_entropy(logits.flatten(0, 1), chunk[:, 1:].flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return module.eval(), losses


def torch_greedy(module, ids: list[int], length: int) -> list[int]:
    """Feed ``ids``, then take the likeliest next character ``length`` times, in PyTorch."""
    out, state = [], None
    x = torch.as_tensor([ids])
    with torch.no_grad():
        for _ in range(length):
            logits, state = module(x, state)
            out.append(int(logits[0, -1].argmax()))
            x = torch.as_tensor([[out[-1]]])
    return out


@pytest.mark.slow
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_a_module_trained_in_torch_comes_back_and_samples_what_torch_samples(cell):
    model = CharRNN(cell, hidden_size=32, layers=2)
    model.fit(TEXT, steps=1, seed=3)
    module, losses = train_in_torch(model.to_torch(), model.vocab.encode(TEXT), steps=200)
    assert losses[-1] < losses[0] - 0.5                      # it learned in PyTorch
    back = CharRNN.from_torch(module, model.vocab)
    assert not np.allclose(back._net.flat, model._net.flat)
    prime = "The lamp"
    ours = back.sample(length=120, temperature=0, prime=prime)
    theirs = torch_greedy(module, model.vocab.encode(prime).tolist(), 120)
    assert ours == "".join(model.vocab.chars[i] for i in theirs)
    assert len(set(ours)) > 3


def test_save_and_load_keep_a_model_from_torch(tmp_path):
    model = engine_model("lstm", 2)
    module = model.to_torch()
    back = CharRNN.from_torch(module, model.vocab)
    path = back.save(tmp_path / "from_torch.safetensors")
    loaded = CharRNN.load(path)
    np.testing.assert_array_equal(loaded._net.flat, back._net.flat)
    assert loaded.sample(length=80, seed=4) == back.sample(length=80, seed=4)
    text = TEXT[:400]
    again = loaded.to_torch()
    assert np.abs(torch_logits(again, loaded.vocab.encode(text))
                  - torch_logits(module, model.vocab.encode(text))).max() < TOLERANCE
    loaded.fit(TEXT, steps=2)                                 # and trains on here
    assert loaded.step == back.step + 2


# ---- any Embedding -> cell -> Linear char-model ------------------------------------------------
class CharLSTM(nn.Module):
    """A char-model as a PyTorch user writes one: its embedding narrower than its cells."""

    def __init__(self, V: int, E: int, H: int, layers: int):
        super().__init__()
        self.embed = nn.Embedding(V, E)
        self.lstm = nn.LSTM(E, H, layers, batch_first=True)
        self.fc = nn.Linear(H, V)

    def forward(self, ids, state=None):
        out, state = self.lstm(self.embed(ids), state)
        return self.fc(out), state


def shuffled_chars(text: str, seed: int = 0) -> list[str]:
    """The characters of ``text`` in an order of their own (ids need not be sorted)."""
    chars = sorted(set(text))
    return [chars[i] for i in np.random.default_rng(seed).permutation(len(chars))]


def test_from_torch_folds_a_narrow_embedding_into_the_first_table(tmp_path):
    chars = shuffled_chars(TEXT)
    torch.manual_seed(0)
    module = CharLSTM(len(chars), 10, 24, 2).eval()
    text = TEXT[:1200]
    ids = [chars.index(c) for c in text]
    expected = torch.softmax(torch.as_tensor(torch_logits(module, ids)), dim=-1).numpy()

    for source, vocab in ((module, chars), (module.state_dict(), "".join(chars))):
        back = CharRNN.from_torch(source, vocab)
        assert (back.cell, back.hidden_size, back.layers, len(back.vocab)) == (
            "lstm", 24, 2, len(chars))
        assert back._net.params["l0.Wx"].shape == (len(chars), 4 * 24)         # the table
        tr = back.trace(text)
        # The engine's ids are sorted; PyTorch's are the user's: compare character by character.
        order = [back.vocab.chars.index(c) for c in chars]
        assert np.abs(tr.probs[:, order] - expected).max() < TOLERANCE

    # A working model: sample, panel, inspector, trace, unit finder, save and load.
    assert set(back.sample(length=50, seed=1)) <= set(chars)
    panel = back.panel(seed=2)
    assert len(panel.output.value) == panel.length.value
    panel.close()
    inspector = back.inspect(text[:300])
    assert "<span" in inspector.view.value
    inspector.close()
    assert back.find_units(text[:600], top=2)
    assert CharRNN.load(back.save(tmp_path / "m.safetensors")).sample(length=40, seed=5) == \
        back.sample(length=40, seed=5)


def test_from_torch_takes_a_gru_state_dict_with_any_names_and_no_head_bias():
    torch.manual_seed(1)
    V, E, H = 12, 7, 9
    parts = nn.ModuleDict({"emb": nn.Embedding(V, E), "core": nn.GRU(E, H, 3, batch_first=True),
                           "out": nn.Linear(H, V, bias=False)})
    chars = "abcdefghij \n"

    class Wrapped(nn.Module):
        def __init__(self):
            super().__init__()
            self.parts = parts

        def forward(self, ids):
            return self.parts["out"](self.parts["core"](self.parts["emb"](ids))[0]), None

    back = CharRNN.from_torch(parts.state_dict(), list(chars))
    ids = [chars.index(c) for c in "a cab\nface bead\n" * 3]
    text = "".join(chars[i] for i in ids)
    expected = torch.softmax(torch.as_tensor(torch_logits(Wrapped(), ids)), -1).numpy()
    order = [back.vocab.chars.index(c) for c in chars]
    assert np.abs(back.trace(text).probs[:, order] - expected).max() < TOLERANCE


# ---- refusals ---------------------------------------------------------------------------------
class Between(nn.Module):
    """An extra layer between the cell and the head."""

    def __init__(self, extra: nn.Module):
        super().__init__()
        self.embedding, self.rnn = nn.Embedding(6, 4), nn.GRU(4, 8, batch_first=True)
        self.extra, self.head = extra, nn.Linear(8, 6)


def without(state: dict, *names) -> dict:
    return {k: v for k, v in state.items() if k not in names}


def plain(cell=nn.GRU, V=6, E=4, H=8, head_in=None, V_out=None, **options) -> nn.Module:
    return nn.ModuleDict({"embedding": nn.Embedding(V, E), "rnn": cell(E, H, **options),
                          "head": nn.Linear(head_in or H, V_out or V)})


REFUSED = {
    "bidirectional": (plain(nn.LSTM, bidirectional=True), "bidirectional"),
    "bidirectional state_dict": (plain(nn.LSTM, bidirectional=True).state_dict(),
                                 "bidirectional"),
    "projections": (plain(nn.LSTM, proj_size=3), "proj_size=3"),
    "projections state_dict": (plain(nn.LSTM, proj_size=3).state_dict(), "proj_size"),
    "relu": (plain(nn.RNN, nonlinearity="relu"), "nonlinearity='relu'"),
    "head of another vocabulary": (plain(V_out=7), "the embedding has 6 characters but the head 7"),
    "head of another width": (plain(head_in=9), "the head takes the 8 outputs"),
    "a linear layer between": (Between(nn.Linear(8, 8)), "2 nn.Linear layers (extra, head)"),
    "a norm between": (Between(nn.LayerNorm(8)), "extra.weight, in a LayerNorm"),
    "two recurrent layers": (Between(nn.GRU(8, 8)), "2 recurrent layers (rnn, extra)"),
    "no embedding": (nn.ModuleDict({"rnn": nn.GRU(4, 8), "head": nn.Linear(8, 6)}),
                     "no nn.Embedding"),
    "no head": (without(plain().state_dict(), "head.weight", "head.bias"),
                "the state_dict has embedding.weight beside the recurrent layer"),
    "a missing layer": (without(plain(num_layers=3).state_dict(), "rnn.weight_hh_l1",
                                "rnn.weight_ih_l1", "rnn.bias_ih_l1", "rnn.bias_hh_l1"),
                        "weights of layer 2 but none of layer 1"),
    "half a bias": (without(plain().state_dict(), "rnn.bias_hh_l0"), "bias_ih_l0 but not its pair"),
    "a wrong hidden size": ({**plain(num_layers=2).state_dict(),
                             "rnn.weight_hh_l1": torch.zeros(24, 9)},
                            "rnn.weight_hh_l1 has shape (24, 9), expected (24, 8)"),
    "an embedding of another width": ({**plain().state_dict(), "embedding.weight":
                                       torch.zeros(6, 5)}, "the embedding is 5 wide"),
    "a layer that is no char-model's": ({**plain().state_dict(), "norm.running_mean":
                                         torch.zeros(8)}, "'norm.running_mean'"),
    "integer weights": ({**plain().state_dict(), "head.bias": torch.zeros(6, dtype=torch.int64)},
                        "head.bias holds torch.int64"),
    "NaN": ({**plain().state_dict(), "head.bias": torch.full((6,), float("nan"))},
            "head.bias holds NaN"),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_other_shapes_are_refused_in_one_line_before_anything_is_built(case, monkeypatch):
    source, expected = REFUSED[case]

    def must_not_build(*args):
        raise AssertionError("a model was built from a refused module")

    monkeypatch.setattr(torch_bridge, "build", must_not_build)
    with pytest.raises(ValueError) as error:
        CharRNN.from_torch(source, "abcdef")
    assert expected in one_line(error)


@pytest.mark.parametrize("vocab, expected", [
    ("abcde", "vocab has 5 characters but the model 6"),
    ("abcdea", "vocab has 'a' twice"),
    (["a", "b", "c", "d", "e", "<pad>"], "vocab holds '<pad>', which is not one character"),
    (42, "vocab must be a Vocab, a str"),
])
def test_a_vocabulary_that_does_not_fit_is_refused(vocab, expected):
    with pytest.raises(ValueError) as error:
        CharRNN.from_torch(plain(), vocab)
    assert expected in one_line(error)
    assert len(CharRNN.from_torch(plain(), Vocab("abcdef")).vocab) == 6


@pytest.mark.parametrize("source", [42, "model.pt", None, [torch.zeros(3)]])
def test_a_non_module_is_refused_in_one_line(source):
    with pytest.raises(ValueError) as error:
        CharRNN.from_torch(source, "abcdef")
    assert "from_torch takes a torch.nn.Module or its state_dict()" in one_line(error)


def test_an_untrained_model_has_nothing_to_hand_over():
    with pytest.raises(ValueError) as error:
        CharRNN("gru", hidden_size=8, layers=1).to_torch()
    assert "fit(text) first" in one_line(error)


# ---- torch stays optional ----------------------------------------------------------------------
def test_without_torch_both_calls_say_what_to_install(monkeypatch):
    model = engine_model("rnn", 1)
    monkeypatch.setitem(sys.modules, "torch", None)         # `import torch` now fails
    for call in (model.to_torch, lambda: CharRNN.from_torch({}, "ab")):
        with pytest.raises(ImportError) as error:
            call()
        assert one_line(error).endswith("not installed here: pip install torch")


def test_the_package_never_imports_torch_by_itself():
    code = ("import sys; sys.modules['torch'] = None\n"
            "import charrnn_magic, charrnn_magic.notebook.magics, charrnn_magic.trace\n"
            "m = charrnn_magic.CharRNN('gru', hidden_size=8, layers=1)\n"
            "m.fit('abc ' * 50, steps=2, seed=0); m.sample(length=5)\n"
            "print('fine')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert done.returncode == 0 and done.stdout.strip() == "fine", done.stderr


# ---- the README's section -----------------------------------------------------------------------
@pytest.mark.slow
def test_the_readme_section_runs():
    """"When a model outgrows the CPU": its one block of Python, run as it is (on the CPU)."""
    text = section("When a model outgrows the CPU")
    assert text.count("```python") == 1
    code = "\n".join(fenced_lines(text, "python"))
    assert "to_torch()" in code and "from_torch(" in code and ".panel()" in code
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=600, env=env)
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.strip()) > 100                    # the sample it prints
