"""HDF5 files of runs: the live per-shard files, the aggregated metrics file, and one reading API.

Layout (plain h5py can read it; docs/hdf5-layout.md has every field)::

    shard file results/runs/<experiment>/<shard>.h5, written live in SWMR mode
    /                 attrs: format, identity, spec (JSON), task, p, experiment, runs_json, metrics,
                      and the provenance of the process that trained it (grokpipe.provenance.KEYS)
    /progress         float64 (4,): step, steps_total, wall_seconds, done (0/1)
    /history          float64 (E, 2 + K M): one row per evaluation; columns (attribute "columns",
                      JSON) eval_step, eval_wall (training wall seconds), then <metric>/<run_id>
                      for each of the K metrics and M runs: one dataset to append and to read
    /runs/<run_id>    attrs: the run's hyperparameters (as runs_json lists them)

    metrics file results/metrics.h5
    /                 attrs: format, and the provenance of the aggregating process
    /simulation_json  the minimal example and Theorem D.4 check (grokpipe simulate), as JSON
    /runs/<experiment>.<shard>.<run_id>/   attrs: hyperparameters + experiment + shard + steps_total +
                      the training provenance; datasets: eval_step, eval_wall and the curves

Reading never hangs and never raises anything but :class:`StoreError` (one line). A finished file
is opened without SWMR, where HDF5 fails at once on a bad checksum or a truncation. Only a file
that a writer holds open (or a killed writer left marked open) is opened in SWMR mode, with a
bounded number of metadata read attempts: HDF5's SWMR default retries a bad checksum with
sleeps for minutes, which is how a corrupt file used to hang every reader.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import io
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from .errors import GrokpipeError
from .files import FORMATS, atomic_write
from .provenance import KEYS as PROVENANCE_KEYS

SHARD_FORMAT = FORMATS["shard"]
METRICS_FORMAT = FORMATS["metrics"]
BASE_METRICS = ("train_loss", "test_loss", "train_acc", "test_acc", "param_norm", "train_logit")
MAX_ROWS = 10**8  # more evaluations than any schedule makes: a larger shape is a corrupt file
SWMR_READ_ATTEMPTS = 10  # HDF5's SWMR default is 100, with sleeps growing to minutes in all


class StoreError(GrokpipeError):
    """A results file that cannot be read as what it should be."""


@dataclass
class Run:
    """One run: its hyperparameters, its curves (each an array over ``eval_step``) and where it came from."""

    run_id: str
    hparams: dict
    eval_step: np.ndarray
    curves: dict[str, np.ndarray]
    progress: dict = field(default_factory=dict)
    eval_wall: np.ndarray | None = None  # training wall seconds at each evaluation, if recorded
    provenance: dict = field(default_factory=dict)

    def final(self, metric: str, last: int = 1) -> float:
        """Mean of the last ``last`` evaluations of ``metric`` (NaN if absent or empty)."""
        values = self.curves.get(metric)
        if values is None or len(values) == 0:
            return float("nan")
        return float(np.mean(values[-last:]))


# ---------------------------------------------------------------- writing a shard file


def _reason(error: Exception) -> str:
    return getattr(error, "strerror", None) or str(error).splitlines()[0][:100]


@contextlib.contextmanager
def _writing(path: Path):
    """Turn an OS error while writing ``path`` (disk full, ...) into a one-line StoreError."""
    try:
        yield
    except (OSError, RuntimeError) as e:  # h5py: RuntimeError on failed flushes
        raise StoreError(f"cannot write {path}: {_reason(e)}") from None


def history_table(history: dict, metrics: list[str], runs: int) -> np.ndarray:
    """The /history table of a shard file from curves kept as ``{"eval_step": (E,), "eval_wall": (E,),
    metric: (E, runs)}``."""
    steps = np.asarray(history.get("eval_step", []), dtype=np.float64)
    wall = np.asarray(history.get("eval_wall", np.full(len(steps), np.nan)), dtype=np.float64)
    columns = [steps[:, None], wall[:, None]]
    columns += [np.asarray(history[m], dtype=np.float64).reshape(len(steps), runs) if m in history
                else np.full((len(steps), runs), np.nan) for m in metrics]
    return np.concatenate(columns, axis=1)


class ShardWriter:
    """Writes one shard file: built complete in memory, written under a temporary name and renamed,
    then appended in SWMR mode.

    Building in memory keeps a full disk an ordinary OSError from a plain file write (HDF5's own
    failed writes surface only in deallocators), so it becomes a one-line error and no torn file."""

    def __init__(self, path: Path, attrs: dict, runs: list[tuple[str, dict]], metrics: list[str],
                 history: dict | None = None, steps_total: int = 0):
        self.path = Path(path)
        self.metrics = list(metrics)
        history = history or {}
        rows = history_table(history, self.metrics, len(runs))
        image = io.BytesIO()
        with h5py.File(image, "w", libver="latest") as f:
            f.attrs["format"] = SHARD_FORMAT
            for k, v in attrs.items():
                f.attrs[k] = v
            # the same hyperparameters as the per-run attributes, in one read (thousands of runs open fast)
            f.attrs["runs_json"] = json.dumps(runs, default=_plain)
            f.attrs["metrics"] = json.dumps(self.metrics)
            f.attrs["columns"] = json.dumps(["eval_step", "eval_wall"] + [f"{m}/{rid}" for m in self.metrics
                                                                           for rid, _ in runs])
            steps = rows[:, 0]
            f.create_dataset("progress", data=np.array([steps[-1] if len(steps) else 0, steps_total, 0.0, 0.0]))
            f.create_dataset("history", data=rows, maxshape=(None, rows.shape[1]), chunks=(64, rows.shape[1]))
            group = f.create_group("runs")
            for rid, hparams in runs:
                g = group.create_group(rid)
                for k, v in hparams.items():
                    g.attrs[k] = v
        try:
            atomic_write(self.path, lambda tmp: tmp.write_bytes(image.getbuffer()), "shard file")
        except GrokpipeError as e:
            raise StoreError(str(e)) from None
        with _writing(self.path):
            self.file = h5py.File(self.path, "r+", libver="latest")
            self.file.swmr_mode = True
        self._history = self.file["history"]

    def append(self, step: int, values: dict[str, np.ndarray], steps_total: int, wall_seconds: float) -> None:
        """Add one evaluation: ``values[metric]`` has one entry per run."""
        row = np.concatenate([[step, wall_seconds], *(np.asarray(values[m], dtype=np.float64) for m in self.metrics)])
        with _writing(self.path):
            n = self._history.shape[0] + 1
            self._history.resize((n, self._history.shape[1]))
            self._history[n - 1] = row
        self.set_progress(step, steps_total, wall_seconds, done=False)

    def set_progress(self, step: int, steps_total: int, wall_seconds: float, done: bool) -> None:
        with _writing(self.path):
            self.file["progress"][...] = [step, steps_total, wall_seconds, float(done)]
            self.file.flush()

    def close(self) -> None:
        self.file.close()


# ---------------------------------------------------------------- opening without hanging


@functools.cache
def _hdf5_library():
    """h5py's own libhdf5, for the one property h5py does not expose (None where it cannot be found)."""
    candidates = []
    try:
        with open("/proc/self/maps") as maps:
            candidates = [line.split()[-1] for line in maps if "libhdf5" in line and "_hl" not in line]
    except OSError:
        pass
    for path in dict.fromkeys(candidates):
        try:
            lib = ctypes.CDLL(path)
            lib.H5Pset_metadata_read_attempts.argtypes = [ctypes.c_int64, ctypes.c_uint]
            return lib
        except (OSError, AttributeError):
            continue
    return None


