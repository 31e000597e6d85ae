"""HDF5 files of runs: the live per-shard files, the aggregated metrics file, and one reading API.

Layout (plain h5py can read it; see docs/hdf5-layout.md):

shard file ``results/runs/<experiment>/<shard>.h5``, written live in SWMR mode::

    /                 attrs: format="grokpipe-shard-1", identity, spec (JSON), task, p, experiment,
                      runs_json (every run's hyperparameters in one read), metrics (curve names)
    /progress         float64 (4,): step, steps_total, wall_seconds, done (0/1)
    /eval_step        int64 (E,): the steps at which the curves were evaluated
    /runs/<run_id>/   attrs: the run's hyperparameters; datasets (E,) float64, one per metric

aggregated file ``results/metrics.h5``::

    /                 attrs: format="grokpipe-metrics-1"
    /summary          compound table, one row per run (hyperparameters and final metrics)
    /simulation_json  the minimal example and Theorem D.4 check (grokpipe simulate), as JSON
    /runs/<experiment>.<shard>.<run_id>/   attrs: hyperparameters + experiment + shard;
                      datasets: eval_step and the curves

Readers open with ``swmr=True`` and retry while a writer is still setting a file up. A file that
is corrupt, truncated or not ours raises :class:`StoreError` (a one-line message), never h5py's
own traceback.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from .errors import GrokpipeError

SHARD_FORMAT = "grokpipe-shard-1"
METRICS_FORMAT = "grokpipe-metrics-1"
BASE_METRICS = ("train_loss", "test_loss", "train_acc", "test_acc", "param_norm", "train_logit")


class StoreError(GrokpipeError):
    """A results file that cannot be read as what it should be."""


@dataclass
class Run:
    """One run: its hyperparameters and its curves (each an array over ``eval_step``)."""

    run_id: str
    params: dict
    eval_step: np.ndarray
    curves: dict[str, np.ndarray]
    progress: dict = field(default_factory=dict)

    def final(self, metric: str, last: int = 1) -> float:
        """Mean of the last ``last`` evaluations of ``metric`` (NaN if absent or empty)."""
        values = self.curves.get(metric)
        if values is None or len(values) == 0:
            return float("nan")
        return float(np.mean(values[-last:]))


# ---------------------------------------------------------------- writing a shard file


def _reason(error: OSError) -> str:
    return error.strerror or str(error).splitlines()[0][:100]


class _writing:
    """Turn an OS error while writing ``path`` (disk full, not a directory, ...) into a one-line StoreError."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self):
        return self

    def __exit__(self, kind, error, tb):
        if kind is not None and issubclass(kind, (OSError, RuntimeError)):  # h5py: RuntimeError on failed flushes
            raise StoreError(f"cannot write {self.path}: {_reason(error)}") from None
        return False


class ShardWriter:
    """Writes one shard file: built complete in memory, written under a temporary name and renamed,
    then appended in SWMR mode.

    Building in memory keeps a full disk an ordinary OSError from a plain file write (HDF5's own
    failed writes surface only in deallocators), so it becomes a one-line error and no torn file."""

    def __init__(self, path: Path, attrs: dict, runs: list[tuple[str, dict]], metrics: list[str],
                 history: dict | None = None, steps_total: int = 0):
        self.path = Path(path)
        self.metrics = list(metrics)
        self.run_ids = [rid for rid, _ in runs]
        image = io.BytesIO()
        with h5py.File(image, "w", libver="latest") as f:
            f.attrs["format"] = SHARD_FORMAT
            for k, v in attrs.items():
                f.attrs[k] = v
            # the same hyperparameters as the per-run attributes, in one read (thousands of runs open fast)
            f.attrs["runs_json"] = json.dumps(runs, default=_plain)
            f.attrs["metrics"] = json.dumps(self.metrics)
            steps = np.asarray((history or {}).get("eval_step", []), dtype=np.int64)
            f.create_dataset("eval_step", data=steps, maxshape=(None,), chunks=(256,))
            f.create_dataset("progress", data=np.array([steps[-1] if len(steps) else 0, steps_total, 0.0, 0.0]))
            group = f.create_group("runs")
            for i, (rid, params) in enumerate(runs):
                g = group.create_group(rid)
                for k, v in params.items():
                    g.attrs[k] = v
                for m in self.metrics:
                    data = np.asarray(history[m][:, i] if history and m in history else [], dtype=np.float64)
                    g.create_dataset(m, data=data, maxshape=(None,), chunks=(256,))
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            with _writing(self.path):
                self.path.parent.mkdir(parents=True, exist_ok=True)
                tmp.write_bytes(image.getbuffer())
                os.replace(tmp, self.path)
        finally:
            with contextlib.suppress(OSError):  # gone after the rename, or never made
                tmp.unlink()
        with _writing(self.path):
            self.file = h5py.File(self.path, "r+", libver="latest")
            self.file.swmr_mode = True
        self._datasets = [[self.file[f"runs/{rid}/{m}"] for m in self.metrics] for rid in self.run_ids]

    def append(self, step: int, values: dict[str, np.ndarray], steps_total: int, wall_seconds: float) -> None:
        """Add one evaluation: ``values[metric]`` has one entry per run."""
        with _writing(self.path):
            self._append(step, values)
        self.set_progress(step, steps_total, wall_seconds, done=False)

    def _append(self, step: int, values: dict[str, np.ndarray]) -> None:
        es = self.file["eval_step"]
        n = es.shape[0] + 1
        es.resize((n,))
        es[n - 1] = step
        for i, row in enumerate(self._datasets):
            for m, ds in zip(self.metrics, row):
                ds.resize((n,))
                ds[n - 1] = values[m][i]

    def set_progress(self, step: int, steps_total: int, wall_seconds: float, done: bool) -> None:
        with _writing(self.path):
            self.file["progress"][...] = [step, steps_total, wall_seconds, float(done)]
            self.file.flush()

    def close(self) -> None:
        self.file.close()


