"""The machine or the code? Trainer seconds of the shards two pipeline runs share.

    python benchmarks/compare_runs.py BEFORE/results AFTER/results [--json FILE]

The project's CPUs change speed from hour to hour (docs/speed.md, "The quick pipeline"), so two
pipelines' wall times alone cannot say what a change did. A shard that both runs trained to the
same step (the same name, so the same spec and numerics; the same step, so the same training)
did the same work in both: the ratio of its trainer seconds measures the machine. (Between the two
CPU vendors, whose rounding differs, the runs inside a shard may stop at other steps: compare
runs of one machine type.) The shards only
one run has, or that stopped at another step, are what the change touched. Prints, per experiment
and in all, the shared shards' seconds and their ratio, and the seconds of the rest on each side.

Reads each shard file's progress row (its step and trainer wall seconds), not its curves.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from grokpipe.errors import GrokpipeError  # noqa: E402
from grokpipe.store import read_shard  # noqa: E402


def shard_progress(results: Path) -> dict[str, tuple[float, float]]:
    """``experiment/shard`` -> (step, trainer wall seconds) of every finished shard under ``results/runs``."""
    progress = {}
    for path in sorted((results / "runs").glob("*/*.h5")):
        runs = read_shard(path, with_curves=False).runs
        if runs and runs[0].progress.get("done"):
            progress[f"{path.parent.name}/{path.stem}"] = (runs[0].progress["step"], runs[0].progress["wall_seconds"])
    return progress


def compare(before: dict[str, tuple[float, float]], after: dict[str, tuple[float, float]]) -> dict:
    """Per experiment: the shared shards' seconds on each side and their ratio, and the seconds of
    the shards that are not shared (only on one side, or at another step)."""
    table: dict[str, dict] = {}

    def row(name: str) -> dict:
        return table.setdefault(name.split("/")[0], {"shared": 0, "before": 0.0, "after": 0.0,
                                                     "only_before": 0.0, "only_after": 0.0})

    for name, (step, seconds) in before.items():
        if name in after and after[name][0] == step:
            r = row(name)
            r["shared"] += 1
            r["before"] += seconds
            r["after"] += after[name][1]
        else:
            row(name)["only_before"] += seconds
    for name, (step, seconds) in after.items():
        if not (name in before and before[name][0] == step):
            row(name)["only_after"] += seconds
    total = {k: sum(r[k] for r in table.values()) for k in ("shared", "before", "after", "only_before", "only_after")}
    for r in [*table.values(), total]:
        r["ratio"] = r["after"] / r["before"] if r["before"] > 0 else float("nan")
    return {"experiments": dict(sorted(table.items())), "total": total}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path, help="a pipeline's results folder")
    parser.add_argument("after", type=Path)
    parser.add_argument("--json", type=Path, help="also write the comparison here")
    args = parser.parse_args()
    for folder in (args.before, args.after):
        if not (folder / "runs").is_dir():
            print(f"compare_runs: {folder} has no runs/ folder: give a pipeline's results folder", file=sys.stderr)
            return 2
    try:
        result = compare(shard_progress(args.before), shard_progress(args.after))
    except GrokpipeError as e:  # a torn or foreign shard file
        print(f"compare_runs: {e}", file=sys.stderr)
        return 2
    from rich.console import Console
    from rich.table import Table

    table = Table(title="trainer seconds: shards both runs trained to the same step, and the rest")
    table.add_column("experiment", no_wrap=True)
    for header in ("shared", "before s", "after s", "ratio", "rest before s", "rest after s"):
        table.add_column(header, justify="right")
    for name, r in [*result["experiments"].items(), ("all", result["total"])]:
        table.add_row(name, str(r["shared"]), f"{r['before']:.0f}", f"{r['after']:.0f}", f"{r['ratio']:.3f}",
                      f"{r['only_before']:.0f}", f"{r['only_after']:.0f}")
    Console().print(table)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