def _open_swmr(path: Path) -> h5py.File:
    """SWMR read with a bounded number of metadata read attempts (a corrupt file fails in milliseconds)."""
    lib = _hdf5_library()
    if lib is None:  # cannot bound the retries on this platform: refuse rather than risk a hang
        raise StoreError(f"cannot read {path} while it is being written (SWMR retries cannot be bounded here)")
    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    fapl.set_libver_bounds(h5py.h5f.LIBVER_LATEST, h5py.h5f.LIBVER_LATEST)
    fapl.set_fclose_degree(h5py.h5f.CLOSE_STRONG)
    if lib.H5Pset_metadata_read_attempts(fapl.id, SWMR_READ_ATTEMPTS) < 0:
        raise StoreError(f"cannot read {path}: HDF5 refused the SWMR read settings")
    fid = h5py.h5f.open(str(path).encode(), h5py.h5f.ACC_RDONLY | h5py.h5f.ACC_SWMR_READ, fapl=fapl)
    return h5py.File(fid)


def _being_written(error: OSError) -> bool:
    text = str(error)
    return "already open for write" in text or "unable to lock file" in text


def _open(path: Path, retries: int = 3, delay: float = 0.1, live: bool = False) -> h5py.File:
    """Open a results file for reading: plainly when it is complete, in bounded SWMR mode while a
    writer holds it, retrying briefly while a writer is still setting it up. ``live``: the file was
    being written when last read, so bounded SWMR is tried first (saving a failed plain open)."""
    path = Path(path)
    last: Exception | None = None
    if live:
        try:
            return _open_swmr(path)
        except (OSError, RuntimeError, ValueError):
            pass  # finished, replaced or damaged since: the usual way below says which
    for attempt in range(retries):
        try:
            return h5py.File(path, "r", libver="latest")
        except FileNotFoundError:
            raise StoreError(f"no such results file: {path}") from None
        except OSError as e:
            if not _being_written(e):
                raise StoreError(f"cannot read {path}: not a readable HDF5 file ({_reason(e)[:80]})") from None
            last = e
        try:
            return _open_swmr(path)
        except (OSError, RuntimeError, ValueError) as e:
            last = e
        if attempt + 1 < retries:
            time.sleep(delay)
    raise StoreError(f"cannot read {path}: not readable while being written ({_reason(last)[:80]})")


