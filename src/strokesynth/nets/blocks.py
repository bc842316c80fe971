"""Dims-aware building blocks: conv / transposed conv / pool / norm factories and one weight init.

Every network of the toolkit builds its layers through these, so the same code makes its 2D
and 3D versions (MONAI's ``spatial_dims`` convention)::

    conv(3)(16, 32, 3, padding=1)          # nn.Conv3d
    norm("instance", 2, 32)                # nn.InstanceNorm2d(32), affine-free as pix2pix
    norm("group", 3, 32, groups=8)         # nn.GroupNorm(8, 32)

Normalisations are a registry (:data:`NORMS`): ``batch``, ``instance``, ``group`` and ``none`` are
built in; ``switchable`` (Luo et al., SLNet) is registered by :mod:`strokesynth.nets.switchable`,
the registry's provider, on first use.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from strokesynth.errors import ConfigError
from strokesynth.registry import Registry

_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_CONVT = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
_MAXPOOL = {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}
_BATCH = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
_INSTANCE = {1: nn.InstanceNorm1d, 2: nn.InstanceNorm2d, 3: nn.InstanceNorm3d}

#: normalisation builders ``(dims, channels, **options) -> nn.Module``
NORMS: Registry[Callable[..., nn.Module]] = Registry("normalisation", provider="strokesynth.nets.switchable")


def _dims(dims: int, table: dict[int, type]) -> type:
    if dims not in table:
        raise ValueError(f"spatial dims must be one of {sorted(table)}, got {dims}")
    return table[dims]


def conv(dims: int) -> type[nn.Module]:
    """``nn.Conv{1,2,3}d`` for ``dims`` spatial dimensions."""
    return _dims(dims, _CONV)


def conv_transpose(dims: int) -> type[nn.Module]:
    """``nn.ConvTranspose{1,2,3}d``."""
    return _dims(dims, _CONVT)


def max_pool(dims: int) -> type[nn.Module]:
    """``nn.MaxPool{1,2,3}d``."""
    return _dims(dims, _MAXPOOL)


@NORMS.register("batch")
def _batch(dims: int, channels: int, **_: object) -> nn.Module:
    return _dims(dims, _BATCH)(channels)


@NORMS.register("instance")
def _instance(dims: int, channels: int, *, affine: bool = False, **_: object) -> nn.Module:
    # pix2pix's choice: no affine parameters and no running statistics
    return _dims(dims, _INSTANCE)(channels, affine=affine, track_running_stats=False)


@NORMS.register("group")
def _group(dims: int, channels: int, *, groups: int = 8, **_: object) -> nn.Module:
    g = groups
    while channels % g:  # the largest divisor of channels not above the requested group count
        g -= 1
    return nn.GroupNorm(g, channels)


@NORMS.register("none")
def _none(dims: int, channels: int, **_: object) -> nn.Module:
    return nn.Identity()


NORM_KINDS = ("batch", "instance", "group", "none", "switchable")


def norm(kind: str, dims: int, channels: int, **options: object) -> nn.Module:
    """A normalisation layer of ``kind`` for ``(B, channels, *spatial)`` tensors of ``dims`` dims.

    Args:
        kind: ``batch``, ``instance`` (affine-free unless ``affine=True``), ``group``
            (``groups``, reduced to a divisor of ``channels``), ``none`` or ``switchable`` (Luo et al.).
    """
    return NORMS.build(kind, dims, channels, **options)


def init_weights(net: nn.Module, *, kind: str = "normal", gain: float = 0.02) -> nn.Module:
    """pix2pix-style init of every conv, transposed conv and linear layer (1D/2D/3D) and norm.

    Conv/linear weights ~ N(0, gain) (``normal``), Xavier-normal or Kaiming-normal with this
    gain; biases 0. Norm layers with affine parameters (batch, instance, group): bias 0, weight
    ~ N(1, gain) for ``normal`` (pix2pix's reference code: N(1, 0.02)) and exactly 1 for
    ``xavier``/``kaiming``, whose gain (1.0 for the pseudo-DWI U-Nets) is a conv gain, not a norm
    spread: N(1, 1) would start about 16 % of the norm weights negative.
    """
    for m in net.modules():
        if isinstance(m, (nn.Linear, *_CONV.values(), *_CONVT.values())):
            if kind == "normal":
                nn.init.normal_(m.weight, 0.0, gain)
            elif kind == "xavier":
                nn.init.xavier_normal_(m.weight, gain=gain)
            elif kind == "kaiming":
                nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in")
            else:
                raise ConfigError("init", f"unknown init {kind!r} (normal, xavier, kaiming)")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.GroupNorm, *_BATCH.values(), *_INSTANCE.values())) and m.weight is not None:
            if kind == "normal":
                nn.init.normal_(m.weight, 1.0, gain)
            else:
                nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return net
