"""Appendix A's one-layer transformer, batched over an ensemble of independent models.

Architecture (per model): token and learned position embeddings, one attention layer (no
LayerNorm, no attention biases), a ReLU MLP with biases, an untied unembedding; the loss is on
the logits at the last position. Every parameter has a leading ensemble axis M, so one process
trains M runs at once with batched matmuls.

Why only the last position is computed. With one layer, the logits at position 3 depend on the
other positions only through their keys and values. The last token is always ``<=>`` and the
second always ``<op>``, so (per model and head):

* the query is one vector ``q = (E[=] + P3) W_Q``;
* the score of position i is ``s_i = q . ((E[t_i] + P_i) W_K) / sqrt(d_head)``, a table over
  tokens for i = 0, 2 and a constant for i = 1, 3;
* the value written to the residual stream is ``(E[t_i] + P_i) W_V W_O``, again a table over
  tokens for i = 0, 2 and a constant for i = 1, 3.

So the heads' output at the last position is a softmax-weighted sum of rows gathered from small
tables, and only the MLP and the unembedding run per example (with W_O, W_out folded in:
see :func:`forward`). ``tests/test_model.py`` checks this
against the obvious all-positions implementation, logits and every gradient.
"""

from __future__ import annotations

import math

import torch

from .spec import ModelConfig
from .tasks import N_POSITIONS

PARAM_NAMES = ("embed", "pos", "W_Q", "W_K", "W_V", "W_O", "W_in", "b_in", "W_out", "b_out", "W_U")


