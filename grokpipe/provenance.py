"""What made a result: grokpipe's version and numerics version, the git commit, the libraries, the
device and the process settings. Stored as plain attributes in every shard file and in
``results/metrics.h5`` (docs/hdf5-layout.md), and shown in claims, figure captions and the TUI.
"""

from __future__ import annotations

import ctypes
import functools
import platform
import subprocess
from pathlib import Path

import numpy as np

from . import __version__
from .spec import NUMERICS_VERSION

# the attributes that say which trainer made the numbers: runs that differ in any of them are "mixed"
TRAINER_KEYS = ("grokpipe_version", "numerics_version", "git_commit")
KEYS = (*TRAINER_KEYS, "git_dirty", "torch_version", "numpy_version", "device_name", "threads", "denormals_flushed",
        "backward_backend", "deterministic_algorithms", "mkl_reproducible_branch")


@functools.cache
def git_state() -> tuple[str, bool]:
    """(commit, dirty) of the checkout grokpipe runs from, or ("", False) outside a git checkout."""
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return "", False
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10).stdout.strip()
        status = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "", False
    return commit, bool(status.strip())


@functools.cache
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# MKL's codes for its reproducible-mode branches (mkl_cbwr.h), as mkl_cbwr_get(MKL_CBWR_BRANCH) returns them
_MKL_BRANCH_NAMES = {1: "off", 2: "AUTO", 3: "COMPATIBLE", 4: "SSE2", 6: "SSSE3", 7: "SSE4_1", 8: "SSE4_2",
                     9: "AVX", 10: "AVX2", 12: "AVX512", 14: "AVX512_E1"}


@functools.cache
def mkl_reproducible_branch(device: str) -> str:
    """The branch MKL's reproducible mode runs torch's CPU products in ("off" when it is off; grokpipe
    sets it on import: grokpipe.MKL_BRANCH), or "" where ``device`` is not the CPU or torch has no
    MKL. Asked of MKL itself, through its service call that libtorch_cpu exports; provenance
    records it, since it changes the rounding as the CPU does."""
    import torch

    if device != "cpu" or not torch.backends.mkl.is_available():
        return ""
    try:
        lib = ctypes.CDLL(str(Path(torch.__file__).parent / "lib" / "libtorch_cpu.so"))
        code = lib.mkl_serv_cbwr_get(1)  # MKL_CBWR_BRANCH
    except (OSError, AttributeError):
        return "unknown"
    return _MKL_BRANCH_NAMES.get(code, f"code {code}")


def software() -> dict:
    """grokpipe's version, numerics version and git state: what any process that writes results records."""
    commit, dirty = git_state()
    return {"grokpipe_version": __version__, "numerics_version": NUMERICS_VERSION, "git_commit": commit,
            "git_dirty": dirty}


def collect(device: str, threads: int, denormals_flushed: bool, backend: str, deterministic: bool) -> dict:
    """Provenance of a training process: plain values, one HDF5 attribute each. ``backend``, the
    backward's (grokpipe.spec.BACKENDS), changes the rounding, as the device and threads do, and on
    CUDA so does ``deterministic`` (torch's deterministic algorithms), and on the CPU MKL's
    reproducible-mode branch."""
    import torch

    name = torch.cuda.get_device_name() if device.startswith("cuda") else cpu_model()
    return {**software(), "torch_version": str(torch.__version__), "numpy_version": np.__version__,
            "device_name": name, "threads": int(threads), "denormals_flushed": bool(denormals_flushed),
            "backward_backend": backend, "deterministic_algorithms": bool(deterministic),
            "mkl_reproducible_branch": mkl_reproducible_branch(device)}


def trainer_label(values: dict) -> str:
    """One line naming the trainer behind a result: version, numerics version, commit."""
    commit = str(values.get("git_commit", "") or "")
    return (f"grokpipe {values.get('grokpipe_version', '?')}, numerics v{values.get('numerics_version', '?')}"
            + (f", commit {commit[:10]}" if commit else "") + (" (dirty)" if values.get("git_dirty") else ""))


def device_label(values: dict) -> str:
    """One line naming the device and process settings behind a result (claims, captions, the TUI)."""
    backend = values.get("backward_backend")
    return (f"{values.get('device_name', '?')} ({values.get('threads', '?')} threads, denormals "
            f"{'flushed' if values.get('denormals_flushed') else 'kept'}" + (f", {backend} backward" if backend else "")
            + (", deterministic algorithms" if values.get("deterministic_algorithms") else "")
            + (f", MKL branch {values['mkl_reproducible_branch']}" if values.get("mkl_reproducible_branch") else "") + ")")


def provenance_summary(runs) -> dict:
    """The trainers that made ``runs`` (grokpipe.store.Run: one label each, with its run count), the
    devices, and whether they differ: what claims, figures and captions say about a result."""
    counts: dict[str, int] = {}
    devices: set[str] = set()
    for r in runs:
        label = trainer_label(r.provenance) if r.provenance else "unknown (no provenance recorded)"
        counts[label] = counts.get(label, 0) + 1
        if r.provenance.get("device_name"):
            devices.add(device_label(r.provenance))
    versions = {tuple(r.provenance.get(k) for k in TRAINER_KEYS[:2]) for r in runs}
    return {"trainers": counts, "devices": sorted(devices), "mixed": len(counts) > 1, "numerics_mixed": len(versions) > 1}
