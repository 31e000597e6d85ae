"""The CUDA path: same model, same numbers (to float rounding), and a shard that trains end to end.
Skipped without a CUDA device; run them on a GPU machine with `python -m pytest -m cuda`."""

import numpy as np
import pytest
import torch

from grokpipe.model import Batch, forward, init_params, stack_params
from grokpipe.spec import EvalSchedule, ModelConfig, RunSpec, ShardSpec
from grokpipe.store import read_shard
from grokpipe.train import train_shard

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")]


def test_cuda_logits_match_the_cpu():
    cfg = ModelConfig(n=23, d_model=32, n_heads=4, d_head=8, d_mlp=64)
    params = stack_params([init_params(cfg, s, torch.float64) for s in range(3)])
    x = torch.randint(0, 23, (3, 100))
    y = torch.randint(0, 23, (3, 100))
    cpu = forward(params, cfg, Batch(cfg, x, y))
    gpu = forward({k: v.cuda() for k, v in params.items()}, cfg, Batch(cfg, x.cuda(), y.cuda())).cpu()
    assert torch.allclose(cpu, gpu, rtol=1e-10, atol=1e-10)


def test_a_shard_trains_on_cuda_like_on_the_cpu(tmp_path):
    spec = ShardSpec(task="add", p=23, model=ModelConfig(23, 32, 4, 8, 64),
                     runs=(RunSpec(200, 1.0, 0, 3e-3), RunSpec(300, 0.5, 1, 3e-3)), steps=300,
                     schedule=EvalSchedule(every=50, per_decade=0))
    train_shard(spec, tmp_path / "cpu.h5", tmp_path / "cpu.pt", device="cpu", threads=1, show_progress=False)
    train_shard(spec, tmp_path / "gpu.h5", tmp_path / "gpu.pt", device="cuda", show_progress=False)
    cpu_runs = read_shard(tmp_path / "cpu.h5").runs
    gpu_runs = read_shard(tmp_path / "gpu.h5").runs
    for a, b in zip(cpu_runs, gpu_runs):
        assert np.allclose(a.curves["train_acc"], b.curves["train_acc"], atol=0.02)
        assert np.allclose(a.curves["param_norm"], b.curves["param_norm"], rtol=1e-3)
