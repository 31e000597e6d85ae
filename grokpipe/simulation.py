"""Section 3's minimal example (Appendix C, Table 1) and a numerical check of Theorem D.4.

Two fixed circuits, C_gen (right on train and test) and C_mem (right on train, confidently wrong
on test), scaled by weights ``w_G = w_G1 w_G2`` and ``w_M = w_M1 w_M2`` learned by gradient
descent on the subweights. A circuit's parameter norm is ``P'_c = w_c^(1/kappa) P_c`` and
the loss is

    L_train = -log(exp(w_G + w_M) / ((q - 1) + exp(w_G + w_M))) + alpha (P'_G^2 + P'_M^2)
    L_test  = -log(exp(w_G) / ((q - 2) + exp(w_G) + exp(w_M)))   (+ the same decay term)

Plain numpy floats: the model has four numbers, and torch's per-op overhead would make it
about a hundred times slower.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class SimulationCase:
    name: str
    description: str
    P_gen: float = 1.0
    P_mem: float = 2.0
    kappa: float = 1.2
    alpha: float = 0.005
    w_gen1: float = 0.0
    w_gen2: float = 0.005
    w_mem1: float = 0.0
    w_mem2: float = 1.0
    q: int = 113
    lr: float = 0.01


TABLE_1 = (
    SimulationCase("a", "C_gen learned slower but more efficient than C_mem: grokking"),
    SimulationCase("b", "C_gen less efficient than C_mem: C_gen never grows", P_gen=4.0),
    SimulationCase("c", "C_gen and C_mem learned at equal speeds: no delay", w_gen2=1.0),
)


def simulate(case: SimulationCase, steps: int = 10_000) -> dict[str, np.ndarray]:
    """Gradient descent on the subweights; curves at every step (index 0 is the start)."""
    wg1, wg2, wm1, wm2 = case.w_gen1, case.w_gen2, case.w_mem1, case.w_mem2
    q, a, k = case.q, case.alpha, case.kappa
    out = {name: np.empty(steps + 1) for name in
           ("train_loss", "test_loss", "gen_weight", "mem_weight", "param_norm")}

    def decay_norm_sq(w, P):  # P'^2 = |w|^(2/kappa) P^2
        return np.abs(w) ** (2 / k) * P**2

    for t in range(steps + 1):
        wg, wm = wg1 * wg2, wm1 * wm2
        out["gen_weight"][t], out["mem_weight"][t] = wg, wm
        out["train_loss"][t] = np.log1p((q - 1) * np.exp(-(wg + wm)))
        out["test_loss"][t] = np.log((q - 2) + np.exp(wg) + np.exp(wm)) - wg
        out["param_norm"][t] = np.sqrt(decay_norm_sq(wg, case.P_gen) + decay_norm_sq(wm, case.P_mem))
        if t == steps:
            break
        # d(train cross-entropy)/d(w_G) = d/d(w_M) = -(1 - softmax of the correct class)
        dxent = -(q - 1) / (np.exp(wg + wm) + (q - 1))
        dg = dxent + a * (2 / k) * np.abs(wg) ** (2 / k - 1) * np.sign(wg) * case.P_gen**2
        dm = dxent + a * (2 / k) * np.abs(wm) ** (2 / k - 1) * np.sign(wm) * case.P_mem**2
        wg1, wg2 = wg1 - case.lr * dg * wg2, wg2 - case.lr * dg * wg1
        wm1, wm2 = wm1 - case.lr * dm * wm2, wm2 - case.lr * dm * wm1
    return out


# ---------------------------------------------------------------- Theorem D.4


def theorem_d4_prediction(P: np.ndarray, kappa: float, q: float) -> np.ndarray:
    """The optimal share of weight of each circuit that Theorem D.4 predicts."""
    P = np.asarray(P, dtype=float)
    if kappa >= q:
        share = (P == P.min()).astype(float)
        return share / share.sum()
    share = P ** (-q * kappa / (q - kappa))
    return share / share.sum()


def minimise_equation_6(P: np.ndarray, kappa: float, q: float, alpha: float = 0.01, classes: int = 113,
                        steps: int = 200_000, lr: float = 0.02) -> np.ndarray:
    """Minimise Eq. 6, L(w) = L_xent(sum w) + alpha/q sum (w_i^(1/kappa) P_i)^q over w >= 0, numerically.

    Every circuit gives the same logits (the theorem's assumption), so cross-entropy depends on
    ``S = sum w_i`` only: ``log(1 + (classes - 1) exp(-S))``. Gradient descent on ``u`` with
    ``w = u^2`` keeps the weights non-negative; it starts from equal weights, so any imbalance
    at the end comes from the efficiencies alone."""
    P = np.asarray(P, dtype=float)
    u = np.full(len(P), 1.0)
    for _ in range(steps):
        w = u * u
        S = w.sum()
        dxent = -(classes - 1) / (np.exp(S) + (classes - 1))
        dpen = alpha / kappa * P**q * w ** (q / kappa - 1)
        u = u - lr * (dxent + dpen) * 2 * u
    return u * u


D4_CASES = (
    {"name": "kappa < q (kappa=1, q=2)", "P": [1.0, 1.5, 2.0, 3.0], "kappa": 1.0, "q": 2.0},
    {"name": "kappa < q (kappa=1.5, q=2)", "P": [1.0, 1.2, 1.6, 2.5], "kappa": 1.5, "q": 2.0},
    {"name": "kappa >= q (kappa=3, q=2)", "P": [1.0, 1.2, 1.6, 2.5], "kappa": 3.0, "q": 2.0},
)


def theorem_d4_check() -> list[dict]:
    rows = []
    for case in D4_CASES:
        w = minimise_equation_6(np.array(case["P"]), case["kappa"], case["q"])
        rows.append({**case, "weights": w.tolist(), "numeric_share": (w / w.sum()).tolist(),
                     "predicted_share": theorem_d4_prediction(np.array(case["P"]), case["kappa"], case["q"]).tolist()})
    return rows


def run_all(steps: int = 10_000) -> dict:
    """Every Table 1 case and the Theorem D.4 check, as plain JSON-able data."""
    cases = []
    for case in TABLE_1:
        curves = simulate(case, steps)
        final = {k: float(v[-1]) for k, v in curves.items()}
        cases.append({"case": asdict(case), "final": final, "curves": {k: v.tolist() for k, v in curves.items()}})
    return {"steps": steps, "cases": cases, "theorem_d4": theorem_d4_check()}