def param_shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Shape of each parameter of one model (the ensemble adds a leading axis)."""
    d, h, e, m, v = cfg.d_model, cfg.n_heads, cfg.d_head, cfg.d_mlp, cfg.vocab
    return {
        "embed": (v, d), "pos": (N_POSITIONS, d),
        "W_Q": (h, d, e), "W_K": (h, d, e), "W_V": (h, d, e), "W_O": (h, e, d),
        "W_in": (d, m), "b_in": (m,), "W_out": (m, d), "b_out": (d,), "W_U": (d, v),
    }


def init_params(cfg: ModelConfig, seed: int, dtype=torch.float32) -> dict[str, torch.Tensor]:
    """Parameters of one model, drawn from ``seed`` alone (as in Nanda et al.'s grokking code:
    weights ~ N(0, 1/d_model), the unembedding ~ N(0, 1/vocab), biases zero), so a run's start
    does not depend on which ensemble it is trained in."""
    gen = torch.Generator().manual_seed(int(seed))
    params = {}
    for name, shape in param_shapes(cfg).items():
        if name.startswith("b_"):
            params[name] = torch.zeros(shape, dtype=torch.float64)
        else:
            std = 1 / math.sqrt(cfg.vocab if name == "W_U" else cfg.d_model)
            params[name] = torch.randn(shape, generator=gen, dtype=torch.float64) * std
    return {k: v.to(dtype) for k, v in params.items()}


def stack_params(members: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    return {k: torch.stack([m[k] for m in members]) for k in PARAM_NAMES}


def forward(params: dict[str, torch.Tensor], cfg: ModelConfig, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Logits at the last position, shape (M, N, vocab), for inputs ``x``, ``y`` of shape (M, N).

    ``params`` holds ensemble-stacked tensors (leading axis M). Per model, with ``z`` the heads'
    concatenated outputs (H * d_head wide) and ``r0 = E[=] + P3``::

        resid  = r0 + z W_O
        hidden = relu(resid W_in + b_in)   = relu(z (W_O W_in) + (r0 W_in + b_in))
        logits = (resid + hidden W_out + b_out) W_U
               = z (W_O W_U) + hidden (W_out W_U) + (r0 + b_out) W_U

    The products in brackets are per model, not per example, so each example costs three
    matmuls of widths (H*d_head -> d_mlp), (H*d_head -> vocab), (d_mlp -> vocab) and never
    touches d_model; ``z`` itself is a softmax-weighted sum of gathered table rows."""
    n, op, eq = cfg.n, cfg.n, cfg.n + 1
    E, P = params["embed"], params["pos"]
    M, N = x.shape
    H, e = cfg.n_heads, cfg.d_head
    rows = torch.stack([E[:, :n] + P[:, 0:1], E[:, :n] + P[:, 2:3]], 1)  # (M, 2, n, d): positions 0 and 2
    consts = torch.stack([E[:, op] + P[:, 1], E[:, eq] + P[:, 3]], 1)  # (M, 2, d): positions 1 and 3
    q = torch.einsum("md,mhde->mhe", consts[:, 1], params["W_Q"]) / math.sqrt(e)
    kq = torch.einsum("mhde,mhe->mdh", params["W_K"], q)  # score of a position = resid . kq: (M, d, H)
    W_V = params["W_V"].permute(0, 2, 1, 3).reshape(M, 1, -1, H * e)  # (M, 1, d, H*e)
    # one table row per (position, token): H scores, then H*e values
    row_table = torch.cat([rows @ kq.unsqueeze(1), rows @ W_V], -1)  # (M, 2, n, H + H*e)
    const_row = torch.cat([consts @ kq, consts @ W_V.squeeze(1)], -1)  # (M, 2, H + H*e)
    offset = (torch.arange(M, device=x.device) * 2 * n).unsqueeze(1)
    flat = row_table.reshape(M * 2 * n, -1)
    row_x = flat.index_select(0, (x + offset).reshape(-1)).view(M, N, -1)
    row_y = flat.index_select(0, (y + offset + n).reshape(-1)).view(M, N, -1)
    const1 = const_row[:, 0].unsqueeze(1)  # (M, 1, H + H*e)
    const3 = const_row[:, 1].unsqueeze(1)
    scores = torch.stack(
        [row_x[..., :H], const1[..., :H].expand(M, N, H), row_y[..., :H], const3[..., :H].expand(M, N, H)], -1
    )
    attn = scores.softmax(-1)  # (M, N, H, 4)

    def values(row):
        return row[..., H:].view(row.shape[0], row.shape[1], H, e)

    z = (
        attn[..., 0:1] * values(row_x) + attn[..., 1:2] * values(const1)
        + attn[..., 2:3] * values(row_y) + attn[..., 3:4] * values(const3)
    ).view(M, N, H * e)
    W_O = params["W_O"].reshape(M, H * e, -1)  # (M, H*e, d)
    W_U = params["W_U"]
    r0 = consts[:, 1].unsqueeze(1)  # (M, 1, d)
    hidden = torch.relu(torch.baddbmm(params["b_in"].unsqueeze(1) + r0 @ params["W_in"], z, W_O @ params["W_in"]))
    bias_U = (r0 + params["b_out"].unsqueeze(1)) @ W_U  # (M, 1, vocab)
    return torch.baddbmm(torch.baddbmm(bias_U, z, W_O @ W_U), hidden, params["W_out"] @ W_U)


def param_norm(params: dict[str, torch.Tensor]) -> torch.Tensor:
    """L2 norm of all parameters of each member, shape (M,)."""
    sq = sum(p.detach().double().pow(2).flatten(1).sum(1) for p in params.values())
    return sq.sqrt()


def flops_per_example(cfg: ModelConfig) -> dict[str, int]:
    """FLOPs (2 per multiply-add) per example for one forward pass: this model vs the all-positions one.

    Backward costs twice the forward in matmuls. Table building is per model, not per example
    (O(n * d * H * d_head) a step), and is left out: small next to N examples once N >> d."""
    d, m, v, h, e = cfg.d_model, cfg.d_mlp, cfg.vocab, cfg.n_heads, cfg.d_head
    fast = 2 * (h * e * m + h * e * v + m * v) + 2 * 4 * h * e  # three matmuls + mixing four value rows
    full = N_POSITIONS * 2 * (3 * d * h * e + h * e * d + d * m + m * d + d * v) + 2 * h * N_POSITIONS**2 * e * 2
    return {"fast": fast, "reference": full}
