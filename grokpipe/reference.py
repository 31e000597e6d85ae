"""The straightforward implementation, written the way public grokking code writes it.

One model, every position computed, causal attention over all four positions, and
``torch.optim.AdamW``. It is the yardstick for two things: the fast ensemble model must match
it exactly (tests/test_model.py), and ``grokpipe bench`` reports speed as a ratio against it.
"""

from __future__ import annotations

import math

import torch

from .model import ModelConfig


def reference_forward(params: dict[str, torch.Tensor], cfg: ModelConfig, tokens: torch.Tensor) -> torch.Tensor:
    """Logits at every position, shape (N, 4, vocab), for one model and token sequences (N, 4)."""
    resid = params["embed"][tokens] + params["pos"]  # (N, T, d)
    q = torch.einsum("ntd,hde->nhte", resid, params["W_Q"])
    k = torch.einsum("ntd,hde->nhte", resid, params["W_K"])
    v = torch.einsum("ntd,hde->nhte", resid, params["W_V"])
    scores = torch.einsum("nhte,nhse->nhts", q, k) / math.sqrt(cfg.d_head)
    T = tokens.shape[1]
    causal = torch.ones(T, T, dtype=torch.bool, device=tokens.device).tril()
    scores = scores.masked_fill(~causal, float("-inf"))
    z = torch.einsum("nhts,nhse->nhte", scores.softmax(-1), v)
    resid = resid + torch.einsum("nhte,hed->ntd", z, params["W_O"])
    hidden = torch.relu(resid @ params["W_in"] + params["b_in"])
    resid = resid + hidden @ params["W_out"] + params["b_out"]
    return resid @ params["W_U"]


def tokens_for(cfg: ModelConfig, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Token sequences ``<x><op><y><=>`` of shape (N, 4)."""
    return torch.stack([x, torch.full_like(x, cfg.n), y, torch.full_like(x, cfg.n + 1)], dim=1)