def _plain(v):
    return v.item() if isinstance(v, np.generic) else str(v)


def _decode(v):
    if isinstance(v, bytes):
        return v.decode(errors="replace")
    if isinstance(v, np.generic):
        return v.item()
    return v


def hdf5_format(path: Path) -> str | None:
    """The grokpipe format tag of a readable HDF5 file, or None if it is not one of ours."""
    with _reading(path), _open(path, retries=1) as f:
        tag = _decode(f.attrs.get("format"))
        return tag if isinstance(tag, str) else None


@contextlib.contextmanager
def _reading(path: Path):
    """Any failure while reading a results file is that file's fault: one line, never a traceback.

    h5py and numpy raise many types on crafted or corrupt files (OSError, KeyError, TypeError,
    ValueError, RuntimeError, AttributeError, ...); the name is kept in the message for diagnosis."""
    try:
        yield
    except StoreError:
        raise
    except MemoryError:
        raise StoreError(f"cannot read {path}: corrupt (a size beyond memory)") from None
    except Exception as e:  # noqa: BLE001 - the boundary where a bad file becomes a one-line error
        raise StoreError(f"cannot read {path}: {type(e).__name__}: {_reason(e)}") from None


# ---------------------------------------------------------------- validated pieces of a file


def _group(parent, name: str, path: Path) -> h5py.Group:
    obj = parent.get(name)
    if not isinstance(obj, h5py.Group):
        raise StoreError(f"cannot read {path}: {name!r} is missing or not a group")
    return obj


def _vector(parent, name: str, path: Path, start: int = 0, kind: str = "fiu", columns: int | None = None) -> np.ndarray:
    """Rows ``start:`` of a numeric dataset: a vector, or with ``columns`` a table of that many columns."""
    obj = parent.get(name)
    ok = isinstance(obj, h5py.Dataset) and obj.dtype.kind in kind and obj.ndim == (1 if columns is None else 2)
    if not ok or obj.shape[0] > MAX_ROWS or (columns is not None and obj.shape[1] != columns):
        what = "vector" if columns is None else f"table of {columns} columns"
        raise StoreError(f"cannot read {path}: {name!r} is missing or not a numeric {what}")
    return obj[start:]


