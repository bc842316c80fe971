"""Run a network over every slice (or the whole volume) of one case, in batches.

The one place that turns a dataset case into network outputs on the case's own grid; the
segmenters' probabilities, the generators' syntheses and the validation losses all go
through :func:`case_outputs`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from strokesynth.data.datasets import SliceDataset, VolumeDataset

Forward = Callable[[torch.Tensor], torch.Tensor]


@torch.no_grad()
def case_outputs(forward: Forward, dataset: SliceDataset | VolumeDataset, case_index: int, *, device: str = "cpu",
                 batch_size: int = 16, channels: slice | None = None) -> torch.Tensor:
    """``forward`` applied to every sample of case ``case_index``, on the CPU, in target space.

    Args:
        forward: maps a ``(B, C, H, W)`` (slices) or ``(B, C, H, W, Z)`` (volumes) input batch to
            ``(B, K, ...)`` outputs of the same spatial size (autocast, softmax... are its business).
        channels: the image channels fed to ``forward`` (default: all).

    Returns:
        ``(Z, K, H, W)`` for slice datasets (z order), ``(K, H, W, Z')`` for volume datasets;
        give it to ``dataset.assemble(case_index, ...)`` for a Volume on the case's grid.
    """
    pick = channels or slice(None)
    if isinstance(dataset, VolumeDataset):
        image = dataset[case_index]["image"][None, pick].to(device)
        return forward(image).float()[0].cpu()
    items = dataset.slices_of(case_index)
    outs = []
    for lo in range(0, len(items), batch_size):
        batch = torch.stack([dataset[i]["image"][pick] for i in items[lo:lo + batch_size]]).to(device)
        outs.append(forward(batch).float().cpu())
    return torch.cat(outs)
