"""The ``grokpipe`` command line. User mistakes print one line and exit 2.

Defaults come from the spec dataclasses (grokpipe.spec), never from a second copy here; every
value that reaches training is checked by ``ShardSpec.validate``; every file a command writes goes
through the output guard (grokpipe.files).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import GrokpipeError

if TYPE_CHECKING:
    from .spec import ShardSpec

DEFAULT_RESULTS = Path("results")
MAX_THREADS = 1024


def _integer(text: str, low: int, high: float, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"expected {what}, got {value}")
    return value


def _positive_int(text: str) -> int:
    return _integer(text, 1, math.inf, "a positive integer")


def _non_negative_int(text: str) -> int:
    return _integer(text, 0, math.inf, "an integer >= 0")


def _threads(text: str) -> int:
    return _integer(text, 1, MAX_THREADS, f"a positive integer up to {MAX_THREADS}")


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    value = _float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _run_triple(text: str) -> tuple[int, float, int]:
    parts = text.split(":")
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(f"expected D:WEIGHT_DECAY:SEED, got {text!r}")
    try:
        return _positive_int(parts[0]), _float(parts[1]), _non_negative_int(parts[2])
    except argparse.ArgumentTypeError as e:
        raise argparse.ArgumentTypeError(f"in D:WEIGHT_DECAY:SEED {text!r}: {e}") from None


class _Parser(argparse.ArgumentParser):
    """argparse, but its errors follow grokpipe's one-line form and exit code."""

    def error(self, message: str):
        raise GrokpipeError(f"{message} ({self.prog})")


