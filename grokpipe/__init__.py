"""grokpipe: reproduce "Explaining grokking through circuit efficiency" (Varma et al. 2023) end to end."""

from os import environ as _environ

__version__ = "0.2.0"

# MKL's reproducible mode (conditional numerical reproducibility) for torch's CPU products, in its
# AUTO branch: MKL's usual kernels for the CPU, with fixed cache sizes and deterministic
# reductions. Without it, on an AMD EPYC a run's numbers changed when a shard mate stopped (its
# pass's tensors moved) and the token-major sum differed from the head-major one; on an Intel Xeon
# AUTO gave the default's bits, and the AVX2 branch other ones (docs/speed.md, "Two CPUs"). MKL
# reads it at its first call, so it is set when grokpipe is imported, before grokpipe touches
# torch; a value already in the environment is kept, and every shard file records the branch in
# force (grokpipe.provenance.mkl_reproducible_branch).
MKL_BRANCH = "AUTO"
_environ.setdefault("MKL_CBWR", MKL_BRANCH)
