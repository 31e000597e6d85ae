"""Writing files safely: one atomic-write helper and one guard that every writing command uses.

Every file grokpipe writes carries a format tag (``grokpipe-<kind>-<version>``): an HDF5 root
attribute, a JSON ``format`` key, an HTML comment on a Markdown file's first line, a metadata
string in a figure. :func:`check_output` refuses to replace a file that does not carry the tag
of the kind the command writes, so a user's notes, someone else's HDF5 file or a directory are
never overwritten; :func:`atomic_write` writes under a temporary name and renames, so a kill
never leaves a torn file, and it removes temporaries that killed processes left behind.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Callable

from .errors import GrokpipeError

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
# the tag of each kind of file grokpipe writes; a kind's version rises when its layout changes
FORMATS = {
    "shard": "grokpipe-shard-2",
    "metrics": "grokpipe-metrics-2",
    "checkpoint": "grokpipe-checkpoint-2",
    "claims": "grokpipe-claims-1",
    "simulation": "grokpipe-simulation-1",
    "band": "grokpipe-band-1",
    "figure": "grokpipe-figure-1",
    "bench": "grokpipe-bench-1",
    "gpu-check": "grokpipe-gpu-check-1",
    "semigrok-long": "grokpipe-semigrok-long-1",
}
FIGURE_MARK_BYTES = 1 << 22  # a figure's tag is in its metadata, within its first (PNG) or last (PDF) bytes
_TMP = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.tmp(?P<suffix>(\.[A-Za-z0-9]+)?)$")


def temporary_path(path: Path) -> Path:
    """``.<name>.<pid>.tmp<suffix>`` beside ``path``: hidden, unique per process, and keeping the
    suffix that tools such as matplotlib use to choose a format."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp{path.suffix}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Delete temporaries of ``path`` whose writing process is gone (killed mid-write)."""
    removed = []
    try:
        siblings = list(path.parent.iterdir())
    except OSError:
        return removed
    for candidate in siblings:
        m = _TMP.match(candidate.name)
        if m and m["name"] == path.name and not _pid_alive(int(m["pid"])):
            try:
                candidate.unlink()
                removed.append(candidate)
            except OSError:
                pass
    return removed


def atomic_write(path: Path, write: Callable[[Path], None], what: str = "") -> None:
    """Call ``write(temporary)``, then rename the temporary to ``path``; on any failure the temporary
    is removed and ``path`` keeps its old contents. OS errors become one-line GrokpipeErrors."""
    path = Path(path)
    tmp = temporary_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(path)
        write(tmp)
        os.replace(tmp, path)
    except OSError as e:
        raise GrokpipeError(f"cannot write {what + ' ' if what else ''}{path}: {e.strerror or e}") from None
    finally:
        try:
            tmp.unlink()
        except OSError:
            pass  # renamed, or never made


def write_text(path: Path, text: str, what: str = "") -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text), what)


def write_json(path: Path, kind: str, payload: dict) -> None:
    """A JSON object tagged with ``kind``'s format, written atomically."""
    write_text(path, json.dumps({"format": FORMATS[kind], **payload}, indent=2, default=_jsonable) + "\n", kind)


def _jsonable(value):
    try:
        return value.item()  # numpy scalars
    except AttributeError:
        return str(value)


def markdown_tag(kind: str) -> str:
    """The first line of a Markdown file of ``kind``: invisible when rendered."""
    return f"<!-- {FORMATS[kind]} -->"


def file_format(path: Path) -> str | None:
    """The grokpipe format tag of an existing file, or None if it carries none (not ours)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(len(HDF5_SIGNATURE))
    except OSError:
        return None
    if head == HDF5_SIGNATURE:
        from .store import StoreError, hdf5_format

        try:
            return hdf5_format(path)
        except StoreError:
            return None
    if path.suffix == ".pt":
        from .checkpoint import checkpoint_format

        return checkpoint_format(path)
    if path.suffix == ".json":
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError, UnicodeDecodeError):
            return None
        tag = data.get("format") if isinstance(data, dict) else None
        return tag if isinstance(tag, str) else None
    if path.suffix == ".md":
        try:
            with open(path, encoding="utf-8") as f:
                first = f.readline().strip()
        except (OSError, UnicodeDecodeError):
            return None
        m = re.fullmatch(r"<!-- (grokpipe-[a-z0-9-]+) -->", first)
        return m[1] if m else None
    if path.suffix in (".png", ".pdf", ".svg"):
        return FORMATS["figure"] if _has_figure_mark(path) else None
    return None


def _has_figure_mark(path: Path) -> bool:
    mark = FORMATS["figure"].encode()
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            if mark in f.read(FIGURE_MARK_BYTES):
                return True
            f.seek(max(size - FIGURE_MARK_BYTES, 0))
            return mark in f.read()
    except OSError:
        return False


def check_output(path: Path, kind: str, option: str = "") -> None:
    """Refuse, in one line, to write ``path`` unless it is absent or grokpipe's own file of ``kind``."""
    path = Path(path)
    label = f"{option} {path}" if option else str(path)
    if path.is_dir():
        raise GrokpipeError(f"{label} is a directory; give a file name")
    if not path.exists() and not path.is_symlink():
        parent = path.parent
        if parent.exists() and not parent.is_dir():
            raise GrokpipeError(f"cannot write {label}: {parent} is not a directory")
        return
    if not path.is_file():
        raise GrokpipeError(f"{label} exists and is not a regular file; refusing to overwrite it")
    found = file_format(path)
    if found != FORMATS[kind]:
        raise GrokpipeError(f"{label} exists and is not a grokpipe {kind} file ({found or 'it carries no grokpipe tag'}); "
                            "refusing to overwrite it")


def check_distinct(**outputs: Path | None) -> None:
    """Refuse two outputs of one command that are the same file (``--out x --checkpoint x``)."""
    seen: dict[Path, str] = {}
    for option, path in outputs.items():
        if path is None:
            continue
        key = Path(os.path.abspath(path))
        if key in seen:
            raise GrokpipeError(f"{seen[key]} and {option} are the same file ({path}); give two paths")
        seen[key] = option
