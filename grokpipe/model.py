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

So ``resid = E[=] + P3 + sum_h sum_i softmax_i(s)_h * value_{h,i}``, gathered from (n x d) tables,
and only the MLP and the unembedding run per example. ``tests/test_model.py`` checks this
against the obvious all-positions implementation, logits and every gradient.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

from .tasks import N_POSITIONS

PARAM_NAMES = ("embed", "pos", "W_Q", "W_K", "W_V", "W_O", "W_in", "b_in", "W_out", "b_out", "W_U")


@dataclass(frozen=True)
class ModelConfig:
    n: int  # number of element tokens; vocabulary n + 2 (<op>, <=>)
    d_model: int = 128
    n_heads: int = 4
    d_head: int = 32
    d_mlp: int = 512

    @property
    def vocab(self) -> int:
        return self.n + 2

    def as_dict(self) -> dict:
        return asdict(self)


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

    ``params`` holds ensemble-stacked tensors (leading axis M)."""
    n, op, eq = cfg.n, cfg.n, cfg.n + 1
    E, P = params["embed"], params["pos"]
    rows0 = E[:, :n] + P[:, 0:1]  # (M, n, d): residual at position 0 for each token
    rows2 = E[:, :n] + P[:, 2:3]
    const1 = E[:, op] + P[:, 1]  # (M, d)
    const3 = E[:, eq] + P[:, 3]

    W_Q, W_K, W_V, W_O = params["W_Q"], params["W_K"], params["W_V"], params["W_O"]
    q = torch.einsum("md,mhde->mhe", const3, W_Q) / math.sqrt(cfg.d_head)  # (M, H, e)
    kq = torch.einsum("mhde,mhe->mhd", W_K, q)  # score_i = resid_i . (W_K q): (M, H, d)
    score0 = torch.einsum("mnd,mhd->mhn", rows0, kq)  # (M, H, n)
    score2 = torch.einsum("mnd,mhd->mhn", rows2, kq)
    score1 = torch.einsum("md,mhd->mh", const1, kq)  # (M, H)
    score3 = torch.einsum("md,mhd->mh", const3, kq)
    value0 = torch.einsum("mnd,mhde->mhne", rows0, W_V) @ W_O  # (M, H, n, d)
    value2 = torch.einsum("mnd,mhde->mhne", rows2, W_V) @ W_O
    value1 = torch.einsum("md,mhde->mhe", const1, W_V).unsqueeze(2) @ W_O  # (M, H, 1, d)
    value3 = torch.einsum("md,mhde->mhe", const3, W_V).unsqueeze(2) @ W_O

    M, N = x.shape
    H = cfg.n_heads
    gx = x.unsqueeze(1).expand(M, H, N)
    gy = y.unsqueeze(1).expand(M, H, N)
    scores = torch.stack(
        [
            score0.gather(2, gx),
            score1.unsqueeze(2).expand(M, H, N),
            score2.gather(2, gy),
            score3.unsqueeze(2).expand(M, H, N),
        ],
        dim=-1,
    )  # (M, H, N, 4)
    attn = scores.softmax(dim=-1)
    d = cfg.d_model
    vx = value0.gather(2, gx.unsqueeze(-1).expand(M, H, N, d))  # (M, H, N, d)
    vy = value2.gather(2, gy.unsqueeze(-1).expand(M, H, N, d))
    mixed = (
        torch.einsum("mhn,mhnd->mnd", attn[..., 0], vx)
        + torch.einsum("mhn,mhnd->mnd", attn[..., 2], vy)
        + torch.einsum("mhn,mhd->mnd", attn[..., 1], value1.squeeze(2))
        + torch.einsum("mhn,mhd->mnd", attn[..., 3], value3.squeeze(2))
    )
    resid = const3.unsqueeze(1) + mixed  # (M, N, d)
    hidden = torch.relu(torch.baddbmm(params["b_in"].unsqueeze(1), resid, params["W_in"]))
    resid = resid + torch.baddbmm(params["b_out"].unsqueeze(1), hidden, params["W_out"])
    return resid @ params["W_U"]


def param_norm(params: dict[str, torch.Tensor]) -> torch.Tensor:
    """L2 norm of all parameters of each member, shape (M,)."""
    sq = sum(p.detach().double().pow(2).flatten(1).sum(1) for p in params.values())
    return sq.sqrt()


def flops_per_example(cfg: ModelConfig) -> dict[str, int]:
    """Multiply-add FLOPs (x2) per example for one forward pass: this model vs the all-positions one.

    Backward costs about twice the forward. Table building (per model, not per example) is left
    out: it is O(n * d * d) per step, small next to N examples once N >> d."""
    d, m, v, h, e = cfg.d_model, cfg.d_mlp, cfg.vocab, cfg.n_heads, cfg.d_head
    fast = 2 * (d * m + m * d + d * v) + 2 * h * 2 * d  # MLP, unembed, two gathered value rows/head
    full = N_POSITIONS * 2 * (3 * d * h * e + h * e * d + d * m + m * d + d * v) + 2 * h * N_POSITIONS**2 * e * 2
    return {"fast": fast, "reference": full}
