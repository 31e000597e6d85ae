"""The run store: live SWMR files, aggregation, incremental reads, provenance, and files that are
corrupt, truncated, crafted or not ours."""

import json
import multiprocessing
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from grokpipe.monitor import ResultsScanner
from grokpipe.spec import NUMERICS_VERSION
from grokpipe.store import StoreError, aggregate, read_metrics, read_metrics_provenance, read_shard

from .fakes import write_shard


def test_aggregation_keeps_every_run_and_its_provenance(tmp_path):
    a = write_shard(tmp_path / "runs" / "ungrok" / "add-aaaaaaaaaa.h5", "ungrok", [(100, 1.0, 0), (200, 1.0, 0)])
    b = write_shard(tmp_path / "runs" / "ungrok" / "sub-bbbbbbbbbb.h5", "ungrok", [(100, 1.0, 0)], task="sub")
    assert a is None and b is None  # done shards are closed
    shards = sorted((tmp_path / "runs").glob("*/*.h5"))
    assert aggregate(shards, tmp_path / "metrics.h5", provenance={"grokpipe_version": "9.9", "numerics_version": 7}) == 3
    runs = read_metrics(tmp_path / "metrics.h5")
    assert len({r.run_id for r in runs}) == 3  # the same (D, wd, seed) in two tasks stays two runs
    assert {r.provenance["numerics_version"] for r in runs} == {NUMERICS_VERSION} and all(r.provenance["threads"] == 1 for r in runs)
    assert read_metrics_provenance(tmp_path / "metrics.h5") == {"grokpipe_version": "9.9", "numerics_version": 7}
    assert "numerics_version" not in runs[0].hparams


def test_a_live_file_reads_as_running_and_plain_h5py_can_follow_it(tmp_path):
    path = tmp_path / "runs" / "grok" / "add-cccccccccc.h5"
    writer = write_shard(path, "grok", [(1000, 1.0, 0)], evals=2, done=False)
    with h5py.File(path, "r", swmr=True, libver="latest") as f:
        history = f["history"]
        columns = json.loads(f.attrs["columns"])
        assert history.shape == (2, len(columns)) and columns[:2] == ["eval_step", "eval_wall"]
        writer.append(500, {m: np.array([0.5]) for m in writer.metrics}, 1000, 3.0)
        history.refresh()
        assert history.shape[0] == 3 and history[-1, 0] == 500
        assert history[-1, columns.index("test_acc/r1000-1-0")] == 0.5
    (status,) = ResultsScanner(tmp_path).scan()
    assert status.state == "running" and status.step == 500 and status.steps_total == 1000
    writer.close()


def test_an_incremental_read_of_a_growing_file_equals_a_full_read(tmp_path):
    path = tmp_path / "s.h5"
    writer = write_shard(path, "grok", [(1000, 1.0, 0), (900, 1.0, 1)], evals=5, done=False)
    first = read_shard(path)
    for step in (500, 600, 700):
        writer.append(step, {m: np.array([step / 1e3, step / 2e3]) for m in writer.metrics}, 1000, step / 100)
    later = read_shard(path, previous=first)
    full = read_shard(path)
    writer.close()
    assert later.rows == full.rows == 8
    for a, b in zip(later.runs, full.runs):
        assert np.array_equal(a.eval_step, b.eval_step) and np.array_equal(a.eval_wall, b.eval_wall, equal_nan=True)
        assert all(np.array_equal(a.curves[m], b.curves[m]) for m in a.curves)


def test_a_run_that_stopped_ends_at_its_own_last_evaluation_in_full_and_incremental_reads(tmp_path):
    path = tmp_path / "s.h5"
    writer = write_shard(path, "ungrok", [(1000, 1.0, 0), (900, 1.0, 1)], evals=5, done=False)
    first = read_shard(path)
    for step in (500, 600, 700):  # the second run stopped (converged) at the shard's fifth evaluation
        writer.append(step, {m: np.array([step / 1e3, np.nan]) for m in writer.metrics}, 1000, step / 100)
    later, full = read_shard(path, previous=first), read_shard(path)
    writer.close()
    for read in (later, full):
        going, stopped = read.runs
        assert len(going.eval_step) == 8 and going.curves["test_acc"][-1] == 0.7
        assert np.array_equal(stopped.eval_step, first.runs[1].eval_step)
        assert all(np.array_equal(stopped.curves[m], first.runs[1].curves[m]) for m in stopped.curves)
    aggregate([path], tmp_path / "metrics.h5")
    assert sorted(len(r.eval_step) for r in read_metrics(tmp_path / "metrics.h5")) == [5, 8]


