"""Which samples each training step sees: epoch-seeded, lesion-aware, split across processes.

:class:`EpochBatches` is a batch sampler whose draws depend only on ``(seed, epoch)``: a run
resumed at epoch e sees exactly the batches the uninterrupted run saw, whatever the number
of data-loader workers. Under ``torchrun`` every process draws the same global batches and
keeps its own share, so the processes together see what one process with ``world`` times the
batch would.

Lesion-aware batches: with ``lesion_fraction`` f > 0, ``round(f * batch)`` samples of every
batch are drawn from the samples flagged as holding a lesion and the rest from all samples,
so small lesions are seen every step instead of in a few per cent of the slices.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler


class EpochBatches(Sampler[list[int]]):
    """Batches of dataset indices for one process, redrawn per epoch (:meth:`set_epoch`).

    Args:
        n: number of samples in the dataset.
        batch_size: samples per batch per process.
        steps: batches per epoch (0: one pass, ``ceil(n / (batch * world))``).
        seed: the run's seed (with the epoch it fixes every draw).
        lesion_flags: per-sample booleans (``None`` or all False disables lesion-aware draws).
        lesion_fraction: share of each batch drawn from the flagged samples.
        rank, world: this process's share of each global batch.
    """

    def __init__(self, n: int, batch_size: int, *, steps: int = 0, seed: int = 0,
                 lesion_flags: Sequence[bool] | np.ndarray | None = None, lesion_fraction: float = 0.0,
                 rank: int = 0, world: int = 1) -> None:
        if n < 1:
            raise ValueError("no training samples")
        self.n, self.batch, self.seed, self.rank, self.world = n, batch_size, seed, rank, world
        self.steps = steps or max(1, math.ceil(n / (batch_size * world)))
        flags = np.zeros(n, bool) if lesion_flags is None else np.asarray(lesion_flags, bool)
        self.positives = np.flatnonzero(flags)
        self.k_pos = int(round(lesion_fraction * batch_size)) if self.positives.size else 0
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch, 7919])
        total = self.steps * self.batch * self.world
        # the uniform part walks through shuffled passes over all samples (every sample once per pass)
        passes = [rng.permutation(self.n) for _ in range(math.ceil(total / self.n))]
        uniform = np.concatenate(passes)
        pos = rng.choice(self.positives, size=self.steps * self.k_pos * self.world) if self.k_pos else None
        u = p = 0
        for _ in range(self.steps):
            global_batch = []
            for _r in range(self.world):
                part = []
                if pos is not None:
                    part.extend(int(i) for i in pos[p:p + self.k_pos])
                    p += self.k_pos
                m = self.batch - len(part)
                part.extend(int(i) for i in uniform[u:u + m])
                u += m
                global_batch.append(part)
            yield global_batch[self.rank]
