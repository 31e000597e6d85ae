import importlib.util
import os
from pathlib import Path

import pytest
import torch

from grokpipe.train import CUBLAS_DETERMINISTIC_WORKSPACE

# One thread per test process: the suite never oversubscribes a small machine.
torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")
# cuBLAS's fixed workspace, which torch's deterministic algorithms need on CUDA (tests/test_cuda.py):
# training sets it too, but a test before may have made the process's first cuBLAS call already.
# It changes nothing on a CPU.
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_DETERMINISTIC_WORKSPACE)



@pytest.fixture
def benchmark_script():
    """A script under benchmarks/ loaded as a module (they are scripts, not a package), by its name."""
    def load(name: str):
        spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    return load