# ---------------------------------------------------------------- reading


def _open(path: Path, retries: int = 5, delay: float = 0.2) -> h5py.File:
    """Open for reading in SWMR mode, retrying while a writer may still be creating the file."""
    last = None
    for attempt in range(retries):
        try:
            return h5py.File(path, "r", swmr=True, libver="latest")
        except FileNotFoundError:
            raise StoreError(f"no such results file: {path}") from None
        except (OSError, KeyError, RuntimeError) as e:  # h5py: RuntimeError for a bad superblock
            last = e
            if attempt + 1 < retries:
                time.sleep(delay)
    raise StoreError(f"cannot read {path}: not a readable HDF5 file ({str(last).splitlines()[0][:80]})")


def _plain(v):
    return v.item() if isinstance(v, np.generic) else str(v)


def _decode(v):
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.generic):
        return v.item()
    return v


def file_format(path: Path) -> str | None:
    """The grokpipe format tag of a readable HDF5 file, or None if it is not one of ours."""
    with _open(path, retries=1) as f:
        return _decode(f.attrs.get("format"))


def read_shard(path: Path, with_curves: bool = True) -> tuple[dict, list[Run]]:
    """Attributes and runs of one shard file (live or finished)."""
    path = Path(path)
    try:
        with _open(path) as f:
            if _decode(f.attrs.get("format")) != SHARD_FORMAT:
                raise StoreError(f"{path} is not a grokpipe shard file")
            attrs = {k: _decode(v) for k, v in f.attrs.items()}
            progress_raw = f["progress"][()]
            eval_step = f["eval_step"][()]
            progress = dict(zip(("step", "steps_total", "wall_seconds", "done"), map(float, progress_raw)))
            progress["done"] = bool(progress["done"])
            listed = json.loads(attrs.pop("runs_json")) if "runs_json" in attrs else None
            metrics = json.loads(attrs.pop("metrics")) if "metrics" in attrs else None
            group = f["runs"]
            runs = []
            for rid, params in listed or [(rid, None) for rid in group]:
                g = group[rid]
                params = dict(params) if params is not None else {k: _decode(v) for k, v in g.attrs.items()}
                params.update(experiment=attrs.get("experiment", ""), shard=path.stem)
                curves = {m: g[m][()] for m in (metrics or g)} if with_curves else {}
                n = min([len(eval_step)] + [len(c) for c in curves.values()])  # a reader may see a half-appended row
                runs.append(Run(rid, params, eval_step[:n], {m: c[:n] for m, c in curves.items()}, progress))
            return attrs, runs
    except StoreError:
        raise
    except (OSError, KeyError, ValueError, RuntimeError) as e:
        raise StoreError(f"cannot read {path}: {str(e).splitlines()[0][:100]}") from None


def shard_files(results_dir: Path) -> list[Path]:
    return sorted(Path(results_dir, "runs").glob("*/*.h5"))


