"""Whole-slice and sliding-window inference over one case."""

from __future__ import annotations

import torch

from strokesynth.data.datasets import SliceDataset, VolumeDataset
from strokesynth.engine.inference import case_outputs, sliding_window
from strokesynth.io import open_cohort

MODS = ["ct", "cbf", "cbv", "mtt", "tmax"]


def test_sliding_window_equals_the_whole_slice_for_a_pointwise_network(isles2018_dir):
    """A 1x1 conv sees no neighbours, so any blend of its windows is its whole-slice output."""
    torch.manual_seed(0)
    net = torch.nn.Conv2d(5, 2, 1)
    cohort = open_cohort(isles2018_dir)
    whole = SliceDataset(cohort.cases, MODS, size=(64, 64), mode="resample")
    windows = SliceDataset(cohort.cases, MODS, size=(64, 64), mode="resample", patch=(24, 40))
    a = case_outputs(net, whole, 0)
    b = case_outputs(net, windows, 0)
    assert a.shape == b.shape == (cohort.cases[0].spatial_shape[2], 2, 64, 64)
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_volume_windows_equal_the_whole_volume_for_a_pointwise_network(isles2018_dir):
    """A model trained on in-plane 3D blocks is run over windows of (h, w, Z'), one at a time,
    each seeing every slice; for a 1x1x1 conv the blend is the whole-volume output."""
    torch.manual_seed(0)
    net = torch.nn.Conv3d(5, 2, 1)
    seen = []

    def forward(x: torch.Tensor) -> torch.Tensor:
        seen.append(tuple(x.shape))
        return net(x)

    cohort = open_cohort(isles2018_dir)
    whole = VolumeDataset(cohort.cases, MODS, size=(64, 64), mode="resample", z_multiple=4)
    windows = VolumeDataset(cohort.cases, MODS, size=(64, 64), mode="resample", z_multiple=4, patch=(32, 48))
    a = case_outputs(net, whole, 0)
    b = case_outputs(forward, windows, 0)
    zp = whole[0]["image"].shape[-1]
    assert a.shape == b.shape == (2, 64, 64, zp)
    assert set(seen) == {(1, 5, 32, 48, zp)}
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_sliding_window_sees_each_window_at_the_patch_size():
    seen = []

    def forward(x: torch.Tensor) -> torch.Tensor:
        seen.append(tuple(x.shape[-2:]))
        return x[:, :1] * 0 + 1.0

    out = sliding_window(forward, torch.randn(2, 3, 100, 70), (32, 32), windows=4)
    assert out.shape == (2, 1, 100, 70)
    assert set(seen) == {(32, 32)}
    torch.testing.assert_close(out, torch.ones_like(out))  # the Gaussian weights are normalised
