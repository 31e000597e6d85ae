"""grokpipe: reproduce "Explaining grokking through circuit efficiency" (Varma et al. 2023) end to end."""

__version__ = "0.2.0"
