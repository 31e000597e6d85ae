"""AdamW over an ensemble, with a learning rate and a weight decay per member.

torch's AdamW takes one lr and one weight decay per parameter group, but an ensemble packs all
members into one tensor per parameter; splitting them into groups would cost a kernel launch per
member per parameter per step. So this is torch's AdamW update (decoupled decay, moment updates,
bias-corrected step, as ``_single_tensor_adamw``; the last step's products are grouped
differently, equal to rounding) with lr and weight decay as tensors broadcast over the ensemble
axis, run as ``_foreach`` ops over all parameters. ``tests/test_optim.py`` checks each member's
trajectory against ``torch.optim.AdamW`` run on that member alone.
"""

from __future__ import annotations

import math

import torch


class EnsembleAdamW:
    def __init__(
        self,
        params: dict[str, torch.Tensor],
        lr: torch.Tensor | list[float],
        weight_decay: torch.Tensor | list[float],
        betas: tuple[float, float],
        eps: float = 1e-8,
    ):
        self.params = params
        first = next(iter(params.values()))
        self.lr = torch.as_tensor(lr, dtype=torch.float64).to(first.device)
        self.weight_decay = torch.as_tensor(weight_decay, dtype=torch.float64).to(first.device)
        self.betas = betas
        self.eps = eps
        self.step_count = 0
        self.exp_avg = {k: torch.zeros_like(p) for k, p in params.items()}
        self.exp_avg_sq = {k: torch.zeros_like(p) for k, p in params.items()}
        self._lr = self._per_member(self.lr)
        self._decay = self._per_member(1 - self.lr * self.weight_decay)

    def _per_member(self, values: torch.Tensor) -> list[torch.Tensor]:
        """``values`` (M,) shaped to broadcast over each parameter's member axis."""
        return [values.to(p.dtype).view(-1, *([1] * (p.dim() - 1))) for p in self.params.values()]

    @torch.no_grad()
    def step(self) -> None:
        """torch's AdamW update, one ``_foreach`` op per stage for all parameters at once."""
        self.step_count += 1
        beta1, beta2 = self.betas
        bias_correction1 = 1 - beta1**self.step_count
        bias_correction2_sqrt = math.sqrt(1 - beta2**self.step_count)
        params = list(self.params.values())
        grads = [p.grad for p in params]
        exp_avg, exp_avg_sq = list(self.exp_avg.values()), list(self.exp_avg_sq.values())
        torch._foreach_mul_(params, self._decay)
        torch._foreach_lerp_(exp_avg, grads, 1 - beta1)
        torch._foreach_mul_(exp_avg_sq, beta2)
        torch._foreach_addcmul_(exp_avg_sq, grads, grads, value=1 - beta2)
        denom = torch._foreach_sqrt(exp_avg_sq)
        torch._foreach_div_(denom, bias_correction2_sqrt)
        torch._foreach_add_(denom, self.eps)
        torch._foreach_mul_(denom, bias_correction1)
        update = torch._foreach_mul(exp_avg, self._lr)
        torch._foreach_div_(update, denom)
        torch._foreach_sub_(params, update)

    def zero_grad(self) -> None:
        for p in self.params.values():
            p.grad = None

    def state_dict(self) -> dict:
        return {
            "step_count": self.step_count,
            "exp_avg": {k: v.cpu() for k, v in self.exp_avg.items()},
            "exp_avg_sq": {k: v.cpu() for k, v in self.exp_avg_sq.items()},
        }

    def load_state_dict(self, state: dict) -> None:
        self.step_count = int(state["step_count"])
        for k, p in self.params.items():
            self.exp_avg[k] = state["exp_avg"][k].to(p.device, p.dtype).clone()
            self.exp_avg_sq[k] = state["exp_avg_sq"][k].to(p.device, p.dtype).clone()