def _json_attr(attrs: dict, name: str, kind: type, path: Path):
    try:
        value = json.loads(attrs.pop(name))
    except (KeyError, TypeError, ValueError):
        raise StoreError(f"cannot read {path}: attribute {name!r} is missing or not JSON") from None
    if not isinstance(value, kind):
        raise StoreError(f"cannot read {path}: attribute {name!r} is not a {kind.__name__}")
    return value


def _run_list(listed, path: Path) -> list[tuple[str, dict]]:
    if not all(isinstance(item, list) and len(item) == 2 and isinstance(item[0], str) and isinstance(item[1], dict)
               for item in listed):
        raise StoreError(f"cannot read {path}: attribute 'runs_json' is not a list of [run_id, hyperparameters]")
    return [(rid, hp) for rid, hp in listed]


def _split_provenance(attrs: dict) -> dict:
    return {k: attrs.pop(k) for k in PROVENANCE_KEYS if k in attrs}


# ---------------------------------------------------------------- reading


@dataclass
class ShardRead:
    """A shard file as read: root attributes, runs, and what a later incremental read needs."""

    attrs: dict
    runs: list[Run]
    rows: int  # evaluations read
    listed: list = field(default_factory=list)  # (run_id, hyperparameters) as the file lists them
    metrics: list = field(default_factory=list)
    provenance: dict = field(default_factory=dict)

    @property
    def identity(self) -> str:
        return str(self.attrs.get("identity", ""))

    @property
    def live(self) -> bool:
        return bool(self.runs) and not self.runs[0].progress.get("done", True)


def read_shard(path: Path, with_curves: bool = True, previous: ShardRead | None = None) -> ShardRead:
    """Attributes and runs of one shard file (live or finished).

    With ``previous`` (an earlier read of the same file), only evaluations appended since are read
    and joined to it: a live file costs a few rows a refresh, not its whole history."""
    path = Path(path)
    with _reading(path), _open(path, live=previous is not None and previous.live) as f:
        reuse = (previous is not None and with_curves and _decode(f.attrs.get("identity")) == previous.identity
                 and previous.identity)
        if reuse:  # the attributes never change while a shard trains: only its rows grow
            attrs, listed, metrics, provenance = previous.attrs, previous.listed, previous.metrics, previous.provenance
        else:
            attrs, listed, metrics, provenance = _shard_attributes(f, path)
        progress_raw = _vector(f, "progress", path)
        if len(progress_raw) != 4:
            raise StoreError(f"cannot read {path}: 'progress' does not have 4 entries")
        progress = dict(zip(("step", "steps_total", "wall_seconds"), map(float, progress_raw[:3])))
        progress["done"] = bool(progress_raw[3])
        start = previous.rows if reuse else 0
        M = len(listed)
        table = _vector(f, "history", path, start, columns=2 + len(metrics) * M) if with_curves else np.empty((0, 2))
        n = len(table)
        eval_step, eval_wall = table[:, 0].astype(np.int64), table[:, 1]
        tables = {m: table[:, 2 + k * M : 2 + (k + 1) * M] for k, m in enumerate(metrics)} if with_curves else {}
        runs = []
        for i, (rid, hparams) in enumerate(listed):
            steps, wall, curves = eval_step, eval_wall, {m: t[:, i].copy() for m, t in tables.items()}
            if reuse:
                old = previous.runs[i]
                steps, wall = np.concatenate([old.eval_step, steps]), np.concatenate([old.eval_wall, wall])
                curves = {m: np.concatenate([old.curves[m], c]) for m, c in curves.items()}
            hparams = {**hparams, "experiment": attrs.get("experiment", ""), "shard": path.stem}
            evaluated = evaluated_rows(curves, len(steps))
            steps, wall, curves = steps[:evaluated], wall[:evaluated], {m: c[:evaluated] for m, c in curves.items()}
            runs.append(Run(rid, hparams, steps, curves, progress, wall, provenance))
        return ShardRead(attrs, runs, start + n, listed, metrics, provenance)


