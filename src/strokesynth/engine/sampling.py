"""Which samples each training step sees: epoch-seeded, lesion-aware, split across processes.

:class:`EpochBatches` is a batch sampler whose draws depend only on ``(seed, epoch)``: a run
resumed at epoch e sees exactly the batches the uninterrupted run saw, whatever the number
of data-loader workers. Under ``torchrun`` every process draws the same global batches and
keeps its own share, so the processes together see what one process with ``world`` times the
batch would.

Lesion-aware batches: with ``lesion_fraction`` f > 0, a share f of every process's samples
(evenly spread: every other sample for f = 0.5, so also with batch size 1) is drawn from the
samples flagged as holding a lesion and the rest from all samples, so small lesions are seen
every step instead of in a few per cent of the slices.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler


def epoch_steps(n: int, batch_size: int, steps: int = 0, world: int = 1) -> int:
    """Batches per epoch and process: ``steps`` if given, else one pass, ``ceil(n / (batch * world))``."""
    return steps or max(1, math.ceil(n / (batch_size * world)))


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
        self.steps = epoch_steps(n, batch_size, steps, world)
        flags = np.zeros(n, bool) if lesion_flags is None else np.asarray(lesion_flags, bool)
        self.positives = np.flatnonzero(flags)
        self.fraction = float(lesion_fraction)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch, 7919])
        per_rank = self.steps * self.batch
        total = per_rank * self.world
        # the uniform part walks through shuffled passes over all samples (every sample once per pass)
        uniform = np.concatenate([rng.permutation(self.n) for _ in range(math.ceil(total / self.n))])
        # position j of a process's sample stream is a lesion draw when floor((j + 1) f) > floor(j f):
        # exactly a share f of every process's samples, spread evenly (every other one for f = 0.5)
        j = np.arange(per_rank)
        is_pos = (np.floor((j + 1) * self.fraction) > np.floor(j * self.fraction)) if self.positives.size else j < 0
        pos = rng.choice(self.positives, size=int(is_pos.sum()) * self.world) if self.positives.size else None
        u = p = 0
        streams = []
        for _r in range(self.world):
            stream = np.empty(per_rank, np.int64)
            for k in range(per_rank):
                if is_pos[k]:
                    stream[k] = pos[p]
                    p += 1
                else:
                    stream[k] = uniform[u]
                    u += 1
            streams.append(stream)
        mine = streams[self.rank]
        for step in range(self.steps):
            yield [int(i) for i in mine[step * self.batch:(step + 1) * self.batch]]
