"""benchmarks/compare_runs.py: the trainer seconds of the shards two pipeline runs share, on
constructed results folders."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from grokpipe.store import ShardWriter

REPO = Path(__file__).resolve().parents[1]


def _shard(results: Path, name: str, step: int, seconds: float, done: bool = True) -> None:
    experiment, shard = name.split("/")
    path = results / "runs" / experiment / f"{shard}.h5"
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = ShardWriter(path, {"identity": shard, "experiment": experiment}, [("r0", {"n_train": 100})], ["test_acc"])
    writer.append(step, {"test_acc": np.array([0.5])}, step, seconds)
    writer.set_progress(step, step, seconds, done=done)
    writer.close()


@pytest.fixture
def folders(tmp_path):
    before, after = tmp_path / "before" / "results", tmp_path / "after" / "results"
    _shard(before, "ungrok/add-a", 1000, 10.0)
    _shard(after, "ungrok/add-a", 1000, 13.0)  # shared: the same step
    _shard(before, "ungrok/add-b", 2000, 20.0)
    _shard(after, "ungrok/add-b", 1500, 14.0)  # the same name, stopped at another step: not shared
    _shard(before, "pretrain/add-c", 500, 5.0)
    _shard(after, "pretrain/add-c", 500, 6.0)
    _shard(after, "pretrain/add-d", 800, 8.0)  # only after
    _shard(after, "grok/add-e", 300, 3.0, done=False)  # still training: left out
    return before, after


def test_shared_shards_are_those_trained_to_the_same_step_and_their_ratio_is_the_machines(folders, benchmark_script):
    m = benchmark_script("compare_runs")
    before, after = folders
    result = m.compare(m.shard_progress(before), m.shard_progress(after))
    ungrok, pretrain, total = result["experiments"]["ungrok"], result["experiments"]["pretrain"], result["total"]
    assert (ungrok["shared"], ungrok["before"], ungrok["after"], ungrok["ratio"]) == (1, 10.0, 13.0, 1.3)
    assert (ungrok["only_before"], ungrok["only_after"]) == (20.0, 14.0)
    assert (pretrain["shared"], pretrain["ratio"], pretrain["only_after"]) == (1, 1.2, 8.0)
    assert "grok" not in result["experiments"]
    assert (total["shared"], total["before"], total["after"]) == (2, 15.0, 19.0)
    assert total["ratio"] == pytest.approx(19 / 15)


def test_a_folder_without_runs_is_a_one_line_error(folders, tmp_path):
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "compare_runs.py"), str(tmp_path), str(folders[1])],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "no runs/ folder" in done.stderr
