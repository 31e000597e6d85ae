"""HDF5 files of runs: the live per-shard files, the aggregated metrics file, and one reading API.

Layout (plain h5py can read it; docs/hdf5-layout.md has every field)::

    shard file results/runs/<experiment>/<shard>.h5, written live in SWMR mode
    /                 attrs: format, identity, spec (JSON), task, p, experiment, runs_json, metrics,
                      and the provenance of the process that trained it (grokpipe.provenance.KEYS)
    /progress         float64 (4,): step, steps_total, wall_seconds, done (0/1)
    /eval_step        int64 (E,): the steps at which the curves were evaluated
    /eval_wall        float64 (E,): training wall seconds at each evaluation
    /runs/<run_id>/   attrs: the run's hyperparameters; datasets (E,) float64, one per metric

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
        history = history or {}
        image = io.BytesIO()
        with h5py.File(image, "w", libver="latest") as f:
            f.attrs["format"] = SHARD_FORMAT
            for k, v in attrs.items():
                f.attrs[k] = v
            # the same hyperparameters as the per-run attributes, in one read (thousands of runs open fast)
            f.attrs["runs_json"] = json.dumps(runs, default=_plain)
            f.attrs["metrics"] = json.dumps(self.metrics)
            steps = np.asarray(history.get("eval_step", []), dtype=np.int64)
            f.create_dataset("eval_step", data=steps, maxshape=(None,), chunks=(256,))
            wall = np.asarray(history.get("eval_wall", np.full(len(steps), np.nan)), dtype=np.float64)
            f.create_dataset("eval_wall", data=wall, maxshape=(None,), chunks=(256,))
            f.create_dataset("progress", data=np.array([steps[-1] if len(steps) else 0, steps_total, 0.0, 0.0]))
            group = f.create_group("runs")
            for i, (rid, params) in enumerate(runs):
                g = group.create_group(rid)
                for k, v in params.items():
                    g.attrs[k] = v
                for m in self.metrics:
                    data = np.asarray(history[m][:, i] if m in history else [], dtype=np.float64)
                    g.create_dataset(m, data=data, maxshape=(None,), chunks=(256,))
        try:
            atomic_write(self.path, lambda tmp: tmp.write_bytes(image.getbuffer()), "shard file")
        except GrokpipeError as e:
            raise StoreError(str(e)) from None
        with _writing(self.path):
            self.file = h5py.File(self.path, "r+", libver="latest")
            self.file.swmr_mode = True
        self._rows = [self.file["eval_step"], self.file["eval_wall"]]
        self._datasets = [[self.file[f"runs/{rid}/{m}"] for m in self.metrics] for rid in self.run_ids]

    def append(self, step: int, values: dict[str, np.ndarray], steps_total: int, wall_seconds: float) -> None:
        """Add one evaluation: ``values[metric]`` has one entry per run."""
        with _writing(self.path):
            n = self._rows[0].shape[0] + 1
            for ds, value in zip(self._rows, (step, wall_seconds)):
                ds.resize((n,))
                ds[n - 1] = value
            for i, row in enumerate(self._datasets):
                for m, ds in zip(self.metrics, row):
                    ds.resize((n,))
                    ds[n - 1] = values[m][i]
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


def _open(path: Path, retries: int = 3, delay: float = 0.1) -> h5py.File:
    """Open a results file for reading: plainly when it is complete, in bounded SWMR mode while a
    writer holds it, retrying briefly while a writer is still setting it up."""
    path = Path(path)
    last: Exception | None = None
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


def _vector(parent, name: str, path: Path, start: int = 0, kind: str = "fiu") -> np.ndarray:
    obj = parent.get(name)
    if not isinstance(obj, h5py.Dataset) or obj.ndim != 1 or obj.dtype.kind not in kind or obj.shape[0] > MAX_ROWS:
        raise StoreError(f"cannot read {path}: {name!r} is missing or not a numeric vector")
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

    @property
    def identity(self) -> str:
        return str(self.attrs.get("identity", ""))


def read_shard(path: Path, with_curves: bool = True, previous: ShardRead | None = None) -> ShardRead:
    """Attributes and runs of one shard file (live or finished).

    With ``previous`` (an earlier read of the same file), only evaluations appended since are read
    and joined to it: a live file costs a few rows a refresh, not its whole history."""
    path = Path(path)
    with _reading(path), _open(path) as f:
        attrs = {k: _decode(v) for k, v in f.attrs.items()}
        if attrs.get("format") != SHARD_FORMAT:
            raise StoreError(f"{path} is not a grokpipe shard file")
        listed = _run_list(_json_attr(attrs, "runs_json", list, path), path)
        metrics = _json_attr(attrs, "metrics", list, path)
        if not all(isinstance(m, str) for m in metrics):
            raise StoreError(f"cannot read {path}: attribute 'metrics' is not a list of names")
        provenance = _split_provenance(attrs)
        progress_raw = _vector(f, "progress", path)
        if len(progress_raw) != 4:
            raise StoreError(f"cannot read {path}: 'progress' does not have 4 entries")
        progress = dict(zip(("step", "steps_total", "wall_seconds"), map(float, progress_raw[:3])))
        progress["done"] = bool(progress_raw[3])
        reuse = (previous is not None and with_curves and previous.identity == attrs.get("identity")
                 and len(previous.runs) == len(listed))
        start = previous.rows if reuse else 0
        eval_step = _vector(f, "eval_step", path, start, "iu")
        eval_wall = _vector(f, "eval_wall", path, start) if "eval_wall" in f else np.full(len(eval_step), np.nan)
        group = _group(f, "runs", path)
        runs = []
        for i, (rid, hparams) in enumerate(listed):
            g = _group(group, rid, path)
            curves = {m: _vector(g, m, path, start) for m in metrics} if with_curves else {}
            n = min([len(eval_step), len(eval_wall)] + [len(c) for c in curves.values()])  # a half-appended row
            steps, wall, curves = eval_step[:n], eval_wall[:n], {m: c[:n] for m, c in curves.items()}
            if reuse:
                old = previous.runs[i]
                steps, wall = np.concatenate([old.eval_step, steps]), np.concatenate([old.eval_wall, wall])
                curves = {m: np.concatenate([old.curves[m], c]) for m, c in curves.items()}
            hparams = {**hparams, "experiment": attrs.get("experiment", ""), "shard": path.stem}
            runs.append(Run(rid, hparams, steps, curves, progress, wall, provenance))
        rows = len(runs[0].eval_step) if runs else 0
        return ShardRead(attrs, runs, rows)


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
