"""The fast last-position ensemble model against the obvious all-positions implementation."""

import pytest
import torch

from grokpipe.model import PARAM_NAMES, ModelConfig, forward, init_params, stack_params
from grokpipe.reference import reference_forward, tokens_for


def _random_members(cfg, count):
    members = []
    for seed in range(count):
        params = init_params(cfg, seed, torch.float64)
        gen = torch.Generator().manual_seed(100 + seed)
        # perturb every parameter (biases start at zero) so no term of the forward is trivially zero
        members.append({k: v + 0.3 * torch.randn(v.shape, generator=gen, dtype=torch.float64) for k, v in params.items()})
    return members


@pytest.mark.parametrize("ensemble", [1, 3])
def test_fast_model_matches_reference_logits_and_gradients(ensemble):
    cfg = ModelConfig(n=13, d_model=24, n_heads=3, d_head=8, d_mlp=40)
    members = _random_members(cfg, ensemble)
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, cfg.n, (ensemble, 50), generator=gen)
    y = torch.randint(0, cfg.n, (ensemble, 50), generator=gen)
    labels = torch.randint(0, cfg.vocab, (ensemble, 50), generator=gen)

    stacked = {k: v.clone().requires_grad_() for k, v in stack_params(members).items()}
    logits = forward(stacked, cfg, x, y)
    torch.nn.functional.cross_entropy(logits.reshape(-1, cfg.vocab), labels.reshape(-1), reduction="sum").backward()

    for i, member in enumerate(members):
        ref_params = {k: v.clone().requires_grad_() for k, v in member.items()}
        ref_logits = reference_forward(ref_params, cfg, tokens_for(cfg, x[i], y[i]))[:, -1]
        torch.nn.functional.cross_entropy(ref_logits, labels[i], reduction="sum").backward()
        scale = ref_logits.abs().max()
        assert (logits[i] - ref_logits).abs().max() <= 1e-10 * scale
        for name in PARAM_NAMES:
            ref_grad, grad = ref_params[name].grad, stacked[name].grad[i]
            assert ref_grad.abs().max() > 0, f"{name} gets no gradient in the reference"
            assert (grad - ref_grad).abs().max() <= 1e-10 * ref_grad.abs().max(), name


def test_initialisation_depends_only_on_the_seed():
    cfg = ModelConfig(n=7, d_model=8, n_heads=2, d_head=4, d_mlp=16)
    a, b = init_params(cfg, 5), init_params(cfg, 5)
    c = init_params(cfg, 6)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["embed"], c["embed"])
