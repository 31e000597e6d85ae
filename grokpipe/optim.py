"""AdamW over an ensemble, with a learning rate and a weight decay per member.

torch's AdamW takes one lr and one weight decay per parameter group, but an ensemble packs all
members into one tensor per parameter. Here every parameter of every member lives in one (M,
total) buffer, and torch's fused AdamW kernel (the one ``torch.optim.AdamW(fused=True)`` runs)
updates each group of members that share an lr and a weight decay, one call per group instead of
11 elementwise passes per parameter: at the quick scale's sizes the update had cost up to 10% of
a step. ``tests/test_optim.py`` checks each member's trajectory against ``torch.optim.AdamW`` run
on that member alone.
"""

from __future__ import annotations

import torch


class EnsembleAdamW:
    """AdamW over an ensemble's parameters, packed into one buffer.

    The parameters are copied into one (M, total) buffer and ``params``' tensors are replaced, in
    the dict given, by leaf tensors that are slices of it: callers keep using that dict, and the
    update runs on whole rows of the buffer (a member's parameters, contiguous)."""

    def __init__(
        self,
        params: dict[str, torch.Tensor],
        lr: torch.Tensor | list[float],
        weight_decay: torch.Tensor | list[float],
        betas: tuple[float, float],
        eps: float = 1e-8,
    ):
        first = next(iter(params.values()))
        members = first.shape[0]
        self.flat = torch.cat([p.detach().reshape(members, -1) for p in params.values()], 1)
        self._slices, start = {}, 0
        for name, p in params.items():
            self._slices[name] = (slice(start, start + p[0].numel()), p.shape)
            start += p[0].numel()
            params[name] = self._view(self.flat, name).detach().requires_grad_(p.requires_grad)
        self.params = params
        self.betas = betas
        self.eps = eps
        self.step_count = 0
        self.exp_avg = torch.zeros_like(self.flat)
        self.exp_avg_sq = torch.zeros_like(self.flat)
        # the fused kernel takes one lr and weight decay per call: members grouped by theirs
        self._groups: dict[tuple[float, float], list[int]] = {}
        hypers = zip(torch.as_tensor(lr, dtype=torch.float64).tolist(),
                     torch.as_tensor(weight_decay, dtype=torch.float64).tolist())
        for member, hyper in enumerate(hypers):
            self._groups.setdefault(hyper, []).append(member)

    def _view(self, buffer: torch.Tensor, name: str) -> torch.Tensor:
        """Parameter ``name``'s part of a packed (M, total) buffer, in the parameter's shape."""
        columns, shape = self._slices[name]
        return buffer[:, columns].view(shape)

    def _gradient(self) -> torch.Tensor:
        """The parameters' gradients packed like ``flat`` (zero where a parameter has none)."""
        return torch.cat([torch.zeros_like(p).flatten(1) if p.grad is None else p.grad.flatten(1)
                          for p in self.params.values()], 1)

    @torch.no_grad()
    def step(self, members: tuple[int, ...] | None = None) -> None:
        """torch's fused AdamW kernel (what ``torch.optim.AdamW(fused=True)`` runs: one pass over
        memory instead of one per stage), on each group of members sharing an lr and weight decay.

        Only ``members`` (every member by default) are updated: a member left out keeps its
        parameters and moments exactly (weight decay would shrink it even with a zero gradient)."""
        self.step_count += 1
        grad = self._gradient()
        step = torch.tensor(float(self.step_count), device=self.flat.device)
        beta1, beta2 = self.betas
        for (lr, weight_decay), group in self._groups.items():
            rows = group if members is None else [i for i in group if i in members]
            if not rows:
                continue
            torch._fused_adamw_([self.flat[i] for i in rows], [grad[i] for i in rows],
                                [self.exp_avg[i] for i in rows], [self.exp_avg_sq[i] for i in rows], [],
                                [step] * len(rows), lr=lr, beta1=beta1, beta2=beta2, weight_decay=weight_decay,
                                eps=self.eps, amsgrad=False, maximize=False)

    def zero_grad(self) -> None:
        for p in self.params.values():
            p.grad = None

    def state_dict(self) -> dict:
        """Moments per parameter (the checkpoint's format), copies independent of the buffers."""
        return {
            "step_count": self.step_count,
            **{moment: {name: self._view(buffer, name).to("cpu", copy=True) for name in self._slices}
               for moment, buffer in (("exp_avg", self.exp_avg), ("exp_avg_sq", self.exp_avg_sq))},
        }

    def load_state_dict(self, state: dict) -> None:
        self.step_count = int(state["step_count"])
        for moment, buffer in (("exp_avg", self.exp_avg), ("exp_avg_sq", self.exp_avg_sq)):
            for name in self._slices:
                self._view(buffer, name).copy_(state[moment][name])