def evaluated_rows(curves: dict[str, np.ndarray], rows: int) -> int:
    """How many evaluations a run has: a run that stopped (converged) before its shard did is NaN
    in every metric at the shard's later evaluations, and those rows are not the run's."""
    if not curves:
        return rows
    evaluated = ~np.all(np.isnan(np.stack(list(curves.values()))), axis=0)
    return int(np.flatnonzero(evaluated)[-1]) + 1 if evaluated.any() else 0


def _shard_attributes(f: h5py.File, path: Path) -> tuple[dict, list, list, dict]:
    """A shard file's root attributes: the rest, the runs listed, the metric names, the provenance."""
    attrs = {k: _decode(v) for k, v in f.attrs.items()}
    if attrs.get("format") != SHARD_FORMAT:
        raise StoreError(f"{path} is not a grokpipe shard file")
    listed = _run_list(_json_attr(attrs, "runs_json", list, path), path)
    metrics = _json_attr(attrs, "metrics", list, path)
    if not all(isinstance(m, str) for m in metrics):
        raise StoreError(f"cannot read {path}: attribute 'metrics' is not a list of names")
    return attrs, listed, metrics, _split_provenance(attrs)


def shard_files(results_dir: Path) -> list[Path]:
    return sorted(Path(results_dir, "runs").glob("*/*.h5"))


def aggregate(shards: list[Path], out: Path, simulation: dict | None = None, provenance: dict | None = None) -> int:
    """Write every run of the given shard files (and the simulation results) into one metrics file,
    atomically. Returns the run count."""
    resolved = [Path(p).resolve() for p in shards]
    twice = sorted({str(p) for p in resolved if resolved.count(p) > 1})
    if twice:
        raise StoreError(f"shard file given twice: {twice[0]}")
    reads = [read_shard(path) for path in shards]
    count = 0

    def write(tmp: Path) -> None:
        nonlocal count
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = METRICS_FORMAT
            for k, v in (provenance or {}).items():
                f.attrs[k] = v
            runs_group = f.create_group("runs")
            for shard in reads:
                for run in shard.runs:
                    g = runs_group.create_group(f"{run.hparams['experiment']}.{run.hparams['shard']}.{run.run_id}")
                    for k, v in {**run.hparams, **run.provenance}.items():
                        g.attrs[k] = v
                    g.attrs["steps_total"] = run.progress.get("steps_total", 0)
                    g.create_dataset("eval_step", data=run.eval_step)
                    g.create_dataset("eval_wall", data=run.eval_wall)
                    for m, c in run.curves.items():
                        g.create_dataset(m, data=c)
                    count += 1
            if simulation is not None:
                f.create_dataset("simulation_json", data=json.dumps(simulation), dtype=h5py.string_dtype())

    try:
        atomic_write(Path(out), write, "metrics file")
    except GrokpipeError as e:
        raise StoreError(str(e)) from None
    return count


def read_metrics(path: Path, experiment: str | None = None) -> list[Run]:
    """Every run of the aggregated metrics file (optionally of one experiment)."""
    path = Path(path)
    with _reading(path), _open(path) as f:
        if _decode(f.attrs.get("format")) != METRICS_FORMAT:
            raise StoreError(f"{path} is not a grokpipe metrics file")
        runs = []
        for key, g in _group(f, "runs", path).items():
            hparams = {k: _decode(v) for k, v in g.attrs.items()}
            if experiment is not None and hparams.get("experiment") != experiment:
                continue
            provenance = _split_provenance(hparams)
            curves = {m: _vector(g, m, path) for m in g if m not in ("eval_step", "eval_wall")}
            runs.append(Run(key, hparams, _vector(g, "eval_step", path, kind="iu"), curves,
                            {"steps_total": hparams.get("steps_total", 0), "done": True},
                            _vector(g, "eval_wall", path), provenance))
        return runs


def read_metrics_provenance(path: Path) -> dict:
    """The provenance of the process that aggregated a metrics file."""
    with _reading(path), _open(path) as f:
        return _split_provenance({k: _decode(v) for k, v in f.attrs.items()})


def read_simulation(path: Path) -> dict | None:
    """The minimal-example and Theorem D.4 results stored in a metrics file, if any."""
    with _reading(path), _open(Path(path)) as f:
        return json.loads(f["simulation_json"][()]) if "simulation_json" in f else None
