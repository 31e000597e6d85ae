"""One module per paper figure; each has ``draw(store) -> matplotlib Figure`` and reads only the
aggregated metrics file (through :class:`FigureStore`). No figure imports torch or trains.

``FIGURES`` maps each figure's name (its file name and module) to its report caption.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
from functools import cache
from pathlib import Path

FIGURES = {
    "fig01_phenomena": "Fig 1: grokking (D >> D_crit), ungrokking (a grokked model trained on D' < D_crit) and "
                       "semi-grokking (D ~ D_crit). The paper shows all three at p = 113.",
    "fig02_simulation": "Fig 2: the minimal two-circuit example of Section 3 for Table 1's cases a, b, c. The paper: "
                        "grokking only when C_gen is both more efficient and learned more slowly.",
    "fig03_efficiency": "Fig 3: efficiency. C_mem (random labels) needs more parameter norm for the same logit as D grows; "
                        "C_gen's isologit curves are flat. The paper shows the same at p = 113.",
    "fig04_ungrokking": "Fig 4: final test accuracy after ungrokking against the reduced dataset size, per weight decay. "
                        "The paper: a sharp transition whose location does not depend on weight decay.",
    "fig05_semigrokking": "Fig 5: test accuracy over training for every semi-grokking run, coloured by final accuracy. "
                          "The paper: 6 of 200 runs end at middling accuracy after 3e7 epochs.",
    "fig06_semigrok_run": "Fig 6: one semi-grokking run in detail: accuracy, loss and parameter norm.",
    "fig07_ungrok_runs": "Fig 7: test accuracy over training for ungrokking runs, coloured by reduced dataset size. "
                         "The paper: small D' ungroks to poor accuracy, intermediate D' to middling accuracy.",
    "fig08_ungrok_tasks": "Fig 8: ungrokking on the other tasks. The paper: a transition in D' on every task, "
                          "mostly independent of weight decay.",
    "fig09_circuits": "Fig 9: C_gen (trigonometric) and C_mem correct logits, losses and parameter norm during grokking. "
                      "The paper: the C_gen logit overtakes C_mem as parameter norm falls, then test loss falls.",
    "fig10_logit_ratio": "Fig 10: logit ratio o_t / o_m and test accuracy at convergence against dataset size, coloured by "
                         "parameter norm. The paper: both rise smoothly and monotonically with D.",
    "fig11_dcrit_prediction": "Fig 11 (beyond the paper): D_crit predicted from the efficiency fits (the D where C_mem "
                              "needs the norm C_gen needs for the ungrok runs' operating logit) against the observed "
                              "ungrokking transition, overall and per seed. PASS within a factor 1.5.",
    "theorem_d4": "Theorem D.4: the numerically optimal weights of circuits of given efficiencies against the theorem's "
                  "prediction (all weight on the most efficient circuit when kappa >= q, w_i ∝ P_i^(-q kappa/(q-kappa)) "
                  "otherwise).",
}


def render(metrics: Path, out_dir: Path, only: list[str] | None = None, dpi: int = 150,
           formats: tuple[str, ...] = ("png", "pdf")) -> list[Path]:
    """Draw the figures (all, or ``only``) from a metrics file; return the files written."""
    from ..errors import GrokpipeError
    from ._common import FigureStore, footer, save

    names = only or list(FIGURES)
    unknown = [n for n in names if n not in FIGURES]
    if unknown:
        raise GrokpipeError(f"unknown figure(s) {unknown}; choose from {', '.join(FIGURES)}")
    store = FigureStore(Path(metrics))
    written = []
    for name in names:
        module = importlib.import_module(f"{__name__}.{name}")
        fig = module.draw(store)
        footer(fig, store.made_by())
        written += save(fig, Path(out_dir), name, formats, dpi)
    return written


def _source(module: str) -> Path | None:
    """The file of a grokpipe module, found from its name alone (nothing is imported)."""
    root = Path(__file__).resolve().parent.parent  # the grokpipe package
    parts = module.split(".")[1:]
    for candidate in (root.joinpath(*parts).with_suffix(".py"), root.joinpath(*parts, "__init__.py")):
        if parts and candidate.is_file() or not parts and candidate.name == "__init__.py":
            return candidate
    return None


@cache
def code_dependencies(module: str) -> list[str]:
    """The source files of ``module`` and of every grokpipe module it imports, directly or not
    (read from the import statements, without importing anything): what a figure or the claims
    report must be redrawn after. A module's parent packages count: Python runs them first."""
    seen: dict[str, Path] = {}
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen or name.split(".")[0] != "grokpipe":
            continue
        path = _source(name)
        if path is None:  # a name imported from a module, not a module
            continue
        seen[name] = path
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                todo += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = importlib.util.resolve_name("." * node.level + base, package)
                todo.append(base)
                todo += [f"{base}.{alias.name}" for alias in node.names]  # "from . import x" may import a module
    return sorted(str(path) for path in seen.values())
