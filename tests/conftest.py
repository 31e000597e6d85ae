import os

import torch

# One thread per test process: the suite never oversubscribes a small machine.
torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")

