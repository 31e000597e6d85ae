"""What a GPU machine runs, exercised here: it has only torch, numpy, h5py, rich, pyyaml and pytest
(plus matplotlib), so the trainer, the bench, the CUDA tests and the GPU check must import nothing
else; and the GPU check's every step, and the long semi-grokking probe's, run in a CPU dry mode."""

import json
import os
import subprocess
import sys
from pathlib import Path

from grokpipe.spec import BACKENDS

REPO = Path(__file__).resolve().parents[1]
ABSENT_ON_GPU_MACHINE = ("snakemake", "textual", "jsonschema")
BLOCKER = f"""
import sys
class _Absent:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {ABSENT_ON_GPU_MACHINE!r}:
            raise ImportError(f"{{name}} is not installed on the GPU machine")
        return None
sys.meta_path.insert(0, _Absent())
"""


def _gpu_machine_env(tmp_path: Path) -> dict:
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(BLOCKER)
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)])}


def _dry_run(tmp_path: Path, script: str, out: Path, report: str, *args: str) -> dict:
    """A GPU-machine script under benchmarks/ in its CPU dry mode, with only what a GPU machine has;
    returns the JSON report it wrote."""
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / script), str(out), "--device", "cpu", "--small",
                           *args], env=_gpu_machine_env(tmp_path), cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads((out / report).read_text())


def test_trainer_bench_and_cuda_tests_import_only_what_a_gpu_machine_has(tmp_path):
    code = f"""
import importlib, sys
for name in ("grokpipe.train", "grokpipe.bench", "grokpipe.cli", "grokpipe.checkpoint", "tests.test_cuda"):
    importlib.import_module(name)
from grokpipe.cli import main
assert main(["train", "--task", "add", "--p", "11", "--d-model", "8", "--n-heads", "2", "--d-head", "4",
             "--d-mlp", "16", "--n-train", "50", "--steps", "5", "--threads", "1", "--quiet",
             "--single-pass", "--out", sys.argv[1]]) == 0
absent = [m for m in sys.modules if m.split(".")[0] in {ABSENT_ON_GPU_MACHINE!r}]
assert not absent, absent
try:
    import textual  # noqa: F401
except ImportError:
    pass
else:
    raise AssertionError("the blocker did not block")
"""
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "s.h5")], env=_gpu_machine_env(tmp_path),
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


def test_the_gpu_check_runs_every_step_in_a_cpu_dry_mode(tmp_path):
    out = tmp_path / "check"
    report = _dry_run(tmp_path, "gpu_check.py", out, "gpu-check.json")
    assert report["format"] == "grokpipe-gpu-check-1" and report["ok"]
    assert report["steps"]["pytest"]["exit"] == 0 and "skipped" in report["steps"]["pytest"]["tail"]
    assert set(report["bench"]) == set(BACKENDS)
    assert report["throughput"]["model_steps_per_s"] > 0 and report["throughput"]["example_steps_per_s"] > 0
    shards = {f"{b}{d}": True for b in BACKENDS for d in ("", " deterministic")}
    assert {name: r["model_steps_per_s"] > 0 for name, r in report["paper_shard"].items()} == shards
    assert "paper-scale shard" in (out / "gpu-check.log").read_text()
    # grokpipe plan prices the paper scale from it
    plan = subprocess.run([sys.executable, "-m", "grokpipe", "plan", "--scale", "paper", "--throughput",
                           str(out / "gpu-check.json")], cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "400"})
    assert plan.returncode == 0 and f"throughput from {out / 'gpu-check.json'}" in plan.stdout, plan.stderr


def test_the_long_semigrok_probe_judges_each_budget_on_the_curves_cut_there(tmp_path):
    """benchmarks/semigrok_long.py in its CPU dry mode, with what a GPU machine has: each budget's
    finals are the curves' final test accuracy (mean of the last evaluations) cut at that step, every
    run is counted once, and the last budget's verdicts are P4's on the runs themselves."""
    import numpy as np

    from grokpipe.analysis import FINAL_EVALS, semigrok_status
    from grokpipe.store import read_shard

    out, work = tmp_path / "long", tmp_path / "work"
    settings = ("--work", str(work), "--weight-decay", "2")  # the config's weight decay, 1, replaced
    report = _dry_run(tmp_path, "semigrok_long.py", out, "semigrok-long.json", *settings)
    runs = read_shard(out / "semigrok-long.h5").runs
    assert report["format"] == "grokpipe-semigrok-long-1" and [c["cap"] for c in report["chunks"]] == [100, 200]
    assert len(runs) == 4 and all(r.eval_step[-1] == 200 and r.hparams["weight_decay"] == 2 for r in runs)
    assert report["settings"]["weight_decay"] == 2
    for budget in report["budgets"]:
        for size, counts in budget["by_size"].items():
            group = [r for r in runs if r.hparams["n_train"] == int(size)]
            at = [np.mean(r.curves["test_acc"][r.eval_step <= budget["steps"]][-FINAL_EVALS:]) for r in group]
            assert counts["finals"] == [round(a, 3) for a in at]
            assert sum(counts[k] for k in ("semi", "grokked", "below", "middling")) == len(group)
    last = report["budgets"][-1]
    assert last["semi"] == sum(semigrok_status(r).semi for r in runs)
    # a second call with the same --work continues the shard, the first call's budgets kept
    again = _dry_run(tmp_path, "semigrok_long.py", out, "semigrok-long.json", *settings)
    assert [c["cap"] for c in again["chunks"]] == [100, 200, 400] and again["budgets"][:2] == report["budgets"]
    assert all(r.eval_step[-1] == 400 for r in read_shard(out / "semigrok-long.h5").runs)


def test_the_long_probe_doubles_its_cap_within_the_budget_and_the_step_limit(benchmark_script):
    probe = benchmark_script("semigrok_long")
    assert probe.next_cap(2500, rate=200, seconds_left=600, first_cap=2500, max_steps=None) == 5000  # doubled
    assert probe.next_cap(40000, rate=200, seconds_left=100, first_cap=2500, max_steps=None) == 60000  # what fits
    assert probe.next_cap(80000, rate=200, seconds_left=600, first_cap=2500, max_steps=121000) == 120000  # a limit, rounded
    assert probe.next_cap(5000, rate=200, seconds_left=10, first_cap=2500, max_steps=None) == 5000  # nothing fits
