"""The network: stacked single-layer LSTM / GRU modules, dropout and a linear head.

Every trainer starts from a :class:`RecurrentNet` (its seeded default initialization) and
leaves its trained weights in one, so prediction always runs through this module. The flat
parameter vector (:func:`flat_parameters`) is ``RecurrentNet.parameters()`` order: per
layer ``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh``, then the head's ``weight`` and
``bias``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

__all__ = ["RecurrentNet", "flat_parameters", "load_flat_parameters"]


class RecurrentNet(nn.Module):
    """Stacked single-layer ``nn.LSTM`` / ``nn.GRU`` modules, dropout, a linear head.

    Parameters
    ----------
    n_features : int
        Inputs per time step ``F``.
    units : sequence of int
        Hidden units of each stacked layer (``units[0]`` first).
    cell : {"lstm", "gru"}
    dropout : float
        Dropout applied to every layer's output sequence (also after the last layer).
    """

    def __init__(
        self, n_features: int, units: Sequence[int], cell: str = "lstm", dropout: float = 0.0
    ) -> None:
        super().__init__()
        rnn = {"lstm": nn.LSTM, "gru": nn.GRU}[cell]
        sizes = [n_features, *units]
        self.rnns = nn.ModuleList(
            rnn(sizes[i], sizes[i + 1], batch_first=True) for i in range(len(units))
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(sizes[-1], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Raw output of each window: ``(B, T, F) -> (B,)`` (a logit for direction)."""
        h = x  # (B, T, F)
        for rnn in self.rnns:
            h, _ = rnn(h)  # (B, T, H_i)
            h = self.dropout(h)
        return self.head(h[:, -1, :]).squeeze(-1)  # (B,)


def flat_parameters(net: nn.Module) -> np.ndarray:
    """A copy of ``net``'s parameters as one flat vector (float32 for a RecurrentNet)."""
    return torch.nn.utils.parameters_to_vector(net.parameters()).detach().cpu().numpy().copy()


def load_flat_parameters(net: nn.Module, flat: np.ndarray) -> None:
    """Write a vector of :func:`flat_parameters`' layout back into ``net``'s parameters."""
    with torch.no_grad():
        torch.nn.utils.vector_to_parameters(torch.from_numpy(flat.copy()), net.parameters())
