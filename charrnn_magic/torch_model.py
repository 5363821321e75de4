"""The PyTorch form of a character model: an embedding, a fused ``nn.RNN``/``nn.LSTM``/``nn.GRU``
and a linear head. ``CharRNN.to_torch`` returns one (see ``charrnn_magic.torch_bridge``).

This module imports torch at its top: only ``torch_bridge``'s functions import it, so that the
engine never needs PyTorch.
"""
from __future__ import annotations

import torch
from torch import nn

#: The fused PyTorch layer of each of the engine's cells.
FUSED = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


class CharModel(nn.Module):
    """ids (B, T) int64 -> (logits (B, T, V) of the next character, state), as a character model
    in PyTorch is usually written: ``embedding`` (``nn.Embedding(V, E)``) -> ``rnn`` (the fused
    cell, ``batch_first=True``) -> ``head`` (``nn.Linear(H, V)``). ``state`` is the fused cell's:
    ``h`` (layers, B, H), or ``(h, c)`` for an LSTM; None starts from zeros. ``dropout`` drops
    each layer's outputs in training, the top layer's too (``self.dropout``), as the engine
    does; in eval mode (``module.eval()``) nothing is dropped.

    ``embedding_size`` None makes the input one-hot: the embedding is the identity (V, V) and is
    not trained (``requires_grad`` False), so the first layer's ``weight_ih_l0`` is the engine's
    embedding table, transposed. Give the embedding ``requires_grad_(True)`` to learn it too:
    ``CharRNN.from_torch`` folds any embedding into the first layer.
    """

    def __init__(self, cell: str, vocab_size: int, hidden_size: int, layers: int,
                 dropout: float = 0.0, embedding_size: int | None = None,
                 dtype: torch.dtype = torch.float32):
        super().__init__()
        V, H = vocab_size, hidden_size
        E = V if embedding_size is None else embedding_size
        self.embedding = nn.Embedding(V, E, dtype=dtype)
        if embedding_size is None:
            with torch.no_grad():
                self.embedding.weight.copy_(torch.eye(V, dtype=dtype))
            self.embedding.weight.requires_grad_(False)
        self.rnn = FUSED[cell](E, H, layers, batch_first=True,
                               dropout=dropout if layers > 1 else 0.0, dtype=dtype)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(H, V, dtype=dtype)

    def forward(self, ids: torch.Tensor, state=None):
        outputs, state = self.rnn(self.embedding(ids), state)      # (B, T, H)
        return self.head(self.dropout(outputs)), state              # (B, T, V)
