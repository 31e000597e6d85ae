"""grokpipe: reproduce "Explaining grokking through circuit efficiency" (Varma et al. 2023) end to end."""

from os import environ as _environ

__version__ = "0.2.0"

# MKL's reproducible mode (conditional numerical reproducibility) for torch's CPU products, with
# the code branch every x86 CPU of this project has. Without it, MKL sizes its blocks by the cache
# and follows memory alignment: on an AMD EPYC a run's numbers then changed when a shard mate
# stopped (its pass's tensors moved), and the token-major sum differed from the head-major one,
# while the Intel Xeon gave the same bits (docs/speed.md, "Two CPUs"). MKL reads it at its first
# call, so it is set when grokpipe is imported, before grokpipe touches torch; a value already in
# the environment is kept, and every shard file records the branch in force
# (grokpipe.train.mkl_reproducible_branch). On non-Intel CPUs MKL runs its AUTO branch instead.
MKL_BRANCH = "AVX2"
_environ.setdefault("MKL_CBWR", MKL_BRANCH)
