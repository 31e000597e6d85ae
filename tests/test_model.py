"""The fast last-position ensemble model against the obvious all-positions implementation."""

import math

import pytest
import torch

from grokpipe.model import PARAM_NAMES, Batch, ModelConfig, _Head, forward, init_params, loss, stack_params
from grokpipe.reference import reference_forward, tokens_for
from grokpipe.spec import BACKENDS


def _random_members(cfg, count):
    members = []
    for seed in range(count):
        params = init_params(cfg, seed, torch.float64)
        gen = torch.Generator().manual_seed(100 + seed)
        # perturb every parameter (biases start at zero) so no term of the forward is trivially zero
        members.append({k: v + 0.3 * torch.randn(v.shape, generator=gen, dtype=torch.float64) for k, v in params.items()})
    return members


def check_against_reference(ensemble: int, path: str, backend: str, device: str = "cpu") -> None:
    """``forward`` (logits, evaluation) or ``loss`` (its own backward, training) of the fast model
    against the reference on ``device``, in float64: logits, loss and every gradient to 1e-10."""
    cfg = ModelConfig(n=13, d_model=24, n_heads=3, d_head=8, d_mlp=40)
    members = [{k: v.to(device) for k, v in m.items()} for m in _random_members(cfg, ensemble)]
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, cfg.n, (ensemble, 50), generator=gen)
    y = torch.randint(0, cfg.n, (ensemble, 50), generator=gen)
    x[:, :3] = y[:, :3]  # x == y: an example mixes the same token row twice
    labels = torch.randint(0, cfg.vocab, (ensemble, 50), generator=gen)
    weight = torch.rand(ensemble, 50, generator=gen, dtype=torch.float64)
    x, y, labels, weight = (t.to(device) for t in (x, y, labels, weight))

    stacked = {k: v.clone().requires_grad_() for k, v in stack_params(members).items()}
    if path == "forward":
        logits = forward(stacked, cfg, Batch(cfg, x, y, backend))
        nll = torch.nn.functional.cross_entropy(logits.reshape(-1, cfg.vocab), labels.reshape(-1), reduction="none")
        total = (nll * weight.reshape(-1)).sum()
    else:
        total = loss(stacked, cfg, Batch(cfg, x, y, backend), labels, weight)
    total.backward()

    ref_total = 0
    for i, member in enumerate(members):
        ref_params = {k: v.clone().requires_grad_() for k, v in member.items()}
        ref_logits = reference_forward(ref_params, cfg, tokens_for(cfg, x[i], y[i]))[:, -1]
        nll = torch.nn.functional.cross_entropy(ref_logits, labels[i], reduction="none")
        (nll * weight[i]).sum().backward()
        ref_total += (nll * weight[i]).sum().item()
        if path == "forward":
            assert (logits[i] - ref_logits).abs().max() <= 1e-10 * ref_logits.abs().max()
        for name in PARAM_NAMES:
            ref_grad, grad = ref_params[name].grad, stacked[name].grad[i]
            assert ref_grad.abs().max() > 0, f"{name} gets no gradient in the reference"
            assert (grad - ref_grad).abs().max() <= 1e-10 * ref_grad.abs().max(), name
    assert abs(total.item() - ref_total) <= 1e-10 * abs(ref_total)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("ensemble", [1, 3])
@pytest.mark.parametrize("path", ["forward", "loss"])
def test_fast_model_matches_reference_logits_and_gradients(ensemble, path, backend):
    """Both backward backends: sparse kernels (the CPU's) and gather/scatter (a GPU's)."""
    check_against_reference(ensemble, path, backend)


