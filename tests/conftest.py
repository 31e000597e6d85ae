import os

import pytest
import torch

# One thread per test process: the suite never oversubscribes a small machine.
torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture
def tiny_model():
    from grokpipe.model import ModelConfig

    return lambda n: ModelConfig(n=n, d_model=16, n_heads=2, d_head=8, d_mlp=32)
