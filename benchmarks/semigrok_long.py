"""How long the quick model needs to semi-grok: from-scratch runs around the ungrokking D_crit,
many seeds, trained far past the quick scale's budget, with P4's criterion applied at every budget.

    python benchmarks/semigrok_long.py OUT_DIR --minutes 13 --max-steps 120000  # on a GPU machine
    python benchmarks/semigrok_long.py OUT_DIR --work DIR --minutes 5   # the run in DIR, continued
    python benchmarks/semigrok_long.py OUT_DIR --device cpu --small      # a dry run of every step

Why: at the quick scale P4 fails because the first stage's 3,000-step scan finds where runs *finish
grokking within that budget* (D 700-1000), about twice the D_crit that ungrokking measures (369);
semi-grokking is expected near D_crit, where grokking from scratch takes far longer
(docs/quick-scale.md). This measures how much longer: one shard of the quick scale's model, task
and semigrok_scan learning rate and weight decay (read from config.yaml; ``--lr``, ``--weight-decay``,
``--sizes`` and ``--seeds`` change them), trained in chunks of doubling step caps (a cap raised on a checkpoint
gives the curves a fresh run with that cap gives: the learning rate is constant), until the
wall-clock budget would be spent. The shard trains in ``--work`` (default: a new temporary folder;
its checkpoint, tens of MB, stays out of OUT_DIR), and a later call with the same ``--work`` and
OUT_DIR continues it.

After each chunk it writes ``OUT_DIR/semigrok-long.json`` (tagged ``grokpipe-semigrok-long-1``),
copies the shard file to ``OUT_DIR/semigrok-long.h5`` and draws its test accuracy curves in
``OUT_DIR/semigrok-long.png`` (``--replot`` draws them from a saved shard file). The report holds,
for each budget T, the curves cut at T and judged by :func:`grokpipe.analysis.semigrok_status`,
P4's unchanged criterion, counted per training set size (semi-grokked / grokked fully / stayed
below the band / middling, unsettled). Needs only torch, numpy, h5py, pyyaml, matplotlib and rich
(no Snakemake or jsonschema): run it from a checkout with ``PYTHONPATH=.``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

SIZES = (300, 350, 400, 450, 500, 550, 600, 700)  # straddle the quick scale's ungrokking D_crit, 369
SEEDS = tuple(range(200, 208))  # apart from the pipeline's seeds (0-1 scan, 100-101 semigrok)
FIRST_CAP = 2500


def quick_settings(config_path: Path) -> dict:
    """The quick scale's p, model, task, learning rate and weight decay for its first semi-grokking
    stage, read from the config (the YAML alone: the schema's defaults are not needed here)."""
    from grokpipe.config import ADAPTIVE_SOURCE, load_config_file

    scale = load_config_file(config_path)["scales"]["quick"]
    scan = scale["experiments"][ADAPTIVE_SOURCE]
    return {"p": scale["p"], "model": scale["model"], "task": scan["tasks"][0], "lr": scan["lr"],
            "weight_decay": scan["weight_decay"][0]}


def cut(run, steps: int):
    """The run's curves up to ``steps``: what a run with that cap records (evaluations are a pure
    function of the step, and the cap is an evaluation step in every budget used here)."""
    keep = run.eval_step <= steps
    return dataclasses.replace(run, eval_step=run.eval_step[keep], curves={k: v[keep] for k, v in run.curves.items()})


def judge(runs: list, steps: int) -> dict:
    """P4's status of every run cut at ``steps``, counted per training set size."""
    from grokpipe.analysis import FULL, SEMI_BAND, semigrok_status

    by_size: dict[int, dict] = {}
    for run in runs:
        status = semigrok_status(cut(run, steps))
        counts = by_size.setdefault(status.n_train, {"semi": 0, "grokked": 0, "below": 0, "middling": 0, "finals": []})
        counts["finals"].append(round(status.final_test_acc, 3))
        if status.semi:
            counts["semi"] += 1
        elif status.final_test_acc >= FULL:
            counts["grokked"] += 1
        elif status.final_test_acc < SEMI_BAND[0]:
            counts["below"] += 1
        else:
            counts["middling"] += 1
    return {"steps": steps, "semi": sum(c["semi"] for c in by_size.values()), "by_size": by_size}


def plot(runs: list, path: Path) -> None:
    """Test accuracy against step, one panel per training set size, one line per seed, P4's band shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from grokpipe.analysis import SEMI_BAND

    sizes = sorted({r.hparams["n_train"] for r in runs})
    columns = min(4, len(sizes))
    rows = -(-len(sizes) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3 * columns, 2.4 * rows), sharex=True, sharey=True, squeeze=False)
    for ax, size in zip(axes.flat, sizes):
        ax.axhspan(*SEMI_BAND, color="0.92")
        for run in (r for r in runs if r.hparams["n_train"] == size):
            ax.plot(run.eval_step / 1000, run.curves["test_acc"], lw=0.8)
        ax.set_title(f"D = {size}")
    for ax in axes[-1]:
        ax.set_xlabel("step (thousands)")
    for ax in axes[:, 0]:
        ax.set_ylabel("test accuracy")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def next_cap(done: int, rate: float, seconds_left: float, first_cap: int, max_steps: int | None) -> int:
    """The cap of the next chunk after ``done`` steps: double it, or go as far as the seconds left
    allow at ``rate`` shard-steps/s, never past ``max_steps``; ``done`` when nothing more fits.
    Caps stay multiples of ``first_cap``, so each is an evaluation step (:func:`cut`)."""
    affordable = int(seconds_left * rate // first_cap) * first_cap
    limit = max_steps // first_cap * first_cap if max_steps else 2 * done
    return done + max(0, min(done, affordable, limit - done))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--minutes", type=float, default=6.0, help="wall-clock budget for training")
    parser.add_argument("--max-steps", type=int, default=None,
                        help="stop at this cap (a multiple of 2,500, rounded down), budget or not")
    parser.add_argument("--sizes", type=int, nargs="+", default=SIZES, help="training set sizes D")
    parser.add_argument("--seeds", type=int, nargs="+", default=SEEDS)
    parser.add_argument("--lr", type=float, help="learning rate (default: the quick scale's semigrok_scan's)")
    parser.add_argument("--weight-decay", type=float, help="weight decay (default: the quick scale's semigrok_scan's)")
    parser.add_argument("--work", type=Path, help="where the shard and its checkpoint train (default: a new "
                        "temporary folder); one that holds them is continued, with OUT_DIR's report")
    parser.add_argument("--replot", type=Path, help="only draw OUT_DIR/semigrok-long.png from this shard file")
    parser.add_argument("--small", action="store_true", help="2 sizes x 2 seeds, caps 100-200: a dry run")
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(REPO))
    from grokpipe.errors import GrokpipeError

    try:
        return train_and_judge(args)
    except GrokpipeError as e:  # a --work holding another shard's checkpoint, an unreadable --replot file
        print(f"semigrok_long: {e}", file=sys.stderr)
        return 2


def train_and_judge(args: argparse.Namespace) -> int:
    from rich.console import Console

    from grokpipe.files import FORMATS, write_json
    from grokpipe.spec import EvalSchedule, ModelConfig, RunSpec, ShardSpec
    from grokpipe.store import read_shard
    from grokpipe.train import train_shard

    console = Console()
    if args.replot:
        plot(read_shard(args.replot).runs, args.out_dir / "semigrok-long.png")
        return 0
    s = quick_settings(REPO / "config.yaml")
    for name in ("lr", "weight_decay"):  # given (0 too, for weight decay), or the config's
        s[name] = s[name] if getattr(args, name) is None else getattr(args, name)
    sizes, seeds, first_cap, every = ((300, 600), (200, 201), 100, 20) if args.small else (args.sizes, args.seeds,
                                                                                           FIRST_CAP, 250)
    runs = tuple(RunSpec(d, s["weight_decay"], seed, s["lr"]) for d in sizes for seed in seeds)
    spec = ShardSpec(s["task"], s["p"], ModelConfig(s["p"], **s["model"]), runs, first_cap,
                     schedule=EvalSchedule(every=every, per_decade=20), checkpoint_every=10**9)
    work = args.work or Path(tempfile.mkdtemp(prefix="grokpipe-semigrok-long-"))
    work.mkdir(parents=True, exist_ok=True)
    shard, checkpoint, out_report = work / "shard.h5", work / "shard.pt", args.out_dir / "semigrok-long.json"
    report = {"settings": s, "sizes": list(sizes), "seeds": list(seeds), "device": args.device, "chunks": [],
              "budgets": []}
    done = 0
    if checkpoint.exists():  # continue it: its chunks so far are in OUT_DIR's report
        try:
            report = json.loads(out_report.read_text())
            done = report["chunks"][-1]["cap"] if report.get("format") == FORMATS["semigrok-long"] else 0
        except (OSError, ValueError, KeyError, IndexError, TypeError, AttributeError):
            done = 0
        if not done:
            print(f"semigrok_long: {work} holds a checkpoint, but {out_report} is not its report", file=sys.stderr)
            return 2
    console.print(f"training in {work}" + (f", from step {done}" if done else ""))
    start, budget = time.monotonic(), args.minutes * 60
    cap = first_cap if not done else next_cap(done, report["chunks"][-1]["shard_steps_per_s"], budget, first_cap,
                                              args.max_steps)
    while cap > done:
        chunk_start = time.monotonic()
        train_shard(dataclasses.replace(spec, steps=cap), shard, checkpoint, device=args.device, threads=1,
                    show_progress=False)
        seconds = time.monotonic() - chunk_start
        report["chunks"].append({"cap": cap, "seconds": seconds, "shard_steps_per_s": (cap - done) / seconds})
        runs_read = read_shard(shard).runs
        report["budgets"] = [judge(runs_read, c["cap"]) for c in report["chunks"]]
        write_json(out_report, "semigrok-long", report)
        shutil.copy(shard, args.out_dir / "semigrok-long.h5")
        plot(runs_read, args.out_dir / "semigrok-long.png")
        last = report["budgets"][-1]
        console.print(f"[{time.monotonic() - start:.0f} s] cap {cap}: {(cap - done) / seconds:.0f} shard-steps/s; "
                      f"{last['semi']} of {len(runs)} semi-grokked; per D (semi/grokked/below/middling): "
                      + ", ".join(f"{d}: {c['semi']}/{c['grokked']}/{c['below']}/{c['middling']}"
                                  for d, c in sorted(last["by_size"].items())))
        done = cap
        if args.small and cap >= 2 * first_cap:
            break
        cap = next_cap(done, report["chunks"][-1]["shard_steps_per_s"], budget - (time.monotonic() - start),
                       first_cap, args.max_steps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
