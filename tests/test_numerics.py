"""Guard for NUMERICS_VERSION: a tiny fixed run's numbers, recorded when the version was last raised.

When one of these fails after a change to the model, the optimiser, the loss, the splits or the
initialisation, the change alters what training produces: raise ``NUMERICS_VERSION`` in
``grokpipe/spec.py`` (so Snakemake re-trains every training shard and old checkpoints are refused),
record the new values here, and update the TUI's snapshot, which shows the version
(``python -m pytest tests/test_tui.py --snapshot-update``). The tolerances allow for float32 summation order differing between
CPUs and thread counts. The values come from the AMD EPYC, MKL's reproducible mode in its AUTO
branch (1 and 2 threads gave identical bits); version 3's, from the Intel Xeon, were within 4e-6 of
them, while the AMD EPYC without MKL's reproducible mode gave a test loss 0.6% away. Any real
change of arithmetic moves these numbers by far more. Changes below that, such as flushing
subnormal floats, do not show in 150 steps of a tiny model: raise the version for them by hand.
"""

import numpy as np
import pytest
import torch

from grokpipe.model import ModelConfig, init_params
from grokpipe.spec import NUMERICS_VERSION, EvalSchedule, RunSpec, ShardSpec
from grokpipe.store import read_shard
from grokpipe.tasks import train_indices
from grokpipe.train import train_shard

RECORDED_FOR_VERSION = 4
RAISE = "training numbers changed: raise NUMERICS_VERSION in grokpipe/spec.py and record the new values in this test"

# (n_train, weight decay, seed) -> (train loss, test loss, parameter norm) after 150 full-batch steps
RECORDED_FINAL = {
    (60, 1.0, 0): (0.024362180851208913, 17.997345852509323, 14.461068835220273),
    (60, 0.5, 1): (0.009478556361338304, 19.620801279351877, 15.428105663993618),
    (90, 1.0, 2): (0.03879795761852138, 7.003142022260162, 15.69107985944718),
}


def test_the_recorded_values_belong_to_this_numerics_version():
    assert RECORDED_FOR_VERSION == NUMERICS_VERSION, "record this version's values below when raising it"


def test_the_split_and_the_initialisation_are_unchanged():
    assert train_indices("add", 11, 0, 60)[:10].tolist() == [19, 36, 102, 39, 50, 26, 53, 90, 49, 89], RAISE
    params = init_params(ModelConfig(11, 16, 2, 8, 32), 0, dtype=torch.float64)
    assert float(sum((v ** 2).sum() for v in params.values())) == pytest.approx(162.35207288308243, rel=1e-12), RAISE


def test_a_tiny_fixed_run_ends_where_it_did(tmp_path):
    runs = tuple(RunSpec(n_train=d, weight_decay=wd, seed=s, lr=1e-2) for d, wd, s in RECORDED_FINAL)
    spec = ShardSpec(task="add", p=11, model=ModelConfig(11, 16, 2, 8, 32), runs=runs, steps=150,
                     schedule=EvalSchedule(every=50, per_decade=2), checkpoint_every=150)
    train_shard(spec, tmp_path / "s.h5", tmp_path / "s.pt", threads=1, show_progress=False)
    for run, recorded in zip(read_shard(tmp_path / "s.h5").runs, RECORDED_FINAL.values()):
        assert run.eval_step[-1] == 150
        final = [run.curves[m][-1] for m in ("train_loss", "test_loss", "param_norm")]
        np.testing.assert_allclose(final, recorded, rtol=1e-3, err_msg=RAISE)
