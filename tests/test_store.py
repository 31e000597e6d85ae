"""The run store: live SWMR files, aggregation, the summary table, and files that are not ours."""

import h5py
import numpy as np
import pytest

from grokpipe.store import (
    StoreError,
    aggregate,
    read_metrics,
    read_shard,
    read_summary,
    scan_results,
)

from .fakes import write_shard


def test_aggregation_keeps_every_run_and_its_summary_row(tmp_path):
    a = write_shard(tmp_path / "runs" / "ungrok" / "add-aaaaaaaaaa.h5", "ungrok", [(100, 1.0, 0), (200, 1.0, 0)])
    b = write_shard(tmp_path / "runs" / "ungrok" / "sub-bbbbbbbbbb.h5", "ungrok", [(100, 1.0, 0)], task="sub")
    assert a is None and b is None  # done shards are closed
    shards = sorted((tmp_path / "runs").glob("*/*.h5"))
    assert aggregate(shards, tmp_path / "metrics.h5") == 3
    runs = read_metrics(tmp_path / "metrics.h5")
    assert len({r.run_id for r in runs}) == 3  # the same (D, wd, seed) in two tasks stays two runs
    summary = read_summary(tmp_path / "metrics.h5")
    assert len(summary) == 3 and sorted(summary["n_train"]) == [100, 100, 200]
    by_key = {r.run_id: r for r in runs}
    for row in summary:
        run = by_key[row["key"].decode()]
        assert row["test_acc"] == pytest.approx(run.final("test_acc"))
        assert row["task"].decode() == run.params["task"]


def test_a_live_file_reads_as_running_and_plain_h5py_can_follow_it(tmp_path):
    path = tmp_path / "runs" / "grok" / "add-cccccccccc.h5"
    writer = write_shard(path, "grok", [(1000, 1.0, 0)], evals=2, done=False)
    with h5py.File(path, "r", swmr=True, libver="latest") as f:
        steps = f["eval_step"]
        assert steps.shape == (2,)
        writer.append(500, {m: np.array([0.5]) for m in writer.metrics}, 1000, 3.0)
        steps.refresh()
        assert steps.shape == (3,) and steps[-1] == 500
    (status,) = scan_results(tmp_path)
    assert status.state == "running" and status.step == 500 and status.steps_total == 1000
    writer.close()


def test_files_that_are_not_shards_are_refused_in_one_line(tmp_path):
    (tmp_path / "torn.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 10)
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = 1
    for name, message in (("torn.h5", "cannot read"), ("other.h5", "not a grokpipe shard file"),
                          ("missing.h5", "no such results file")):
        with pytest.raises(StoreError, match=message) as info:
            read_shard(tmp_path / name)
        assert "\n" not in str(info.value)
