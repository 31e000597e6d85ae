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
    p.add_argument("--n-train", type=_positive_int, nargs="+", required=True, metavar="D", help="training set sizes")
    p.add_argument("--weight-decay", type=_float, nargs="+", default=[1.0], metavar="WD")
    p.add_argument("--seed", type=_non_negative_int, nargs="+", default=[0], help="init and split seeds")
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

    from .model import ModelConfig
    from .spec import EvalSchedule, RunSpec, ShardSpec
    from .tasks import get_task, n_elements, validate_task
    from .train import train_shard

    get_task(args.task)
    validate_task(args.task, args.p)
    runs = tuple(
        RunSpec(n_train=d, weight_decay=wd, seed=s, lr=args.lr, random_labels=args.random_labels)
        for d, wd, s in itertools.product(args.n_train, args.weight_decay, args.seed)
    )
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


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="grokpipe", description="Reproduce 'Explaining grokking through circuit efficiency'.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_train(sub)
    _add_bench(sub)
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
