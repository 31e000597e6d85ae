"""How much CPU `grokpipe tui` uses while it follows a running pipeline.

    python benchmarks/tui_cpu.py --writers 8 --minutes 5

Writer processes each hold a shard file of 8 runs open in SWMR mode and append an evaluation every
0.3 s (as quick-scale shards do: an evaluation every 50 steps at 100-300 steps/s), flushing each
time. The real `grokpipe tui` runs in a tmux session of 180 x 50 (a real terminal, so drawing is
counted), and its CPU time is read from /proc over the measured minutes after a warm-up; it also
checks that the screen kept up (the last step the writers wrote appears on screen). Target: at
most 3% of one core, updating about once a second.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WRITER = """
import sys, time
from pathlib import Path
import numpy as np
sys.path.insert(0, sys.argv[3])
from tests.fakes import write_shard
writer = write_shard(Path(sys.argv[1]), "ungrok", [(100 * (i + 1), 1.0, i) for i in range(8)], evals=20, done=False)
deadline = time.time() + float(sys.argv[2])
step = 2000
while time.time() < deadline:
    step += 50
    writer.append(step, {m: np.random.random(8) for m in writer.metrics}, 10**6, step / 100)
    time.sleep(0.3)
writer.close()
"""


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its threads, from /proc (clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds before measuring")
    args = parser.parse_args()
    if not shutil.which("tmux"):
        print("tmux is needed to run the TUI in a real terminal", file=sys.stderr)
        return 2
    repo = Path(__file__).resolve().parents[1]
    seconds = args.warmup + 60 * args.minutes + 5
    with tempfile.TemporaryDirectory() as tmp:
        results = Path(tmp) / "results"
        writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(results / "runs" / "ungrok" / f"add-{i:010x}.h5"),
                                     str(seconds), str(repo)]) for i in range(args.writers)]
        session = f"grokpipe-bench-{os.getpid()}"
        try:
            time.sleep(2)
            subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "180", "-y", "50",
                            f"{sys.executable} -m grokpipe tui {results}"], check=True)
            time.sleep(args.warmup)
            pid = int(subprocess.run(["tmux", "list-panes", "-t", session, "-F", "#{pane_pid}"], capture_output=True,
                                     text=True, check=True).stdout.split()[0])
            start_cpu, start = cpu_seconds(pid), time.monotonic()
            time.sleep(60 * args.minutes)
            used, elapsed = cpu_seconds(pid) - start_cpu, time.monotonic() - start
            screen = subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True).stdout
        finally:
            subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
            for w in writers:
                w.kill()
    percent = 100 * used / elapsed
    steps = [int(token.split("/")[0]) for line in screen.splitlines() for token in line.split() if "/1000000" in token]
    print(f"grokpipe tui following {args.writers} writers for {elapsed / 60:.1f} min: {used:.1f} CPU-s, "
          f"{percent:.2f}% of one core (target <= 3%); latest step on screen {max(steps, default=0)}")
    return 0 if percent <= 3 else 1


if __name__ == "__main__":
    sys.exit(main())
