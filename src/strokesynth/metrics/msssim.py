"""Masked multi-scale SSIM (MS-SSIM) by normalised convolution, for slices of any size.

MS-SSIM (Wang, Simoncelli & Bovik 2003) multiplies the contrast-structure term of the first
``L - 1`` scales and the full SSIM of the last, each raised to its weight, halving the image
between scales. pytorch-msssim, torchmetrics and MONAI implement it without a mask and refuse
images whose smaller side is under ``(window - 1) * 2**(L - 1) + 1`` (161 px for the standard 5
scales and window 11), while brain slices are 64-208 px and pseudo-healthy synthesis needs the
lesion left out (identity is measured on ``(1 - m) * x``).

:func:`masked_ms_ssim` does both:

- every local statistic is a normalised convolution with the weight image ``w`` (the mask):
  ``mu_x = G*(w x) / G*w``, ``sigma_x^2 = G*(w x^2) / G*w - mu_x^2``, ``sigma_xy`` alike, with
  the 11-tap Gaussian window (sigma 1.5) and valid convolution as the libraries; each scale's
  map is averaged over the window centres, weighted by ``w`` there;
- between scales images are averaged over the weighted pixels only
  (``x' = pool(w x) / pool(w)``, ``w' = pool(w)``);
- it uses as many scales as the image allows (at most 5) and says how many: with ``L`` scales
  the first ``L`` standard weights (0.0448, 0.2856, 0.3001, 0.2363, 0.1333) are rescaled to the
  sum of all five (1.0001, as published and as the libraries use them), so 128 px slices get 4
  scales and 64 px slices 3.

With ``w = 1`` and sides that stay even through the halvings (176, 192, 256... px) it computes
the libraries' value: pytorch-msssim to 1e-5 (measured 1.9e-6); MONAI to its float32 rounding
(it casts the images to float32; up to 1.03e-5 measured); torchmetrics to 1e-3, because its
last-scale SSIM averages over a reflection-padded border it does not crop. Tests check all
three. On odd sides the libraries pad with zeros before averaging and count the zeros; this
averages real pixels only.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

#: the standard MS-SSIM scale weights (Wang et al. 2003), finest scale first
WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def gaussian_window(size: int = 11, sigma: float = 1.5, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """The normalised 1D Gaussian of ``size`` taps centred on the middle tap, shape ``(size,)``."""
    x = torch.arange(size, dtype=dtype) - size // 2
    g = torch.exp(-(x ** 2) / (2 * sigma ** 2))
    return g / g.sum()


def max_scales(shape: tuple[int, int], window: int = 11, limit: int = len(WEIGHTS)) -> int:
    """The most scales (at most ``limit``) at which an image of ``shape`` pixels still covers the
    window at its coarsest scale: ``(window - 1) * 2**(L - 1) < min(shape)``."""
    side = min(shape)
    if side < window:
        return 0
    return max(1, min(limit, int(math.floor(math.log2((side - 1) / (window - 1)))) + 1))


def _blur(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Separable valid convolution of ``(B, 1, H, W)`` with the 1D window ``g``."""
    k = g.numel()
    x = F.conv2d(x, g.view(1, 1, k, 1))
    return F.conv2d(x, g.view(1, 1, 1, k))


def _pool(x: torch.Tensor) -> torch.Tensor:
    pad = [s % 2 for s in x.shape[2:]]
    return F.avg_pool2d(x, kernel_size=2, padding=pad)


def masked_ms_ssim(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None = None, *,
                   data_range: float = 1.0, window: int = 11, sigma: float = 1.5,
                   k: tuple[float, float] = (0.01, 0.03), scales: int | None = None,
                   weights: tuple[float, ...] = WEIGHTS) -> tuple[torch.Tensor, int]:
    """MS-SSIM of ``x`` and ``y`` over the pixels ``mask`` weights (see the module docstring).

    Args:
        x, y: images ``(B, 1, H, W)`` or ``(H, W)``, in units of ``data_range``.
        mask: weights in [0, 1] of the same shape (``None``: every pixel); a binary mask keeps
            the pixels where it is 1 (for identity: ``1 - lesion``).
        data_range: the intensity span (1 for images scaled to [0, 1]).
        window, sigma: Gaussian window (11 taps, sigma 1.5 as the libraries).
        k: the SSIM constants (K1, K2).
        scales: number of scales (default: as many as the size allows, at most ``len(weights)``).
        weights: per-scale exponents, finest first; the first ``scales`` are used, rescaled to
            the sum of all of them.

    Returns:
        ``(value per image (B,), scales used)``; computed in float64.

    Raises:
        ValueError: images smaller than the window, or more scales than the size allows.
    """
    squeeze = x.dim() == 2
    if squeeze:
        x, y = x[None, None], y[None, None]
        mask = None if mask is None else mask[None, None]
    if x.shape != y.shape or x.dim() != 4 or x.shape[1] != 1:
        raise ValueError(f"x and y must both be (B, 1, H, W) or (H, W), got {tuple(x.shape)} and {tuple(y.shape)}")
    x, y = x.double(), y.double()
    if mask is not None and mask.shape != x.shape:
        raise ValueError(f"mask {tuple(mask.shape)} does not match the images {tuple(x.shape)}")
    w = torch.ones_like(x) if mask is None else mask.double()
    most = max_scales(tuple(x.shape[-2:]), window, len(weights))
    n = most if scales is None else int(scales)
    if most == 0 or not 1 <= n <= most:
        raise ValueError(f"{tuple(x.shape[-2:])} px allows {most} scale(s) with a {window}-px window, asked for {n}")
    beta = torch.tensor(weights[:n], dtype=torch.float64)
    beta = beta * (sum(weights) / beta.sum())  # the full set is used as published (it sums to 1.0001)
    g = gaussian_window(window, sigma).to(x.device)
    c1, c2 = (k[0] * data_range) ** 2, (k[1] * data_range) ** 2
    half = window // 2
    terms = []
    for level in range(n):
        ws = _blur(w, g)
        ok = ws > 1e-8
        den = ws.clamp_min(1e-8)
        mx, my = _blur(w * x, g) / den, _blur(w * y, g) / den
        vx = _blur(w * x * x, g) / den - mx * mx
        vy = _blur(w * y * y, g) / den - my * my
        cxy = _blur(w * x * y, g) / den - mx * my
        cs = (2 * cxy + c2) / (vx + vy + c2)
        centre = w[..., half:w.shape[-2] - half, half:w.shape[-1] - half] * ok
        norm = centre.flatten(1).sum(1).clamp_min(1e-12)
        if level < n - 1:
            terms.append(torch.relu((cs * centre).flatten(1).sum(1) / norm))
            pw = _pool(w)
            x, y = _pool(w * x) / pw.clamp_min(1e-12), _pool(w * y) / pw.clamp_min(1e-12)
            w = pw
        else:
            s = (2 * mx * my + c1) / (mx * mx + my * my + c1) * cs
            terms.append(torch.relu((s * centre).flatten(1).sum(1) / norm))
    value = torch.prod(torch.stack(terms) ** beta.to(x.device).view(-1, 1), dim=0)
    return value, n
