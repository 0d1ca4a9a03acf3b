"""Named random streams per run: one SeedSequence(seed), one child generator per name.

A stream depends only on (seed, name), so adding a stream or drawing more from one never shifts
another. That gives common random numbers across policies: the workload streams are identical
whichever scheduler runs.
"""

from __future__ import annotations

import zlib

import numpy as np


def stream(seed: int, name: str) -> np.random.Generator:
    """The generator for `name` in the run with `seed`."""
    key = zlib.crc32(name.encode("utf-8"))
    return np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=(key,)))
