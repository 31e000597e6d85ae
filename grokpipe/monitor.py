"""Following a results directory while it grows: which shards are done, running, stalled or
unreadable, at what rate, and what each run's curves are so far. The TUI's scanning policy lives
here (headless, tested without Textual); reading goes through :mod:`grokpipe.store`.

A scan costs little when nothing changed: a file whose size and modification time are as last
seen is not opened, and a live file that grew is read from its last row on. Files whose runs are
on screen in detail (``follow``) are read at every scan; other live files at most every
``BACKGROUND_SECONDS``: their table rows lag by that much, and the TUI stays near 3% of a core
while it follows eight writing shards (benchmarks/tui_cpu.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from .store import Run, ShardRead, StoreError, read_shard, shard_files

STALLED_AFTER_SECONDS = 120.0  # a running shard whose file has not changed for this long
BACKGROUND_SECONDS = 5.0  # how often a live file nobody is plotting is read again


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
    read: ShardRead | None = None
    version: int = 0  # rises whenever the file was read again: views redraw only then

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def runs(self) -> list[Run]:
        return self.read.runs if self.read else []

    @property
    def steps_per_second(self) -> float:
        return self.step / self.wall_seconds if self.wall_seconds > 0 else float("nan")

    @property
    def eta_seconds(self) -> float:
        rate = self.steps_per_second
        return (self.steps_total - self.step) / rate if rate > 0 else float("nan")


@dataclass
class ResultsScanner:
    """Scans ``results_dir/runs`` again and again, re-reading only files that changed."""

    results_dir: Path
    seen: dict[Path, tuple[tuple, ShardStatus, float]] = field(default_factory=dict)
    reads: int = 0  # files opened so far (for tests and benchmarks)
    follow: set[Path] = field(default_factory=set)  # read at every scan: their runs are plotted

    def scan(self, now: float | None = None) -> list[ShardStatus]:
        now = time.time() if now is None else now
        out = []
        for path in shard_files(self.results_dir):
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            key = (st.st_ino, st.st_mtime_ns, st.st_size)
            cached = self.seen.get(path)
            waiting = (cached is not None and cached[1].state in ("running", "stalled") and path not in self.follow
                       and cached[0][0] == st.st_ino and now - cached[2] < BACKGROUND_SECONDS)
            if cached and (cached[0] == key or waiting) and cached[1].state != "unreadable":
                status = cached[1]
            else:
                previous = cached[1] if cached and cached[0][0] == st.st_ino else None
                status = self._read(path, previous)
                self.seen[path] = (key, status, now)
            if status.state in ("running", "stalled"):
                status.state = "stalled" if now - st.st_mtime > STALLED_AFTER_SECONDS else "running"
            out.append(status)
        for gone in set(self.seen) - {s.path for s in out}:
            del self.seen[gone]
        return out

    def _read(self, path: Path, previous: ShardStatus | None) -> ShardStatus:
        self.reads += 1
        experiment = path.parent.name
        version = previous.version + 1 if previous else 1
        try:
            read = read_shard(path, previous=previous.read if previous else None)
        except StoreError as e:
            return ShardStatus(path, experiment, "unreadable", error=str(e), version=version)
        p = read.runs[0].progress if read.runs else {}
        return ShardStatus(path, read.attrs.get("experiment") or experiment, "done" if p.get("done") else "running",
                           int(p.get("step", 0)), int(p.get("steps_total", 0)), float(p.get("wall_seconds", 0.0)),
                           read=read, version=version)