def aggregate(shards: list[Path], out: Path, simulation: dict | None = None) -> int:
    """Write every run of the given shard files (and the simulation results) into one metrics file,
    atomically. Returns the run count."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    rows = []
    try:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = METRICS_FORMAT
            runs_group = f.create_group("runs")
            for path in shards:
                attrs, runs = read_shard(path)
                for run in runs:
                    key = f"{run.params['experiment']}.{run.params['shard']}.{run.run_id}"
                    g = runs_group.create_group(key)
                    for k, v in run.params.items():
                        g.attrs[k] = v
                    g.attrs["steps_total"] = run.progress.get("steps_total", 0)
                    g.create_dataset("eval_step", data=run.eval_step)
                    for m, c in run.curves.items():
                        g.create_dataset(m, data=c)
                    rows.append(_summary_row(key, run))
            f.create_dataset("summary", data=_summary_table(rows))
            if simulation is not None:
                f.create_dataset("simulation_json", data=json.dumps(simulation), dtype=h5py.string_dtype())
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return len(rows)


SUMMARY_FIELDS = (
    ("key", "S64"), ("experiment", "S32"), ("task", "S24"), ("n_train", "i8"), ("weight_decay", "f8"),
    ("seed", "i8"), ("lr", "f8"), ("random_labels", "?"), ("final_step", "i8"),
    ("train_acc", "f8"), ("test_acc", "f8"), ("train_loss", "f8"), ("test_loss", "f8"), ("param_norm", "f8"),
)


def _summary_row(key: str, run: Run) -> tuple:
    p = run.params
    final_step = int(run.eval_step[-1]) if len(run.eval_step) else 0
    return (key, p.get("experiment", ""), p.get("task", ""), p.get("n_train", 0), p.get("weight_decay", 0.0),
            p.get("seed", 0), p.get("lr", 0.0), bool(p.get("random_labels", False)), final_step,
            *(run.final(m) for m in ("train_acc", "test_acc", "train_loss", "test_loss", "param_norm")))


def _summary_table(rows: list[tuple]) -> np.ndarray:
    dtype = np.dtype(list(SUMMARY_FIELDS))
    encoded = [tuple(v.encode() if isinstance(v, str) else v for v in row) for row in rows]
    return np.array(encoded, dtype=dtype)


def read_metrics(path: Path, experiment: str | None = None) -> list[Run]:
    """Every run of the aggregated metrics file (optionally of one experiment)."""
    path = Path(path)
    try:
        with _open(path) as f:
            if _decode(f.attrs.get("format")) != METRICS_FORMAT:
                raise StoreError(f"{path} is not a grokpipe metrics file")
            runs = []
            for key, g in f["runs"].items():
                params = {k: _decode(v) for k, v in g.attrs.items()}
                if experiment is not None and params.get("experiment") != experiment:
                    continue
                curves = {m: g[m][()] for m in g if m != "eval_step"}
                runs.append(Run(key, params, g["eval_step"][()], curves,
                                {"steps_total": params.get("steps_total", 0), "done": True}))
            return runs
    except StoreError:
        raise
    except (OSError, KeyError, ValueError, RuntimeError) as e:
        raise StoreError(f"cannot read {path}: {str(e).splitlines()[0][:100]}") from None


def read_simulation(path: Path) -> dict | None:
    """The minimal-example and Theorem D.4 results stored in a metrics file, if any."""
    try:
        with _open(Path(path)) as f:
            return json.loads(f["simulation_json"][()]) if "simulation_json" in f else None
    except (OSError, ValueError, RuntimeError) as e:
        raise StoreError(f"cannot read the simulation of {path}: {str(e).splitlines()[0][:100]}") from None


def read_summary(path: Path) -> np.ndarray:
    """The one-row-per-run summary table of a metrics file (fast: no curves are read)."""
    try:
        with _open(Path(path)) as f:
            return f["summary"][()]
    except (OSError, KeyError, RuntimeError) as e:
        raise StoreError(f"cannot read the summary of {path}: {str(e).splitlines()[0][:100]}") from None



# ---------------------------------------------------------------- scanning a results directory (TUI)


@dataclass
class ShardStatus:
    """What a results browser shows for one shard file."""

    path: Path
    experiment: str
    state: str  # done | running | stalled | unreadable
    step: int = 0
    steps_total: int = 0
    wall_seconds: float = 0.0
    error: str = ""
    runs: list[Run] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def steps_per_second(self) -> float:
        return self.step / self.wall_seconds if self.wall_seconds > 0 else float("nan")

    @property
    def eta_seconds(self) -> float:
        rate = self.steps_per_second
        return (self.steps_total - self.step) / rate if rate > 0 else float("nan")


STALLED_AFTER_SECONDS = 120.0


def scan_results(results_dir: Path, cache: dict | None = None, now: float | None = None) -> list[ShardStatus]:
    """Every shard file under ``results_dir/runs``, re-reading only files changed since the last scan.

    ``cache`` (a dict the caller keeps) maps path -> (mtime_ns, size, ShardStatus). A file that
    cannot be read is reported as ``unreadable`` with the reason and tried again next time."""
    cache = {} if cache is None else cache
    now = time.time() if now is None else now
    out = []
    for path in shard_files(results_dir):
        try:
            st = path.stat()
        except FileNotFoundError:
            continue
        key = (st.st_mtime_ns, st.st_size)
        cached = cache.get(path)
        if cached and cached[0] == key and cached[1].state != "unreadable":
            status = cached[1]
        else:
            status = _read_status(path)
            cache[path] = (key, status)
        if status.state == "running" and now - st.st_mtime > STALLED_AFTER_SECONDS:
            status.state = "stalled"
        out.append(status)
    for gone in set(cache) - {s.path for s in out}:
        del cache[gone]
    return out


def _read_status(path: Path) -> ShardStatus:
    experiment = path.parent.name
    try:
        attrs, runs = read_shard(path)
    except StoreError as e:
        return ShardStatus(path, experiment, "unreadable", error=str(e))
    p = runs[0].progress if runs else {}
    return ShardStatus(path, attrs.get("experiment") or experiment, "done" if p.get("done") else "running",
                       int(p.get("step", 0)), int(p.get("steps_total", 0)), float(p.get("wall_seconds", 0.0)),
                       runs=runs)