def _add_train(sub) -> None:
    from .spec import BACKENDS, DEFAULT_BACKEND, EvalSchedule, ModelConfig, RunSpec, ShardSpec, default
    from .tasks import task_help

    p = sub.add_parser("train", help="train a shard of runs (the product of the given lists) as one ensemble",
                       description=f"Tasks: {task_help()}.")
    p.add_argument("--spec", type=Path, help="a shard spec (JSON, as the pipeline writes it) instead of the flags below")
    p.add_argument("--task", default="add", help="one of the tasks listed above (default add)")
    p.add_argument("--p", type=_positive_int, default=113, help="modulus (default 113)")
    p.add_argument("--n-train", type=_positive_int, nargs="+", metavar="D", help="training set sizes")
    p.add_argument("--weight-decay", type=_float, nargs="+", default=[1.0], metavar="WD")
    p.add_argument("--seed", type=_non_negative_int, nargs="+", default=[0], help="init and split seeds")
    p.add_argument("--runs", type=_run_triple, nargs="+", metavar="D:WD:SEED",
                   help="an explicit list of runs instead of the product of --n-train, --weight-decay, --seed")
    p.add_argument("--lr", type=_float, default=default(RunSpec, "lr"))
    p.add_argument("--steps", type=_non_negative_int, help="full-batch steps (= epochs)")
    p.add_argument("--random-labels", action="store_true", help="train on a fixed random labelling (C_mem only)")
    p.add_argument("--circuits", action="store_true", help="log C_gen/C_mem logits (add, sub, mul, div)")
    p.add_argument("--stop-when-converged", action="store_true", help="stop each run once it has converged with a margin (the shard when all have)")
    p.add_argument("--settle-logit", action="store_true", help="a run has converged only once its correct logit has "
                   "settled too (runs that measure circuit efficiency)")
    for name in ("d_model", "n_heads", "d_head", "d_mlp"):
        p.add_argument(f"--{name.replace('_', '-')}", type=_positive_int, default=default(ModelConfig, name))
    p.add_argument("--eval-every", type=_non_negative_int, default=default(EvalSchedule, "every"),
                   help="evaluate every k steps (0: off)")
    p.add_argument("--evals-per-decade", type=_non_negative_int, default=default(EvalSchedule, "per_decade"),
                   help="plus log-spaced evaluations")
    p.add_argument("--checkpoint-every", type=_positive_int, default=default(ShardSpec, "checkpoint_every"))
    p.add_argument("--out", type=Path, required=True, help="the shard's HDF5 file")
    p.add_argument("--checkpoint", type=Path, help="checkpoint to write and resume from (default: OUT with .pt)")
    p.add_argument("--init-from", type=Path, help="start each run from the checkpoint's run of the same seed")
    p.add_argument("--experiment", default="", help="experiment name stored in the file")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    p.add_argument("--threads", type=_threads, help="torch threads (default: the cores available)")
    p.add_argument("--single-pass", action="store_true",
                   help="one forward/backward pass over the whole ensemble, as on a GPU (the CPU default is passes "
                        "of a few thousand examples)")
    p.add_argument("--backend", choices=BACKENDS, default=DEFAULT_BACKEND,
                   help="how the backward reaches the token tables (default: %(default)s)")
    p.add_argument("--deterministic", action="store_true",
                   help="torch's deterministic algorithms: on CUDA the same bits run to run, about 17%% slower "
                        "(the CPU's are the same bits anyway)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=_cmd_train)


def spec_from_flags(args) -> "ShardSpec":
    """The shard the training flags describe (the same spec the pipeline writes to a file)."""
    import itertools

    from .spec import EvalSchedule, ModelConfig, RunSpec, ShardSpec
    from .tasks import n_elements, validate_task

    validate_task(args.task, args.p)
    if args.steps is None:
        raise GrokpipeError("--steps is required without --spec")
    if (args.runs is None) == (args.n_train is None):
        raise GrokpipeError("give either --n-train (with --weight-decay, --seed) or --runs")
    triples = args.runs or list(itertools.product(args.n_train, args.weight_decay, args.seed))
    runs = tuple(RunSpec(n_train=d, weight_decay=wd, seed=s, lr=args.lr, random_labels=args.random_labels)
                 for d, wd, s in triples)
    return ShardSpec(
        task=args.task, p=args.p,
        model=ModelConfig(n_elements(args.task, args.p), args.d_model, args.n_heads, args.d_head, args.d_mlp),
        runs=runs, steps=args.steps, schedule=EvalSchedule(args.eval_every, args.evals_per_decade),
        checkpoint_every=args.checkpoint_every, circuits=args.circuits,
        stop_when_converged=args.stop_when_converged, settle_logit=args.settle_logit,
    ).validate()


def _cmd_train(args) -> int:
    from .spec import ShardSpec
    from .train import train_shard

    if args.spec is not None:
        try:
            text = args.spec.read_text()
        except (OSError, UnicodeDecodeError) as e:
            raise GrokpipeError(f"cannot read --spec {args.spec}: {getattr(e, 'strerror', None) or e}") from None
        spec = ShardSpec.from_json(text, f"--spec {args.spec}")
    else:
        spec = spec_from_flags(args)
    checkpoint = args.checkpoint or args.out.with_suffix(".pt")
    final = train_shard(spec, args.out, checkpoint, args.init_from, args.device, args.threads,
                        args.experiment, not args.quiet, True if args.single_pass else None, args.backend,
                        args.deterministic)
    if not args.quiet:
        for i, run in enumerate(spec.runs):
            print(f"D={run.n_train} wd={run.weight_decay} seed={run.seed}: train_acc {final['train_acc'][i]:.3f} "
                  f"test_acc {final['test_acc'][i]:.3f} param_norm {final['param_norm'][i]:.1f}")
    return 0


def _add_bench(sub) -> None:
    from .spec import BACKENDS, DEFAULT_BACKEND

    p = sub.add_parser("bench", help="time the trainer against the straightforward implementation")
    p.add_argument("--threads", type=_threads, default=2)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    p.add_argument("--case", nargs=4, action="append", metavar=("SHAPE", "REGIME", "D", "ENSEMBLE"),
                   help="a case: shape paper|quick, regime random|fitted, D, ensemble size; repeatable "
                        "(default: the standard cases)")
    p.add_argument("--checkpoint", type=Path, action="append", default=[], metavar="PATH",
                   help="also time a pipeline checkpoint's shard from its saved state (grokpipe's side only); "
                        "repeatable; with no --case, only these")
    p.add_argument("--min-seconds", type=_positive_float, default=1.0, help="length of each timing")
    p.add_argument("--no-reference", action="store_true", help="time grokpipe's step only (e.g. large ensembles on a GPU)")
    p.add_argument("--keep-denormals", action="store_true", help="do not flush denormals (to measure what flushing is worth)")
    p.add_argument("--backend", choices=BACKENDS, default=DEFAULT_BACKEND,
                   help="the backward's backend (default: %(default)s)")
    p.add_argument("--json", type=Path, help="also write the results as JSON")
    p.set_defaults(func=_cmd_bench)


def _cmd_bench(args) -> int:
    from .bench import DEFAULT_CASES, MAX_ENSEMBLE, parse_case, print_report, run_bench
    from .files import check_output, write_json

    if args.json:
        check_output(args.json, "bench", "--json")
    cases = [parse_case(*c) for c in args.case] if args.case else (() if args.checkpoint else DEFAULT_CASES)
    report = run_bench(cases, args.device, args.threads, args.min_seconds, reference_up_to=0 if args.no_reference else MAX_ENSEMBLE,
                       flush_denormals=not args.keep_denormals, backend=args.backend, checkpoints=args.checkpoint)
    print_report(report)
    if args.json:
        write_json(args.json, "bench", report)
    return 0


def _add_simulate(sub) -> None:
    p = sub.add_parser("simulate", help="the minimal two-circuit example (Table 1) and the Theorem D.4 check")
    p.add_argument("--json", type=Path, required=True, help="where to write the results")
    p.add_argument("--steps", type=_integer_up_to(10**7), default=10_000)
    p.set_defaults(func=_cmd_simulate)


def _integer_up_to(high: int):
    return lambda text: _integer(text, 1, high, f"a positive integer up to {high}")


def _cmd_simulate(args) -> int:
    from .files import check_output, write_json
    from .simulation import run_all

    check_output(args.json, "simulation", "--json")
    result = run_all(args.steps)
    write_json(args.json, "simulation", result)
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


def _read_json(path: Path, what: str, kind: str | None = None) -> dict:
    import json

    from .files import FORMATS

    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise GrokpipeError(f"cannot read {what} {path}: {getattr(e, 'strerror', None) or str(e)[:80]}") from None
    if not isinstance(data, dict) or (kind and data.get("format") != FORMATS[kind]):
        raise GrokpipeError(f"{what} {path} is not grokpipe's ({FORMATS[kind] if kind else 'a JSON object'})")
    return data


def _cmd_aggregate(args) -> int:
    from .files import check_output
    from .provenance import software
    from .store import aggregate, shard_files

    check_output(args.out, "metrics", "--out")
    shards = args.shards or shard_files(args.results)
    simulation = _read_json(args.simulation, "simulation results", "simulation") if args.simulation else None
    count = aggregate(shards, args.out, simulation, software())
    print(f"{count} runs from {len(shards)} shard files -> {args.out}")
    return 0


def _add_band(sub) -> None:
    p = sub.add_parser("band", help="where semi-grokking's first stage turned from chance to full accuracy")
    p.add_argument("shards", type=Path, nargs="*", help="the first stage's shard files")
    p.add_argument("--sizes", type=_integer_up_to(1000), required=True, help="training set sizes to place across the band")
    p.add_argument("--out", type=Path, required=True, help="the band (JSON) the second stage is placed by")
    p.set_defaults(func=_cmd_band)


def _cmd_band(args) -> int:
    from .analysis import semigrok_band
    from .files import check_output, write_json
    from .store import read_shard

    check_output(args.out, "band", "--out")
    runs = [run for path in args.shards for run in read_shard(path).runs]
    band = semigrok_band(runs, args.sizes)
    write_json(args.out, "band", band)
    print(f"band: D {band['low']}-{band['high']}, second stage at D {band['sizes']}" if band["sizes"]
          else f"no seed turned from chance to full accuracy over D {band['searched']}: no second stage")
    return 0


def _add_claims(sub) -> None:
    p = sub.add_parser("claims", help="the paper's predictions P1-P4 measured on the results")
    p.add_argument("--metrics", type=Path, default=DEFAULT_RESULTS / "metrics.h5")
    p.add_argument("--band", type=Path, help="the semi-grokking band (default: semigrok_band.json beside METRICS)")
    p.add_argument("--markdown", type=Path, help="write the report as Markdown")
    p.add_argument("--json", type=Path, help="write the claims as JSON")
    p.set_defaults(func=_cmd_claims)


def _cmd_claims(args) -> int:
    from .analysis import group_by
    from .claims import all_claims, claims_markdown
    from .files import check_distinct, check_output, write_json, write_text
    from .provenance import provenance_summary
    from .store import read_metrics

    check_distinct(**{"--markdown": args.markdown, "--json": args.json})
    for option, path, kind in (("--markdown", args.markdown, "claims"), ("--json", args.json, "claims")):
        if path:
            check_output(path, kind, option)
    band_path = args.band or args.metrics.with_name("semigrok_band.json")
    band = _read_json(band_path, "semi-grokking band", "band") if band_path.exists() else None
    runs = read_metrics(args.metrics)
    claims = all_claims(group_by(runs, "experiment"), band)
    provenance = provenance_summary(runs)
    if args.markdown:
        write_text(args.markdown, claims_markdown(claims, provenance), "claims report")
    if args.json:
        write_json(args.json, "claims", {"provenance": provenance, "claims": [c.as_dict() for c in claims]})
    for c in claims:
        print(f"{c.id:14} {c.verdict:8} {c.measured}")
    return 0


def _add_figures(sub) -> None:
    from .figures import FIGURES

    p = sub.add_parser("figures", help="draw the paper's figures from a metrics file",
                       description=f"Figures: {', '.join(FIGURES)}.")
    p.add_argument("--metrics", type=Path, default=DEFAULT_RESULTS / "metrics.h5")
    p.add_argument("--out-dir", type=Path, default=DEFAULT_RESULTS / "figures")
    p.add_argument("--only", nargs="+", metavar="FIGURE", help="draw only these figures")
    p.add_argument("--dpi", type=_integer_up_to(1200), default=150)
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
    p = sub.add_parser("plan", help="what a scale of the pipeline trains, what it costs, and its critical path")
    p.add_argument("--config", type=Path, default=Path("config.yaml"))
    p.add_argument("--scale", help="override the config's scale (quick, paper)")
    p.add_argument("--throughput", type=Path,
                   help="a measured throughput: the JSON of `grokpipe bench --json` or benchmarks/gpu_check.py "
                        "(default: the scale's `throughput` in the config)")
    p.add_argument("--jobs", type=_threads, default=2, help="jobs at once (cores, or GPUs), for the makespan estimate")
    p.set_defaults(func=_cmd_plan)


def _cmd_plan(args) -> int:
    from dataclasses import replace

    from rich.console import Console
    from rich.table import Table

    from .config import Throughput, load_checked_config, load_plan, plan_cost

    config = load_checked_config(args.config)
    if args.scale:
        config["scale"] = args.scale
    plan = load_plan(config)
    if args.throughput:
        measured = _read_json(args.throughput, "throughput")
        fit = measured.get("throughput")
        if isinstance(fit, dict) and isinstance(fit.get(plan.scale), dict):  # grokpipe bench: one fit per model shape
            fit = fit[plan.scale]
        if not isinstance(fit, dict) or not all(isinstance(fit.get(k), (int, float)) and fit[k] > 0
                                                for k in ("model_steps_per_s", "example_steps_per_s")):
            raise GrokpipeError(f"--throughput {args.throughput} has no fitted throughput (model_steps_per_s, "
                                f"example_steps_per_s)")
        plan = replace(plan, throughput=Throughput(fit["model_steps_per_s"], fit["example_steps_per_s"],
                                                   f"{args.throughput}"))
    source = plan.throughput.source
    device = plan.settings["device"]
    table = Table(title=f"{plan.scale} scale on {device}")
    for col in ("experiment", "shards", "runs", "run-steps", "PFLOP", "job-hours", "steps"):
        table.add_column(col, justify="right")

    def cells(name: str, row: dict) -> list[str]:
        return [name, str(row["shards"]), str(row["runs"]), f"{row['run_steps']:.3g}", f"{row['flops'] / 1e15:.3g}",
                f"{row['seconds'] / 3600:.3g}", "caps" if row["stops_early"] else "fixed"]

    cost = plan_cost(plan)
    for experiment, row in cost.items():
        table.add_row(*cells(experiment, row))
    capped = [experiment for experiment, row in cost.items() if row["stops_early"]]
    total = {k: sum(row[k] for row in cost.values()) for k in next(iter(cost.values())) if k != "stops_early"}
    table.add_row(*cells("total", {**total, "stops_early": bool(capped)}))
    console = Console()
    console.print(table)
    console.print(f"throughput from {source}: {plan.throughput.model_steps_per_s:.4g} model-steps/s and "
                  f"{plan.throughput.example_steps_per_s:.4g} example-steps/s per job", soft_wrap=True)
    path_seconds, chain = plan.critical_path()
    console.print(f"critical path: {path_seconds / 60:.1f} min ({' -> '.join(f'{j.experiment}/{j.name}' for j in chain)}); "
                  f"total / {args.jobs} jobs at once: {total['seconds'] / args.jobs / 60:.1f} min; makespan at least "
                  f"{max(path_seconds, total['seconds'] / args.jobs) / 60:.1f} min"
                  + (" if every run trains to its cap" if capped else "")
                  + ("; the adaptive semi-grokking stage is priced once its band is known" if plan.adaptive else ""),
                  soft_wrap=True)
    if capped:
        console.print(f"{', '.join(capped)}: each run stops once it has converged, so these steps and hours are caps "
                      f"and the pipeline takes less", soft_wrap=True)
    retries = {job: plan.retries_needed(job) for job in plan.jobs.values()}
    longest = max(retries, key=retries.get, default=None)
    if longest is not None and retries[longest]:
        limit = plan.settings["resources"]["runtime_max_minutes"]
        over = sum(1 for n in retries.values() if n)
        console.print(f"{over} jobs outlast runtime_max_minutes ({limit:g} min): each stops at the limit, saves its "
                      f"checkpoint and resumes on a retry; the longest ({longest.experiment}/{longest.name}) needs "
                      f"--retries {retries[longest]} or more", soft_wrap=True)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="grokpipe", description="Reproduce 'Explaining grokking through circuit efficiency'.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for add in (_add_train, _add_bench, _add_simulate, _add_aggregate, _add_band, _add_claims, _add_figures, _add_tui,
                _add_plan):
        add(sub)
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