def test_a_batch_reused_for_another_backward_leaves_the_first_gradients_intact():
    """The trainer reuses one Batch every step, and the token tables' gradient lives in a buffer
    the batch keeps (``Batch.token_gradient_buffer``): a second backward on the batch, with other
    parameters, must give exactly what a fresh batch gives, and change no gradient of the first."""
    cfg = ModelConfig(n=11, d_model=16, n_heads=2, d_head=8, d_mlp=24)
    gen = torch.Generator().manual_seed(5)
    x, y = torch.randint(0, cfg.n, (2, 40), generator=gen), torch.randint(0, cfg.n, (2, 40), generator=gen)
    labels = torch.randint(0, cfg.vocab, (2, 40), generator=gen)
    weight = torch.full((2, 40), 1 / 40, dtype=torch.float64)
    first, second = (stack_params(_random_members(cfg, 4)[i::2]) for i in range(2))

    def gradients(params, batch):
        leaves = {k: v.clone().requires_grad_() for k, v in params.items()}
        loss(leaves, cfg, batch, labels, weight).backward()
        return {k: v.grad for k, v in leaves.items()}

    shared = Batch(cfg, x, y, "sparse")
    from_shared = gradients(first, shared)
    kept = {k: v.clone() for k, v in from_shared.items()}
    again = gradients(second, shared)
    for name in PARAM_NAMES:
        assert torch.equal(from_shared[name], kept[name]), f"the second backward changed the first's {name}"
        assert torch.equal(from_shared[name], gradients(first, Batch(cfg, x, y, "sparse"))[name]), name
        assert torch.equal(again[name], gradients(second, Batch(cfg, x, y, "sparse"))[name]), name


@pytest.mark.parametrize("ensemble", [1, 3])
def test_token_major_order_gives_the_same_gradients_bit_for_bit(ensemble):
    """Large passes sum the token rows' gradient in token-major order (``TOKEN_MAJOR_BYTES``), for
    cache; each row's sum is the same, so every gradient must be identical to the head-major
    order's, which the reference test checks (small passes use that order)."""
    cfg = ModelConfig(n=11, d_model=16, n_heads=3, d_head=8, d_mlp=24)
    gen = torch.Generator().manual_seed(7)
    x, y = (torch.randint(0, cfg.n, (ensemble, 60), generator=gen) for _ in range(2))
    x[:, :4] = y[:, :4]  # x = y: one row, both slots' weights
    labels = torch.randint(0, cfg.vocab, (ensemble, 60), generator=gen)
    weight = torch.full((ensemble, 60), 1 / 60, dtype=torch.float32)
    params = {k: v.float() for k, v in stack_params(_random_members(cfg, ensemble)).items()}
    grads = {}
    for token_major in (False, True):
        batch = Batch(cfg, x, y, "sparse")
        batch.token_major = token_major
        leaves = {k: v.clone().requires_grad_() for k, v in params.items()}
        loss(leaves, cfg, batch, labels, weight).backward()
        grads[token_major] = leaves
    for name in PARAM_NAMES:
        assert torch.equal(grads[True][name].grad, grads[False][name].grad), name


def test_sparse_patterns_are_valid_csr_even_when_x_equals_y():
    """torch's CSR kernels assume each row's columns sorted and distinct; x = y must not break it."""
    cfg = ModelConfig(n=7, d_model=8, n_heads=3, d_head=4, d_mlp=16)
    x = torch.tensor([[0, 3, 3, 6, 2], [1, 1, 5, 0, 6]])
    y = torch.tensor([[0, 2, 3, 6, 5], [1, 4, 5, 2, 6]])  # x = y in six examples
    batch = Batch(cfg, x, y, "sparse")
    mask = batch.sampling_mask
    torch.sparse_csr_tensor(mask.crow_indices(), mask.col_indices(), mask.values(), mask.shape, check_invariants=True)
    crow, col, _ = batch.token_rows
    torch.sparse_csr_tensor(crow, col, torch.ones(len(col)), (crow.numel() - 1, x.numel()), check_invariants=True)
    examples, rows, inverse = batch.pairs
    assert len(rows) == x.numel() * 2 * cfg.n_heads - 6 * cfg.n_heads  # each x = y example: its heads' rows once
    assert torch.equal(rows[inverse], batch.index.reshape(-1))


