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

So the heads' output at the last position is a softmax-weighted sum of rows of small tables,
and with W_V, W_O and the MLP's input and the unembedding folded into those tables, an example
costs a mix of table rows and one matmul (d_mlp -> vocab): see :class:`_Tables`. The model is
three autograd functions with written-out backwards (:class:`_Tables`, :class:`_TableMix`,
:class:`_Head`); ``tests/test_model.py`` checks logits, loss and every gradient against the
obvious all-positions implementation.
"""

from __future__ import annotations

import functools
import math
import warnings

import torch

from .spec import DEFAULT_BACKEND, ModelConfig
from .tasks import N_POSITIONS

PARAM_NAMES = ("embed", "pos", "W_Q", "W_K", "W_V", "W_O", "W_in", "b_in", "W_out", "b_out", "W_U")
FIXED_SLOTS = 4  # rows every example mixes: P0 and P2 (the x and y slots' positions), E[op] + P1, E[=] + P3
# The token rows' gradient sums each example's gradient row into 2 H table rows. When a pass holds
# one model and its gradient (float32) is larger than this, beyond one core's L2 cache (2 MB on the
# project's Intel machine), the sum runs in token-major row order (Batch.token_rows): at D = 3830,
# paper shape, the sparse product took 0.82 ms instead of 1.43 (2 threads, docs/speed.md). Below
# it the gradient stays in cache either way; with several models the result must be copied back
# into the tables' layout, which cost as much as it saved (quick shape, 2 x 1400: equal; 4 x 1000:
# 2-3% slower). Every bit is the same in both orders, given MKL's reproducible mode (on an AMD
# EPYC without it, not: docs/speed.md, "Two CPUs").
TOKEN_MAJOR_BYTES = 2 << 20


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


class Batch:
    """Examples ``x``, ``y`` of shape (M, N), one row per member, and the table rows each example
    mixes (see :class:`_TableMix`).

    The sparse structures of the backward pass depend only on the examples, not on the
    parameters, so the trainer builds one Batch per shard and reuses it every step."""

    def __init__(self, cfg: ModelConfig, x: torch.Tensor, y: torch.Tensor, backend: str = DEFAULT_BACKEND):
        self.cfg, self.x, self.y = cfg, x, y
        self.backend = backend
        M, N = x.shape
        n, H = cfg.n, cfg.n_heads
        rows = n + FIXED_SLOTS  # per model and head: the token rows, then the fixed rows (_Tables)
        self.n_rows = M * H * rows
        head = torch.arange(H, device=x.device) * rows
        member = (torch.arange(M, device=x.device) * H * rows).view(M, 1, 1)
        # table row of (slot, head) for the x and y slots
        self.index = torch.cat([head + x.unsqueeze(-1), head + y.unsqueeze(-1)], -1) + member  # (M, N, 2H)
        # row of the x and y slots' tokens among the (M, n + 4) rows whose attention scores _Tables computes
        self.score_rows = (torch.stack([x, y], -1) + member // H).reshape(-1)
        self.slot_positions = torch.tensor([0, 2, 1, 3], device=x.device)  # the position each slot reads
        self.token_major = M == 1 and N * (cfg.d_mlp + cfg.vocab) * 4 > TOKEN_MAJOR_BYTES
        self._masks: dict[torch.dtype, torch.Tensor] = {}
        self._token_gradients: dict[torch.dtype, torch.Tensor] = {}

    @functools.cached_property
    def pairs(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The distinct (example, token row) pairs, sorted by example then row, and for each of the
        M N K (example, slot, head) entries the pair it belongs to. When x = y an example mixes a
        row twice (once per slot); CSR kernels assume each row's columns sorted and distinct, so
        the sparse products work on distinct pairs: the weights' gradient is the same for both
        slots, and the row's gradient takes the two weights summed (tests/test_model.py checks
        torch's invariants and the gradients)."""
        M, N, K = self.index.shape
        example = torch.arange(M * N, device=self.index.device).repeat_interleave(K)
        keys = example * self.n_rows + self.index.reshape(-1)
        unique, inverse = torch.unique(keys, sorted=True, return_inverse=True)
        return torch.div(unique, self.n_rows, rounding_mode="floor"), unique % self.n_rows, inverse

    @functools.cached_property
    def sampling_mask(self) -> torch.Tensor:
        """CSR pattern (M*N, table rows) of the token rows each example mixes: the weights'
        gradient is a product of two dense matrices sampled there (SDDMM)."""
        examples, rows, _ = self.pairs
        M, N, _ = self.index.shape
        crow = torch.zeros(M * N + 1, dtype=torch.long, device=rows.device)
        crow[1:] = torch.bincount(examples, minlength=M * N).cumsum(0)
        values = torch.ones(len(rows), dtype=torch.float64, device=rows.device)
        return _csr(crow, rows, values, (M * N, self.n_rows))

    def sampling_mask_in(self, dtype: torch.dtype) -> torch.Tensor:
        """:attr:`sampling_mask` with values of ``dtype``, converted once per dtype (a conversion
        every backward cost ~10% of the SDDMM at the quick scale's sizes)."""
        if dtype not in self._masks:
            self._masks[dtype] = self.sampling_mask.to(dtype)
        return self._masks[dtype]

    def token_gradient_buffer(self, like: torch.Tensor) -> torch.Tensor:
        """A (table rows, width) buffer that :class:`_TableMix`'s backward writes the token rows'
        gradient into, every row afresh, and returns; :class:`_Tables`' backward then adds the
        fixed rows' gradient to it in place. One per batch and dtype, reused every step: written
        into fresh memory, the sparse product took twice as long (it stays in cache when reused)."""
        if like.dtype not in self._token_gradients:
            self._token_gradients[like.dtype] = like.new_empty(self.n_rows, self.cfg.d_mlp + self.cfg.vocab)
        return self._token_gradients[like.dtype]

    @functools.cached_property
    def token_rows(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The transposed pattern as CSR (crow, col, order of the pairs): a token row's gradient is
        the weighted sum of the examples that mix it.

        With :attr:`token_major`, its rows are numbered (member, token, head), while the tables'
        are (member, head, token): the heads of one token sum the same examples' gradients, so the
        sparse product reads each example's gradient row from cache, not memory, after the first
        head. :class:`_TableMix` returns that result as a transposed view of the tables' shape;
        each row's sum, and so every bit, is the same in both orders (TOKEN_MAJOR_BYTES)."""
        examples, rows, _ = self.pairs
        if self.token_major:
            H, per_head = self.cfg.n_heads, self.cfg.n + FIXED_SLOTS
            member, head, token = rows // (H * per_head), rows // per_head % H, rows % per_head
            rows = (member * per_head + token) * H + head
        order = rows.argsort(stable=True)  # pairs are sorted by example: within a row, examples stay sorted
        crow = torch.zeros(self.n_rows + 1, dtype=torch.long, device=rows.device)
        crow[1:] = torch.bincount(rows, minlength=self.n_rows).cumsum(0)
        return crow, examples[order], order


def _csr(crow, col, values, size) -> torch.Tensor:
    with warnings.catch_warnings():  # "sparse CSR support is in beta"
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(crow, col, values, size, check_invariants=False)


class _TableMix(torch.autograd.Function):
    """``out[b] = sum over slots s and heads h of weights[b, s, h] * (token row + fixed row)``:
    the x and y slots add their token's row of ``tokens`` (M, H, n + 4, width: :class:`_Tables`'
    tables, of which examples index the token rows), looked up per example; every slot adds its
    fixed row ``fixed`` (M, slot * H, width).

    Forward: ``embedding_bag`` over the token rows plus one matmul over the fixed rows. The
    backward is written out (autograd's for per-sample weights is slow on the CPU): with the
    "sparse" backend the weights' gradient is a sampled dense product (SDDMM) and the token rows'
    a sparse-dense product with the transposed pattern; with "gather", the rows each example
    mixes are gathered (a batched dot product gives the weights' gradient) and the token rows'
    gradient is a scatter-add (``index_add_``)."""

    @staticmethod
    def forward(ctx, weights, tokens, fixed, batch: Batch):
        M, N, K = batch.index.shape
        width = tokens.shape[-1]
        out = torch.nn.functional.embedding_bag(
            batch.index.view(-1, K), tokens.reshape(-1, width), mode="sum",
            per_sample_weights=weights[:, :, :2].reshape(-1, K)).view(M, N, width)
        out.baddbmm_(weights.reshape(M, N, -1), fixed)
        ctx.save_for_backward(weights, tokens, fixed)
        ctx.batch = batch
        return out

    @staticmethod
    def backward(ctx, grad):
        weights, tokens, fixed = ctx.saved_tensors
        batch = ctx.batch
        M, N, K = batch.index.shape
        grad = grad.contiguous()
        flat, flat_tokens = grad.view(M * N, -1), tokens.reshape(-1, tokens.shape[-1])
        d_weights = d_tokens = d_fixed = None
        gathered = flat_tokens[batch.index.view(M * N, K)] if batch.backend == "gather" else None  # (M N, K, width)
        if ctx.needs_input_grad[0]:
            d_weights = torch.bmm(grad, fixed.transpose(1, 2)).view(weights.shape)
            if gathered is not None:
                token = torch.bmm(gathered, flat.unsqueeze(-1)).view(M, N, 2, -1)
            else:
                per_pair = torch.sparse.sampled_addmm(batch.sampling_mask_in(grad.dtype), flat, flat_tokens.T, beta=0)
                token = per_pair.values()[batch.pairs[2]].view(M, N, 2, -1)
            d_weights[:, :, :2] += token
        if ctx.needs_input_grad[1]:
            token_weights = weights[:, :, :2].reshape(-1)
            if gathered is not None:
                contributions = token_weights.view(M * N, K, 1) * flat.unsqueeze(1)
                d_tokens = torch.zeros_like(flat_tokens).index_add_(0, batch.index.reshape(-1),
                                                                    contributions.reshape(M * N * K, -1)).view(tokens.shape)
            else:
                crow, col, order = batch.token_rows
                per_pair = torch.zeros(len(col), dtype=token_weights.dtype, device=token_weights.device)
                per_pair.index_add_(0, batch.pairs[2], token_weights)  # x = y: both slots' weights on one row
                by_row = batch.token_gradient_buffer(flat).addmm_(  # beta = 0: every row written afresh
                    _csr(crow, col, per_pair[order], (batch.n_rows, M * N)), flat, beta=0)
                _, H, rows, width = tokens.shape
                d_tokens = (by_row.view(M, rows, H, width).transpose(1, 2) if batch.token_major
                            else by_row.view(tokens.shape))
        if ctx.needs_input_grad[2]:
            d_fixed = torch.bmm(weights.reshape(M, N, -1).transpose(1, 2), grad)
        return d_weights, d_tokens, d_fixed, None


class _Tables(torch.autograd.Function):
    """Everything per model rather than per example, and the attention: the tables that
    :class:`_TableMix` mixes, each example's attention weights, and ``W_out W_U``.

    Per model, with ``r0 = E[=] + P3``, ``a_hi`` head h's attention on position i and ``v_hi``
    the value it reads there::

        resid  = r0 + sum_hi a_hi v_hi W_O[h]
        hidden = relu(resid W_in + b_in)   = relu(sum_hi a_hi v_hi W_O[h] W_in + (r0 W_in + b_in))
        logits = (resid + hidden W_out + b_out) W_U
               = sum_hi a_hi v_hi W_O[h] W_U + hidden (W_out W_U) + (r0 + b_out) W_U

    A value is a residual row times W_V, and residual rows are sums of an embedding and a
    position: ``E[x] + P0``, ``E[op] + P1``, ``E[y] + P2``, ``E[=] + P3``. So one table per head,
    rows ``r W_V[h] W_O[h] [W_in | W_U]`` for r in (the n token embeddings, P0, P2, E[op] + P1,
    E[=] + P3), gives everything: an example mixes its x's and y's token rows and the 4 fixed
    rows with its attention weights, then one matmul (d_mlp -> vocab). Attention scores
    decompose the same way: ``s = r . kq`` with ``kq = W_K q`` and ``q = r0 W_Q / sqrt(d_head)``.

    Outputs: ``tables`` (M, H, n + 4, d_mlp + vocab), every row of every head (the token rows
    first); ``fixed`` (M, 4 H, d_mlp + vocab), the fixed rows by (slot, head), each carrying
    ``[b_in + r0 W_in | (r0 + b_out) W_U] / H`` (each head's attention sums to one over the
    slots, so the rows add that bias once); ``attention`` (M, N, slot, H); ``W_out W_U``.

    The backward is written out: these are ~40 small tensors a step whose autograd graph (~150
    nodes) cost more than the arithmetic at the quick scale's sizes (docs/speed.md)."""

    @staticmethod
    def forward(ctx, E, P, W_Q, W_K, W_V, W_O, W_in, b_in, W_out, b_out, W_U, cfg: ModelConfig, batch: "Batch"):
        n, op, eq = cfg.n, cfg.n, cfg.n + 1
        M, H, e = E.shape[0], cfg.n_heads, cfg.d_head
        d, width = E.shape[-1], cfg.d_mlp + cfg.vocab
        fixed = P.index_select(1, batch.slot_positions)  # (M, 4, d) in slot order: P0, P2, P1, P3
        fixed[:, 2:] += E[:, op:eq + 1]
        r0 = fixed[:, 3]
        q = (r0.view(M, 1, d, 1) * W_Q).sum(2) / math.sqrt(e)  # (M, H, e)
        kq = torch.bmm(W_K.reshape(M * H, d, e), q.view(M * H, e, 1)).view(M, H, d)  # a row's score on head h: row . kq[h]
        rows = torch.cat([E[:, :n], fixed], 1)  # (M, n + 4, d)
        keys_values = torch.cat([kq.transpose(1, 2), W_V.permute(0, 2, 1, 3).reshape(M, d, H * e)], -1)
        scores_values = rows @ keys_values  # (M, n + 4, H + H e)
        row_scores = scores_values[..., :H]
        values = scores_values[..., H:].reshape(M, n + FIXED_SLOTS, H, e).transpose(1, 2)  # (M, H, n + 4, e)
        X = torch.cat([W_in, W_U], -1)  # (M, d, width)
        W_OX = (W_O.reshape(M, H * e, d) @ X).view(M, H, e, width)
        tables = values @ W_OX  # (M, H, n + 4, width)
        bias = torch.cat([torch.baddbmm(b_in.unsqueeze(1), r0.unsqueeze(1), W_in),
                          (r0 + b_out).unsqueeze(1) @ W_U], -1)  # (M, 1, width)
        fixed_rows = (tables[:, :, n:].transpose(1, 2) + (bias / H).unsqueeze(1)).reshape(M, FIXED_SLOTS * H, width)

        N = batch.x.shape[1]
        fixed_scores = row_scores[:, n:]  # (M, 4, H)
        scores = fixed_scores.unsqueeze(1).expand(M, N, FIXED_SLOTS, H).clone()  # (M, N, slot, H)
        scores[:, :, :2] += row_scores.reshape(-1, H).index_select(0, batch.score_rows).view(M, N, 2, H)
        attention = scores.softmax(2)
        ctx.save_for_backward(W_Q, W_K, W_O, W_in, W_out, b_out, W_U, r0, q, rows, keys_values, values, X, W_OX,
                              attention)
        ctx.cfg, ctx.batch = cfg, batch
        return tables, fixed_rows, attention, W_out @ W_U

    @staticmethod
    def backward(ctx, d_tables, d_fixed_rows, d_attention, d_W_out_U):
        W_Q, W_K, W_O, W_in, W_out, b_out, W_U, r0, q, rows, keys_values, values, X, W_OX, attention = ctx.saved_tensors
        cfg, batch = ctx.cfg, ctx.batch
        n, H, e, m, width = cfg.n, cfg.n_heads, cfg.d_head, cfg.d_mlp, cfg.d_mlp + cfg.vocab
        M, d = r0.shape
        # attention: softmax over the slots, then the scores' rows
        d_scores = attention * (d_attention - (attention * d_attention).sum(2, keepdim=True))  # (M, N, slot, H)
        d_row_scores = r0.new_zeros(M * (n + FIXED_SLOTS), H)
        d_row_scores.index_add_(0, batch.score_rows, d_scores[:, :, :2].reshape(-1, H))
        d_row_scores = d_row_scores.view(M, n + FIXED_SLOTS, H)
        d_row_scores[:, n:] += d_scores.sum(1)

        # the tables, and the bias the fixed rows carry
        d_fixed_by_slot = d_fixed_rows.view(M, FIXED_SLOTS, H, width)
        # d_tables is _TableMix's own (Batch.token_gradient_buffer, or a fresh scatter-add): added to in
        # place; with token-major rows (one model: Batch.token_rows) a strided view, which the two
        # products below read as it is
        d_tables[:, :, n:] += d_fixed_by_slot.transpose(1, 2)
        d_bias = d_fixed_by_slot.sum((1, 2)) / H  # (M, width)
        d_W_OX = values.transpose(-1, -2) @ d_tables  # (M, H, e, width)
        d_values = d_tables @ W_OX.transpose(-1, -2)  # (M, H, n + 4, e)
        d_W_OX = d_W_OX.reshape(M, H * e, width)
        d_X = W_O.reshape(M, H * e, d).transpose(1, 2) @ d_W_OX  # (M, d, width)
        d_W_O = (d_W_OX @ X.transpose(1, 2)).view(W_O.shape)
        d_b_in, d_bias_U = d_bias[:, :m], d_bias[:, m:]
        d_b_out = (d_bias_U.unsqueeze(1) @ W_U.transpose(1, 2)).squeeze(1)  # (M, d)
        d_r0 = torch.baddbmm(d_b_out.unsqueeze(1), d_b_in.unsqueeze(1), W_in.transpose(1, 2)).squeeze(1)
        d_X[:, :, :m] += r0.unsqueeze(2) * d_b_in.unsqueeze(1)
        d_X[:, :, m:] += (r0 + b_out).unsqueeze(2) * d_bias_U.unsqueeze(1) + W_out.transpose(1, 2) @ d_W_out_U
        d_W_out = d_W_out_U @ W_U.transpose(1, 2)

        # scores and values from the rows
        d_scores_values = torch.cat([d_row_scores, d_values.transpose(1, 2).reshape(M, n + FIXED_SLOTS, H * e)], -1)
        d_rows = d_scores_values @ keys_values.transpose(1, 2)  # (M, n + 4, d)
        d_keys_values = rows.transpose(1, 2) @ d_scores_values  # (M, d, H + H e)
        d_kq = d_keys_values[:, :, :H].transpose(1, 2)  # (M, H, d)
        d_W_V = d_keys_values[:, :, H:].reshape(M, d, H, e).transpose(1, 2)
        d_W_K = d_kq.unsqueeze(-1) * q.unsqueeze(2)  # kq[h] = W_K[h] q[h]
        d_q = torch.bmm(d_kq.reshape(M * H, 1, d), W_K.reshape(M * H, d, e)).view(M, H, e) / math.sqrt(e)
        d_W_Q = r0.view(M, 1, d, 1) * d_q.unsqueeze(2)  # q[h] = r0 W_Q[h] / sqrt(e)
        d_r0 += (W_Q * d_q.unsqueeze(2)).sum((1, 3))

        d_fixed = d_rows[:, n:]
        d_fixed[:, 3] += d_r0
        d_E = torch.cat([d_rows[:, :n], d_fixed[:, 2:]], 1)  # token rows, then E[op] and E[=] (slots 2, 3)
        d_P = d_fixed.index_select(1, batch.slot_positions)  # slots hold P0, P2, P1, P3: the order is its own inverse
        return (d_E, d_P, d_W_Q, d_W_K, d_W_V, d_W_O, d_X[:, :, :m], d_b_in, d_W_out, d_b_out, d_X[:, :, m:],
                None, None)


def _mix(params: dict[str, torch.Tensor], cfg: ModelConfig, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Everything up to the MLP's ReLU: ``[pre-activations | direct logits]`` (M, N, d_mlp + vocab)
    and ``W_out W_U``; the logits at the last position are ``direct logits + relu(pre) W_out W_U``
    (:class:`_Tables`, :class:`_TableMix`)."""
    tables, fixed_rows, attention, W_out_U = _Tables.apply(*(params[k] for k in PARAM_NAMES), cfg, batch)
    return _TableMix.apply(attention, tables, fixed_rows, batch), W_out_U


def _hidden_and_logits(mixed: torch.Tensor, W_out_U: torch.Tensor, d_mlp: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The MLP's hidden layer and the logits, from :func:`_mix`'s output."""
    pre, direct = mixed.split([d_mlp, mixed.shape[-1] - d_mlp], -1)
    hidden = torch.relu(pre)
    return hidden, torch.baddbmm(direct, hidden, W_out_U)


def forward(params: dict[str, torch.Tensor], cfg: ModelConfig, batch: Batch) -> torch.Tensor:
    """Logits at the last position, shape (M, N, vocab), for the examples of ``batch``."""
    return _hidden_and_logits(*_mix(params, cfg, batch), cfg.d_mlp)[1]


def loss(params: dict[str, torch.Tensor], cfg: ModelConfig, batch: Batch, labels: torch.Tensor,
         weight: torch.Tensor) -> torch.Tensor:
    """``sum(weight * cross-entropy)`` over the batch (float64), the training loss.

    Its value equals computing the cross-entropy of :func:`forward`'s logits; the MLP's output
    side and the loss are one autograd node (:class:`_Head`), which writes the gradient of the
    mixed rows in one buffer instead of autograd's chain of slices, copies and casts."""
    mixed, W_out_U = _mix(params, cfg, batch)
    return _Head.apply(mixed, W_out_U, labels, weight, cfg.d_mlp)


# just above ln(smallest normal float), so that exp() of it is normal: fast, and no subnormal to flush
_EXP_FLOOR = {dtype: math.log(torch.finfo(dtype).tiny) + 0.01 for dtype in (torch.float32, torch.float64)}


class _Head(torch.autograd.Function):
    """ReLU, ``W_out W_U`` and the weighted cross-entropy, written out for speed and accuracy.

    The cross-entropy is computed without forming ``1 - p`` for the most likely class, so losses
    down to 1e-30 and their gradients keep full relative precision in float32 (plain float32
    ``log_softmax`` loses them below ~1e-7); the sum over examples is float64."""

    @staticmethod
    def forward(ctx, mixed, W_out_U, labels, weight, d_mlp):
        hidden, logits = _hidden_and_logits(mixed, W_out_U, d_mlp)
        top, best = logits.max(-1, keepdim=True)
        # exp(l_j - max), the max left out, floored at the smallest normal float: below ln(1.2e-38)
        # x86's vectorised exp() takes a ~60x slower path (subnormal results), and grokked models put
        # most logits there (55-80% of them, 90 to 800 below the max). The floor adds at most vocab x
        # 1.2e-38 to the sum; the gradients it gives are below 1e-38 times the example's weight.
        others = (logits - top).clamp_(min=_EXP_FLOOR[logits.dtype]).exp_().scatter_(-1, best, 0.0)
        rest = others.sum(-1, keepdim=True)  # softmax(max) = 1 / (1 + rest), exactly
        nll = (top - logits.gather(-1, labels.unsqueeze(-1))).double() + torch.log1p(rest.double())
        ctx.save_for_backward(hidden, W_out_U, others, rest, best, labels, weight)
        return (nll.squeeze(-1) * weight).sum()

    @staticmethod
    def backward(ctx, grad):
        hidden, W_out_U, others, rest, best, labels, weight = ctx.saved_tensors
        d_mlp, vocab = hidden.shape[-1], others.shape[-1]
        scale = (weight * grad).unsqueeze(-1).to(others.dtype) / (1 + rest)
        d_mixed = torch.empty(*hidden.shape[:-1], d_mlp + vocab, dtype=hidden.dtype, device=hidden.device)
        d_pre, d_logits = d_mixed.split([d_mlp, vocab], -1)
        right = (labels.unsqueeze(-1) == best)
        # d loss / d logit_j = softmax_j - [j = label]; at the max, 1 - softmax = rest / (1 + rest)
        torch.mul(others, scale, out=d_logits)
        d_logits.scatter_(-1, best, torch.where(right, -rest, 1.0) * scale)
        d_logits.scatter_add_(-1, labels.unsqueeze(-1), torch.where(right, 0.0, -(1 + rest)) * scale)
        # (d_logits^T hidden)^T: this operand order runs ~15% faster than hidden^T d_logits in MKL
        d_W = torch.bmm(d_logits.transpose(1, 2), hidden).transpose(1, 2) if ctx.needs_input_grad[1] else None
        torch.ops.aten.threshold_backward.grad_input(
            torch.bmm(d_logits, W_out_U.transpose(1, 2)), hidden, 0, grad_input=d_pre)
        return d_mixed, d_W, None, None, None


def param_norm(params: dict[str, torch.Tensor]) -> torch.Tensor:
    """L2 norm of all parameters of each member, shape (M,)."""
    sq = sum(p.detach().double().pow(2).flatten(1).sum(1) for p in params.values())
    return sq.sqrt()


def flops_per_example(cfg: ModelConfig) -> dict[str, int]:
    """FLOPs (2 per multiply-add) per example for one forward pass: this model vs the all-positions one.

    Backward costs twice the forward. This model's per-example work: the x and y slots' token
    rows and the 4 H fixed rows mixed with the attention weights (width d_mlp + vocab), then
    one matmul (d_mlp -> vocab). Table building is per model, not per example
    (O((n + 4) * H * d_head * (d_mlp + vocab)) a step), and is left out: small next to N
    examples once N >> n."""
    d, m, v, h, e = cfg.d_model, cfg.d_mlp, cfg.vocab, cfg.n_heads, cfg.d_head
    fast = 2 * (6 * h * (m + v) + m * v)
    full = N_POSITIONS * 2 * (3 * d * h * e + h * e * d + d * m + m * d + d * v) + 2 * h * N_POSITIONS**2 * e * 2
    return {"fast": fast, "reference": full}
