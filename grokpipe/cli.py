"""The ``grokpipe`` command line. User mistakes print one line and exit 2."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import GrokpipeError

DEFAULT_RESULTS = Path("results")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value}")
    return value


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def _run_triple(text: str) -> tuple[int, float, int]:
    try:
        d, wd, seed = text.split(":")
        return int(d), float(wd), int(seed)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected D:WEIGHT_DECAY:SEED, got {text!r}") from None


class _Parser(argparse.ArgumentParser):
    """argparse, but its errors follow grokpipe's one-line form and exit code."""

    def error(self, message: str):
        raise GrokpipeError(f"{message} ({self.prog})")


def _add_train(sub) -> None:
    from .tasks import task_help

    p = sub.add_parser("train", help="train a shard of runs (the product of the given lists) as one ensemble",
                       description=f"Tasks: {task_help()}.")
    p.add_argument("--task", default="add", help="one of the ten tasks listed above (default add)")
    p.add_argument("--p", type=_positive_int, default=113, help="modulus (default 113)")
    p.add_argument("--n-train", type=_positive_int, nargs="+", metavar="D", help="training set sizes")
    p.add_argument("--weight-decay", type=_float, nargs="+", default=[1.0], metavar="WD")
    p.add_argument("--seed", type=_non_negative_int, nargs="+", default=[0], help="init and split seeds")
    p.add_argument("--runs", type=_run_triple, nargs="+", metavar="D:WD:SEED",
                   help="an explicit list of runs instead of the product of --n-train, --weight-decay, --seed")
    p.add_argument("--lr", type=_float, default=1e-3)
    p.add_argument("--steps", type=_non_negative_int, required=True, help="full-batch steps (= epochs)")
    p.add_argument("--random-labels", action="store_true", help="train on a fixed random labelling (C_mem only)")
    p.add_argument("--circuits", action="store_true", help="log C_gen/C_mem logits (add, sub, mul, div)")
    p.add_argument("--out", type=Path, required=True, help="the shard's HDF5 file")
    p.add_argument("--checkpoint", type=Path, help="checkpoint to write and resume from (default: OUT with .pt)")
    p.add_argument("--init-from", type=Path, help="start each run from the checkpoint's run of the same seed")
    p.add_argument("--experiment", default="", help="experiment name stored in the file")
    p.add_argument("--d-model", type=_positive_int, default=128)
    p.add_argument("--n-heads", type=_positive_int, default=4)
    p.add_argument("--d-head", type=_positive_int, default=32)
    p.add_argument("--d-mlp", type=_positive_int, default=512)
    p.add_argument("--eval-every", type=_non_negative_int, default=100, help="evaluate every k steps (0: off)")
    p.add_argument("--evals-per-decade", type=_non_negative_int, default=20, help="plus log-spaced evaluations")
    p.add_argument("--checkpoint-every", type=_positive_int, default=1000)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    p.add_argument("--threads", type=_positive_int, help="torch threads (default: the cores available)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=_cmd_train)


def _cmd_train(args) -> int:
    import itertools

    from .spec import EvalSchedule, ModelConfig, RunSpec, ShardSpec
    from .tasks import get_task, n_elements, validate_task
    from .train import train_shard

    get_task(args.task)
    validate_task(args.task, args.p)
    if (args.runs is None) == (args.n_train is None):
        raise GrokpipeError("give either --n-train (with --weight-decay, --seed) or --runs")
    triples = args.runs or list(itertools.product(args.n_train, args.weight_decay, args.seed))
    runs = tuple(RunSpec(n_train=d, weight_decay=wd, seed=s, lr=args.lr, random_labels=args.random_labels)
                 for d, wd, s in triples)
    spec = ShardSpec(
        task=args.task, p=args.p,
        model=ModelConfig(n_elements(args.task, args.p), args.d_model, args.n_heads, args.d_head, args.d_mlp),
        runs=runs, steps=args.steps, schedule=EvalSchedule(args.eval_every, args.evals_per_decade),
        checkpoint_every=args.checkpoint_every, circuits=args.circuits,
    )
    checkpoint = args.checkpoint or args.out.with_suffix(".pt")
    final = train_shard(spec, args.out, checkpoint, args.init_from, args.device, args.threads,
                        args.experiment, not args.quiet)
    if not args.quiet:
        for i, run in enumerate(spec.runs):
            print(f"D={run.n_train} wd={run.weight_decay} seed={run.seed}: train_acc {final['train_acc'][i]:.3f} "
                  f"test_acc {final['test_acc'][i]:.3f} param_norm {final['param_norm'][i]:.1f}")
    return 0


def _add_bench(sub) -> None:
    p = sub.add_parser("bench", help="time the trainer against the straightforward implementation")
    p.add_argument("--threads", type=_positive_int, default=2)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    p.add_argument("--case", nargs=2, type=_positive_int, action="append", metavar=("D", "ENSEMBLE"),
                   help="a (D, ensemble) case; repeatable (default: the five standard cases)")
    p.add_argument("--min-seconds", type=_float, default=1.0, help="length of each timing")
    p.add_argument("--json", type=Path, help="also write the results as JSON")
    p.set_defaults(func=_cmd_bench)


def _cmd_bench(args) -> int:
    from .bench import DEFAULT_CASES, print_report, run_bench, write_json

    report = run_bench([tuple(c) for c in args.case] if args.case else DEFAULT_CASES, args.device, args.threads,
                       args.min_seconds)
    print_report(report)
    if args.json:
        write_json(report, args.json)
    return 0


def _add_simulate(sub) -> None:
    p = sub.add_parser("simulate", help="the minimal two-circuit example (Table 1) and the Theorem D.4 check")
    p.add_argument("--json", type=Path, required=True, help="where to write the results")
    p.add_argument("--steps", type=_positive_int, default=10_000)
    p.set_defaults(func=_cmd_simulate)


def _cmd_simulate(args) -> int:
    from .simulation import run_all, write_json

    result = run_all(args.steps)
    write_json(result, args.json)
    for case in result["cases"]:
        f = case["final"]
        print(f"case {case['case']['name']}: train loss {f['train_loss']:.3g} test loss {f['test_loss']:.3g} "
              f"gen weight {f['gen_weight']:.2f} mem weight {f['mem_weight']:.2f} param norm {f['param_norm']:.2f}")
    return 0


def _add_aggregate(sub) -> None:
    p = sub.add_parser("aggregate", help="collect shard files into one metrics file")
    p.add_argument("shards", type=Path, nargs="*", help="shard files (default: every file under RESULTS/runs)")
    p.add_argument("--results", type=Path, default=DEFAULT_RESULTS)
    p.add_argument("--simulation", type=Path, help="simulation JSON to include")
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(func=_cmd_aggregate)


def _cmd_aggregate(args) -> int:
    import json

    from .store import aggregate, shard_files

    shards = args.shards or shard_files(args.results)
    simulation = None
    if args.simulation:
        try:
            simulation = json.loads(args.simulation.read_text())
        except (OSError, ValueError) as e:
            raise GrokpipeError(f"cannot read simulation results {args.simulation}: {e}") from None
    count = aggregate(shards, args.out, simulation)
    print(f"{count} runs from {len(shards)} shard files -> {args.out}")
    return 0


def _add_claims(sub) -> None:
    p = sub.add_parser("claims", help="the paper's predictions P1-P4 measured on the results")
    p.add_argument("--metrics", type=Path, default=DEFAULT_RESULTS / "metrics.h5")
    p.add_argument("--markdown", type=Path, help="write the report as Markdown")
    p.add_argument("--json", type=Path, help="write the claims as JSON")
    p.set_defaults(func=_cmd_claims)


def _cmd_claims(args) -> int:
    import json

    from .analysis import all_claims, claims_markdown, group_by
    from .store import read_metrics

    claims = all_claims(group_by(read_metrics(args.metrics), "experiment"))
    text = claims_markdown(claims)
    for path, content in ((args.markdown, text), (args.json, json.dumps([c.as_dict() for c in claims], indent=2, default=float))):
        if path:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
    for c in claims:
        print(f"{c.id:9} {c.verdict:8} {c.measured}")
    return 0


def _add_figures(sub) -> None:
    from .figures import FIGURES

    p = sub.add_parser("figures", help="draw the paper's figures from a metrics file",
                       description=f"Figures: {', '.join(FIGURES)}.")
    p.add_argument("--metrics", type=Path, default=DEFAULT_RESULTS / "metrics.h5")
    p.add_argument("--out-dir", type=Path, default=DEFAULT_RESULTS / "figures")
    p.add_argument("--only", nargs="+", metavar="FIGURE", help="draw only these figures")
    p.add_argument("--dpi", type=_positive_int, default=150)
    p.add_argument("--formats", default="png,pdf", help="comma-separated: png, pdf, svg")
    p.set_defaults(func=_cmd_figures)


def _cmd_figures(args) -> int:
    from .figures import render

    formats = tuple(f for f in args.formats.split(",") if f)
    bad = [f for f in formats if f not in ("png", "pdf", "svg")]
    if bad or not formats:
        raise GrokpipeError(f"--formats: unknown format(s) {bad}; choose from png, pdf, svg")
    for path in render(args.metrics, args.out_dir, args.only, args.dpi, formats):
        print(path)
    return 0


def _add_tui(sub) -> None:
    p = sub.add_parser("tui", help="browse results and follow runs while they train")
    p.add_argument("results", type=Path, nargs="?", default=DEFAULT_RESULTS, help="results directory (default results/)")
    p.add_argument("--config", type=Path, help="the pipeline config, for pending-shard counts (default: ../config.yaml)")
    p.set_defaults(func=_cmd_tui)


def _cmd_tui(args) -> int:
    if args.results.exists() and not args.results.is_dir():
        raise GrokpipeError(f"{args.results} is not a results directory")
    from .tui.app import run

    run(args.results, args.config)
    return 0


def _add_plan(sub) -> None:
    p = sub.add_parser("plan", help="what a scale of the pipeline trains, and what it costs")
    p.add_argument("--config", type=Path, default=Path("config.yaml"))
    p.add_argument("--scale", help="override the config's scale (quick, paper)")
    p.add_argument("--tflops", type=_float, default=20.0,
                   help="sustained training throughput to cost it at, TFLOP/s (default 20: float32 on one modern GPU)")
    p.set_defaults(func=_cmd_plan)


def _cmd_plan(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from .config import load_checked_config, load_plan, plan_cost

    config = load_checked_config(args.config)
    if args.scale:
        config["scale"] = args.scale
    plan = load_plan(config)
    table = Table(title=f"{plan.scale} scale: training cost at {args.tflops:g} TFLOP/s sustained")
    for col in ("experiment", "shards", "runs", "run-steps", "PFLOP", "hours"):
        table.add_column(col, justify="right")
    def cells(name: str, row: dict) -> list[str]:
        hours = row["flops"] / (args.tflops * 1e12) / 3600
        return [name, str(row["shards"]), str(row["runs"]), f"{row['run_steps']:.3g}", f"{row['flops'] / 1e15:.3g}",
                f"{hours:.3g}"]

    cost = plan_cost(plan)
    for experiment, row in cost.items():
        table.add_row(*cells(experiment, row))
    table.add_row(*cells("total", {k: sum(row[k] for row in cost.values()) for k in next(iter(cost.values()))}))
    Console().print(table)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="grokpipe", description="Reproduce 'Explaining grokking through circuit efficiency'.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_train(sub)
    _add_bench(sub)
    _add_simulate(sub)
    _add_aggregate(sub)
    _add_claims(sub)
    _add_figures(sub)
    _add_tui(sub)
    _add_plan(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except GrokpipeError as e:
        print(f"grokpipe: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("grokpipe: interrupted", file=sys.stderr)
        return 130
