"""The ensemble AdamW against torch.optim.AdamW run on each member alone."""

import torch

from grokpipe.optim import EnsembleAdamW


def test_each_member_follows_torch_adamw_exactly():
    gen = torch.Generator().manual_seed(0)
    M = 3
    start = {"w": torch.randn(M, 5, 4, generator=gen, dtype=torch.float64),
             "b": torch.randn(M, 7, generator=gen, dtype=torch.float64)}
    target = {k: torch.randn(v.shape, generator=gen, dtype=torch.float64) for k, v in start.items()}
    lrs, wds = [1e-3, 3e-3, 1e-2], [0.1, 1.0, 2.0]

    def loss_of(params, i=None):
        return sum(((p - (target[k] if i is None else target[k][i])) ** 3).abs().sum() for k, p in params.items())

    ours = {k: v.clone().requires_grad_() for k, v in start.items()}
    opt = EnsembleAdamW(ours, lrs, wds, betas=(0.9, 0.98))
    refs = [{k: v[i].clone().requires_grad_() for k, v in start.items()} for i in range(M)]
    ref_opts = [torch.optim.AdamW(list(refs[i].values()), lr=lrs[i], weight_decay=wds[i], betas=(0.9, 0.98),
                                  foreach=False) for i in range(M)]
    for _ in range(100):
        opt.zero_grad()
        loss_of(ours).backward()
        opt.step()
        for i in range(M):
            ref_opts[i].zero_grad()
            loss_of(refs[i], i).backward()
            ref_opts[i].step()
    for i in range(M):
        for k in start:
            assert torch.allclose(ours[k][i], refs[i][k], rtol=1e-12, atol=1e-14), (i, k)
    assert not torch.allclose(ours["w"][0], start["w"][0])  # it actually moved


def test_state_round_trip_continues_identically():
    gen = torch.Generator().manual_seed(1)
    start = torch.randn(2, 6, generator=gen)
    a = {"w": start.clone().requires_grad_()}
    b = {"w": start.clone().requires_grad_()}
    opt_a = EnsembleAdamW(a, [1e-2, 1e-3], [1.0, 0.5], (0.9, 0.98))
    opt_b = EnsembleAdamW(b, [1e-2, 1e-3], [1.0, 0.5], (0.9, 0.98))
    for step in range(20):
        for params, opt in ((a, opt_a), (b, opt_b)):
            opt.zero_grad()
            (params["w"] ** 2).sum().backward()
            opt.step()
        if step == 9:  # rebuild b's optimiser from its saved state mid-way
            saved = opt_b.state_dict()
            opt_b = EnsembleAdamW(b, [1e-2, 1e-3], [1.0, 0.5], (0.9, 0.98))
            opt_b.load_state_dict(saved)
    assert torch.equal(a["w"], b["w"])


def test_members_left_out_of_a_step_keep_their_parameters_and_moments():
    """A run that stopped sits still: weight decay would shrink it even with a zero gradient."""
    gen = torch.Generator().manual_seed(2)
    params = {"w": torch.randn(3, 5, generator=gen).requires_grad_()}
    opt = EnsembleAdamW(params, [1e-2] * 3, [1.0] * 3, betas=(0.9, 0.98))
    for members in (None, (0, 2), (0, 2)):
        before = params["w"].detach().clone(), opt.exp_avg.clone(), opt.exp_avg_sq.clone()
        opt.zero_grad()
        params["w"].pow(2).sum().backward()
        opt.step(members)
        moved = [not torch.equal(params["w"][i], before[0][i]) for i in range(3)]
        assert moved == [True, members is None, True]
        assert torch.equal(opt.exp_avg[1], before[1][1]) == (members is not None)
        assert torch.equal(opt.exp_avg_sq[1], before[2][1]) == (members is not None)
