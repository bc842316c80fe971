"""Run a network over every slice (or the whole volume) of one case, in batches.

The one place that turns a dataset case into network outputs on the case's own grid; the
segmenters' probabilities, the generators' syntheses and the validation losses all go
through :func:`case_outputs`. A slice dataset with a ``patch`` size (a model trained on patches)
is run through MONAI's sliding window (overlap 0.25, Gaussian blending, as nnU-Net does), so a
512 x 512 slice is never held in the network at once; a volume dataset with a ``patch`` runs
windows of (h, w, Z') one at a time (in plane only: z is always whole).
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
    patch = dataset.patch
    if isinstance(dataset, VolumeDataset):
        image = dataset[case_index]["image"][None, pick].to(device)
        if patch is not None and (image.shape[2] > patch[0] or image.shape[3] > patch[1]):
            return sliding_window(forward, image, (*patch, image.shape[4]), 1).float()[0].cpu()
        return forward(image).float()[0].cpu()
    items = dataset.slices_of(case_index)
    outs = []
    for lo in range(0, len(items), batch_size):
        batch = torch.stack([dataset[i]["image"][pick] for i in items[lo:lo + batch_size]]).to(device)
        if patch is not None and (batch.shape[-2] > patch[0] or batch.shape[-1] > patch[1]):
            outs.append(sliding_window(forward, batch, patch, batch_size).float().cpu())
        else:
            outs.append(forward(batch).float().cpu())
    return torch.cat(outs)


def sliding_window(forward: Forward, batch: torch.Tensor, patch: tuple[int, ...], windows: int = 16,
                   overlap: float = 0.25) -> torch.Tensor:
    """``forward`` over windows of ``patch`` voxels of a ``(B, C, H, W[, Z])`` batch, ``windows`` at a
    time, blended with Gaussian weights (MONAI's ``sliding_window_inference``); returns
    ``(B, K, H, W[, Z])``."""
    from monai.inferers import sliding_window_inference

    out = sliding_window_inference(batch, roi_size=tuple(patch), sw_batch_size=windows, predictor=forward,
                                   overlap=overlap, mode="gaussian")
    return torch.as_tensor(out)