def test_the_scanner_reopens_only_files_that_changed_and_live_ones_nobody_plots_less_often(tmp_path):
    from grokpipe.monitor import BACKGROUND_SECONDS

    write_shard(tmp_path / "runs" / "grok" / "add-aaaaaaaaaa.h5", "grok", [(1000, 1.0, 0)])
    live = tmp_path / "runs" / "grok" / "add-bbbbbbbbbb.h5"
    writer = write_shard(live, "grok", [(1000, 1.0, 0)], done=False)
    scanner = ResultsScanner(tmp_path)
    scanner.scan(now=0.0)
    assert scanner.reads == 2
    scanner.scan(now=1.0)
    assert scanner.reads == 2  # nothing changed: nothing opened
    writer.append(9999, {m: np.array([0.5]) for m in writer.metrics}, 20000, 3.0)
    scanner.scan(now=2.0)
    assert scanner.reads == 2  # changed, but nobody plots it: read again only after BACKGROUND_SECONDS
    statuses = {s.name: s for s in scanner.scan(now=BACKGROUND_SECONDS + 0.5)}
    assert scanner.reads == 3 and statuses["add-bbbbbbbbbb"].step == 9999
    scanner.follow = {live}
    writer.append(10050, {m: np.array([0.5]) for m in writer.metrics}, 20000, 3.0)
    statuses = {s.name: s for s in scanner.scan(now=BACKGROUND_SECONDS + 1.0)}
    assert scanner.reads == 4 and statuses["add-bbbbbbbbbb"].step == 10050  # plotted: read at once
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


def _crafted(path, edit):
    write_shard(path, "grok", [(100, 1.0, 0)])
    with h5py.File(path, "r+") as f:
        edit(f)


def _replace(f, name, data):
    del f[name]
    f[name] = data


CRAFTED = {
    "history is a group": lambda f: (f.__delitem__("history"), f.create_group("history")),
    "history is text": lambda f: _replace(f, "history", np.array([[b"x"] * 8] * 20)),
    "history has a column too many": lambda f: _replace(f, "history", np.zeros((20, 9))),
    "history is 1-D": lambda f: _replace(f, "history", np.zeros(20)),
    "history is missing": lambda f: f.__delitem__("history"),
    "runs_json holds a number": lambda f: f.attrs.__setitem__("runs_json", "42"),
    "metrics holds a number": lambda f: f.attrs.__setitem__("metrics", "7"),
    "metrics names one metric more": lambda f: f.attrs.__setitem__("metrics", json.dumps(["a"] * 7)),
    "runs_json is not JSON": lambda f: f.attrs.__setitem__("runs_json", "{oops"),
    "progress is short": lambda f: _replace(f, "progress", [1.0]),
    "progress is a group": lambda f: (f.__delitem__("progress"), f.create_group("progress")),
    "runs_json lists non-pairs": lambda f: f.attrs.__setitem__("runs_json", json.dumps([1, 2, 3])),
}


@pytest.mark.parametrize("name", list(CRAFTED))
def test_a_crafted_shard_is_a_store_error_not_a_crash(tmp_path, name):
    path = tmp_path / "runs" / "grok" / "add-aaaaaaaaaa.h5"
    _crafted(path, CRAFTED[name])
    with pytest.raises(StoreError) as info:
        read_shard(path)
    assert "\n" not in str(info.value)


def _read_in_child(path, queue):
    try:
        read_shard(path)
        queue.put("ok")
    except StoreError:
        queue.put("StoreError")
    except BaseException as e:  # noqa: BLE001 - the test reports any other outcome
        queue.put(f"{type(e).__name__}: {e}")


def _variants(good: bytes):
    """Truncations at many offsets and single-byte flips at many positions of a real shard file."""
    rng = np.random.default_rng(0)
    for cut in sorted(set(np.linspace(0, len(good) - 1, 40).astype(int)) | {2048}):
        yield f"truncated at {cut}", good[:cut]
    for position in sorted(set(rng.integers(0, len(good), 60))):
        flipped = bytearray(good)
        flipped[position] ^= 0xFF
        yield f"byte {position} flipped", bytes(flipped)


def test_fuzz_truncated_and_flipped_shards_fail_fast_with_a_store_error(tmp_path):
    """Every damaged copy of a real shard reads as a StoreError (or, if the damage hit only data,
    successfully) within a second: never a hang (HDF5's SWMR retries) and never another exception.
    The live-writer variant (the file left marked open for writing by a killed process) is included."""
    source = tmp_path / "source.h5"
    done = subprocess.run([sys.executable, "-m", "grokpipe", "train", "--task", "add", "--p", "11", "--d-model", "8",
                           "--n-heads", "2", "--d-head", "4", "--d-mlp", "16", "--n-train", "50", "--steps", "30",
                           "--circuits", "--quiet", "--threads", "1", "--out", str(source)], timeout=120)
    assert done.returncode == 0
    good = source.read_bytes()
    live = tmp_path / "live.h5"
    writer = write_shard(live, "grok", [(100, 1.0, 0)], done=False)  # open for writing, as a killed writer leaves it
    live_bytes = live.read_bytes()
    writer.close()
    variants = list(_variants(good)) + [(f"live {name}", data) for name, data in _variants(live_bytes)]
    context = multiprocessing.get_context("fork")
    outcomes = {}
    for name, data in variants:
        path = tmp_path / "case.h5"
        path.write_bytes(data)
        queue = context.Queue()
        child = context.Process(target=_read_in_child, args=(path, queue))
        start = time.monotonic()
        child.start()
        child.join(timeout=5)
        if child.is_alive():
            child.kill()
            child.join()
            outcomes[name] = "hang"
            continue
        elapsed = time.monotonic() - start
        result = queue.get(timeout=5)
        outcomes[name] = result if elapsed < 1.5 else f"slow ({elapsed:.1f} s): {result}"
    bad = {name: outcome for name, outcome in outcomes.items() if outcome not in ("ok", "StoreError")}
    assert not bad, bad
    assert sum(o == "StoreError" for o in outcomes.values()) > len(variants) // 2