def test_tiny_losses_keep_their_precision_in_float32():
    """Late in training the loss falls to 1e-7 and far below: ``loss`` in float32 must give
    the value and gradient that float64 gives, where a float32 log-softmax returns noise."""
    gen = torch.Generator().manual_seed(3)
    d_mlp, vocab, N = 16, 11, 40
    mixed = torch.randn(1, N, d_mlp + vocab, generator=gen, dtype=torch.float64)
    labels = torch.randint(0, vocab, (1, N), generator=gen)
    margin = torch.linspace(20, 40, N, dtype=torch.float64)  # losses from ~1e-8 down to ~1e-17
    mixed[0, torch.arange(N), d_mlp + labels[0]] += margin
    wrong = (labels[0, :4] + 1) % vocab
    mixed[0, torch.arange(4), d_mlp + wrong] += margin[:4] + 2.0  # four examples get another class on top
    W = 0.01 * torch.randn(1, d_mlp, vocab, generator=gen, dtype=torch.float64)
    confident = torch.ones(1, N, dtype=torch.float64)
    confident[0, :4] = 0.0

    def run(dtype, weight):
        m = mixed.to(dtype).detach().requires_grad_()
        value = _Head.apply(m, W.to(dtype), labels, weight, d_mlp)
        value.backward()
        return value.item(), m.grad.double()

    exact, exact_grad = run(torch.float64, confident)
    value, _ = run(torch.float32, confident)
    assert exact < 1e-7 and abs(value - exact) <= 1e-4 * exact

    _, exact_grad = run(torch.float64, torch.ones(1, N, dtype=torch.float64))
    _, grad = run(torch.float32, torch.ones(1, N, dtype=torch.float64))
    d_logits, exact_d_logits = grad[..., d_mlp:], exact_grad[..., d_mlp:]
    # each, however small; to 1e-4, as float32 logits of ~40 are rounded by ~4e-6 before exp()
    assert ((d_logits - exact_d_logits).abs() <= 1e-4 * exact_d_logits.abs()).all()
    scale = exact_grad[..., :d_mlp].abs().amax(-1, keepdim=True)  # through W: a sum of mixed signs
    assert ((grad[..., :d_mlp] - exact_grad[..., :d_mlp]).abs() <= 1e-5 * scale).all()

    logits = (mixed[..., d_mlp:] + torch.relu(mixed[..., :d_mlp]) @ W).float()  # the naive float32 way
    naive = -(logits.log_softmax(-1).gather(-1, labels.unsqueeze(-1)).squeeze(-1).double() * confident).sum().item()
    assert abs(naive - exact) > 0.5 * exact  # which this test would catch


def test_classes_far_below_the_top_logit_keep_loss_and_gradients_exact():
    """A grokked model puts most logits 90 to 800 below the top one, where float32's exp()
    underflows and x86's exp() is ~60x slower; the head floors exp's argument just above
    ln(smallest normal float). Loss and gradients must still be float64's: the floor's terms
    (at most vocab x 1.2e-38 in a sum) may not show, and those classes' gradients stay below 1e-37."""
    gen = torch.Generator().manual_seed(4)
    d_mlp, vocab, N = 8, 13, 30
    mixed = torch.zeros(1, N, d_mlp + vocab, dtype=torch.float64)
    labels = torch.randint(0, vocab, (1, N), generator=gen)
    gaps = -torch.linspace(10, 250, vocab, dtype=torch.float64)[torch.randperm(vocab, generator=gen)]
    mixed[0, :, d_mlp:] = gaps  # every example: classes from 10 to 250 below ...
    mixed[0, torch.arange(N), d_mlp + labels[0]] = 0.0  # ... its label, the top logit
    mixed[0, :5, d_mlp + (labels[0, :5] + 1) % vocab] = 1.0  # five examples get a wrong class on top
    W = torch.zeros(1, d_mlp, vocab, dtype=torch.float64)
    weight = torch.ones(1, N, dtype=torch.float64)

    def run(dtype):
        m = mixed.to(dtype).detach().requires_grad_()
        value = _Head.apply(m, W.to(dtype), labels, weight, d_mlp)
        value.backward()
        return value.item(), m.grad[..., d_mlp:].double()

    exact, exact_grad = run(torch.float64)
    value, grad = run(torch.float32)
    assert abs(value - exact) <= 1e-6 * exact
    shifted = mixed[..., d_mlp:] - mixed[..., d_mlp:].amax(-1, keepdim=True)
    underflows = shifted < math.log(torch.finfo(torch.float32).tiny)
    assert underflows.sum() > N * 3  # the case this test is about
    assert (grad[underflows].abs() <= 1e-37).all()
    kept = ~underflows
    assert ((grad[kept] - exact_grad[kept]).abs() <= 1e-5 * exact_grad[kept].abs() + 1e-30).all()


def test_initialisation_depends_only_on_the_seed():
    cfg = ModelConfig(n=7, d_model=8, n_heads=2, d_head=4, d_mlp=16)
    a, b = init_params(cfg, 5), init_params(cfg, 5)
    c = init_params(cfg, 6)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["embed"], c["embed"])
