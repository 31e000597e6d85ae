import os

import torch

# One thread per test process: the suite never oversubscribes a small machine.
torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")
# cuBLAS's fixed workspace, which torch's deterministic algorithms need on CUDA (tests/test_cuda.py);
# it must be set before the first cuBLAS call, and changes nothing on a CPU
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

