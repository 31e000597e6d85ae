"""Checkpoints: the whole state of a shard's training, written atomically and read back safely.

A checkpoint holds the shard's identity and spec, the step, every member's parameters and AdamW
moments, the curves so far (the shard file is rebuilt from them on resume, so a file torn by a
kill is never appended to), the training wall time, and the numerics version that produced it.
It is loaded with ``weights_only=True``: no code in a crafted file ever runs.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import torch

from .errors import GrokpipeError
from .files import FORMATS, atomic_write
from .spec import NUMERICS_VERSION

CHECKPOINT_FORMAT = FORMATS["checkpoint"]
_FIELDS = {"identity": str, "spec": str, "step": int, "params": dict, "optim": dict, "history": dict,
           "wall_seconds": float, "numerics": int}
_OPTIM_FIELDS = {"step_count": int, "exp_avg": dict, "exp_avg_sq": dict}


def save_checkpoint(path: Path, state: dict) -> None:
    """Write to a temporary name, then rename: a kill mid-write leaves the previous checkpoint."""
    atomic_write(Path(path), lambda tmp: torch.save({"format": CHECKPOINT_FORMAT, **state}, tmp), "checkpoint")


def load_checkpoint(path: Path) -> dict:
    """Load safely and check it is a complete grokpipe checkpoint of this numerics version."""
    path = Path(path)
    if not path.is_file():
        raise GrokpipeError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for torn or foreign files
        first = str(e).strip().splitlines()[0][:80] if str(e).strip() else type(e).__name__
        raise GrokpipeError(f"checkpoint {path} is corrupt or not a grokpipe checkpoint ({first})") from None
    if not isinstance(state, dict) or not str(state.get("format", "")).startswith("grokpipe-checkpoint-"):
        raise GrokpipeError(f"checkpoint {path} is not a grokpipe checkpoint")
    if state.get("numerics") != NUMERICS_VERSION:
        raise GrokpipeError(f"checkpoint {path} was made by numerics version {state.get('numerics', 1)} of the trainer, "
                            f"this is version {NUMERICS_VERSION}: its numbers would not continue; delete it to re-train")
    _check_fields(path, state, _FIELDS)
    _check_fields(path, state["optim"], _OPTIM_FIELDS)
    tensors = [*state["params"].values(), *state["history"].values(), *state["optim"]["exp_avg"].values(),
               *state["optim"]["exp_avg_sq"].values()]
    if not all(isinstance(t, torch.Tensor) for t in tensors):
        raise GrokpipeError(f"checkpoint {path} is corrupt: a value that should be a tensor is not")
    return state


def _check_fields(path: Path, state: dict, expected: dict) -> None:
    for name, kind in expected.items():
        if not isinstance(state.get(name), kind) or isinstance(state.get(name), bool):
            raise GrokpipeError(f"checkpoint {path} is corrupt: its {name!r} is missing or not a {kind.__name__}")


def checkpoint_format(path: Path) -> str | None:
    """The format tag of a checkpoint, read from its pickle without loading tensors (None if not one)."""
    try:
        with zipfile.ZipFile(path) as archive:
            name = next((n for n in archive.namelist() if n.endswith("/data.pkl")), None)
            found = re.search(rb"grokpipe-checkpoint-\d+", archive.read(name)) if name else None
    except (OSError, zipfile.BadZipFile, KeyError):
        return None
    return found[0].decode() if found else None
