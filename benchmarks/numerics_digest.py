"""A fingerprint of the CPU trainer's numbers: compare it across machines, not a speed.

    python benchmarks/numerics_digest.py

Trains one small quick-shape shard (x+y, p = 59, D = 300 and 1200, weight decay 1, lr 3e-3, 400
steps, one thread) and prints the SHA-256 of its checkpoint's parameters with the CPU model, the
numerics version and MKL's reproducible-mode branch. Two machines that print the same digest train
the quick scale to the same bits; docs/speed.md ("Two CPUs") lists the digests seen.
"""

from __future__ import annotations

import hashlib
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from grokpipe.checkpoint import load_checkpoint  # noqa: E402  (grokpipe first: it sets MKL's mode)
from grokpipe.provenance import cpu_model, mkl_reproducible_branch  # noqa: E402
from grokpipe.spec import NUMERICS_VERSION, EvalSchedule, ModelConfig, RunSpec, ShardSpec  # noqa: E402
from grokpipe.train import train_shard  # noqa: E402


def main() -> None:
    runs = (RunSpec(300, 1.0, 0, 3e-3), RunSpec(1200, 1.0, 1, 3e-3))
    spec = ShardSpec("add", 59, ModelConfig(59, 64, 4, 16, 256), runs, 400, schedule=EvalSchedule(every=50, per_decade=0),
                     checkpoint_every=400)
    with tempfile.TemporaryDirectory() as tmp:
        train_shard(spec, Path(tmp) / "s.h5", Path(tmp) / "s.pt", threads=1, show_progress=False)
        params = load_checkpoint(Path(tmp) / "s.pt")["params"]
    digest = hashlib.sha256()
    for name in sorted(params):
        digest.update(params[name].contiguous().numpy().tobytes())
    print(f"{digest.hexdigest()[:16]}  numerics v{NUMERICS_VERSION}, MKL branch {mkl_reproducible_branch('cpu') or 'none'}, "
          f"{cpu_model()}")


if __name__ == "__main__":
    main()
