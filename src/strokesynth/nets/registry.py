"""The network registry: every architecture by name, with its spatial dims and role.

Builders take the architecture's config (any object with the attributes the builder reads,
e.g. the segmenter's ``ModelConfig``) and the number of input channels::

    NETWORKS.build("unet3d", model_cfg, in_channels=5)
    NETWORKS.info("unet3d")   # {"dims": 3, "role": "segmenter"}
    NETWORKS.names(role="segmenter")
"""

from __future__ import annotations

from typing import Any

from torch import nn

from strokesynth.nets.lesion_gan import LesionCritic, LesionGenerator
from strokesynth.nets.pix2pix import PatchDiscriminator, ResnetGenerator, UnetGenerator
from strokesynth.nets.pspnet import PSPNet
from strokesynth.nets.spade import SPADEGenerator
from strokesynth.nets.unet import UNet, VNet
from strokesynth.registry import Registry

NETWORKS: Registry = Registry("network")


def _strides(cfg: Any) -> list[tuple[int, ...]]:
    return [tuple(s) for s in cfg.strides] or [(2, 2, 1)] * (len(cfg.channels) - 1)


@NETWORKS.register("pspnet", dims=2, role="segmenter")
def build_pspnet(cfg: Any, in_channels: int, *, pretrained: bool = True) -> nn.Module:
    """PSPNet with a dilated ResNet-``cfg.depth`` of stem width ``cfg.width`` (+ local pretrained backbone)."""
    model = PSPNet(in_channels, cfg.num_classes, cfg.depth, cfg.width, aux=cfg.aux_weight > 0)
    if cfg.pretrained and pretrained:
        model.load_pretrained(cfg.pretrained)
    return model


@NETWORKS.register("unet2d", dims=2, role="segmenter")
def build_unet2d(cfg: Any, in_channels: int, *, pretrained: bool = True) -> nn.Module:
    """2D U-Net with ``cfg.channels`` per level."""
    return UNet(2, in_channels, cfg.num_classes, cfg.channels, [2] * (len(cfg.channels) - 1), norm=cfg.norm)


@NETWORKS.register("unet", dims=2, role="segmenter")
def build_unet(cfg: Any, in_channels: int, *, pretrained: bool = True) -> nn.Module:
    """The classic 2D U-Net of the pseudo-DWI paper's tables (``cfg.channels``, 64..1024 = 31.04 M
    parameters), batch norm, no squeeze-and-excitation: the baseline SLNet is compared with."""
    return UNet(2, in_channels, cfg.num_classes, cfg.channels, norm="batch")


@NETWORKS.register("slnet", dims=2, role="segmenter")
def build_slnet(cfg: Any, in_channels: int, *, pretrained: bool = True) -> nn.Module:
    """SLNet (Wang, Song et al.): the U-Net with switchable normalisation and an SE block (ratio 1)
    after each encoder block (33.84 M parameters at 64..1024)."""
    return UNet(2, in_channels, cfg.num_classes, cfg.channels, norm="switchable", se_ratio=1)


@NETWORKS.register("slnet_no_se", dims=2, role="segmenter")
def build_slnet_no_se(cfg: Any, in_channels: int, *, pretrained: bool = True) -> nn.Module:
    """SLNet without squeeze-and-excitation (switchable normalisation only): Table 3's ablation."""
    return UNet(2, in_channels, cfg.num_classes, cfg.channels, norm="switchable")


@NETWORKS.register("slnet_no_sn", dims=2, role="segmenter")
def build_slnet_no_sn(cfg: Any, in_channels: int, *, pretrained: bool = True) -> nn.Module:
    """SLNet without switchable normalisation (batch norm + SE): Table 3's other ablation."""
    return UNet(2, in_channels, cfg.num_classes, cfg.channels, norm="batch", se_ratio=1)


@NETWORKS.register("resunet", dims=2, role="segmenter")
def build_resunet(cfg: Any, in_channels: int, *, pretrained: bool = True) -> nn.Module:
    """The residual U-Net of the pseudo-DWI paper's Table 3 (ResUNet): MONAI's ``UNet`` with two
    residual units per level (strided-conv down-sampling, batch norm, PReLU), ``cfg.channels``
    per level."""
    from monai.networks.nets import UNet as MonaiUNet

    return MonaiUNet(spatial_dims=2, in_channels=in_channels, out_channels=cfg.num_classes,
                     channels=tuple(cfg.channels), strides=(2,) * (len(cfg.channels) - 1), num_res_units=2,
                     norm="batch")


@NETWORKS.register("r2unet", dims=2, role="segmenter")
def build_r2unet(cfg: Any, in_channels: int, *, pretrained: bool = True) -> nn.Module:
    """R2U-Net (Alom et al.): recurrent residual blocks (t = 2), ``cfg.channels`` per level; the
    pseudo-DWI paper's Table 3."""
    from strokesynth.nets.r2unet import R2UNet

    return R2UNet(in_channels, cfg.num_classes, cfg.channels)


@NETWORKS.register("fcn", dims=2, role="segmenter")
def build_fcn(cfg: Any, in_channels: int, *, pretrained: bool = True) -> nn.Module:
    """FCN-8s (Long et al.) with a VGG-style encoder of ``cfg.channels`` per block; the pseudo-DWI
    paper's Table 3."""
    from strokesynth.nets.fcn import FCN8s

    return FCN8s(in_channels, cfg.num_classes, cfg.channels)


@NETWORKS.register("unet3d", dims=3, role="segmenter")
def build_unet3d(cfg: Any, in_channels: int, *, pretrained: bool = True) -> nn.Module:
    """3D U-Net with per-axis strides (default (2, 2, 1): thin slabs are never pooled in z)."""
    return UNet(3, in_channels, cfg.num_classes, cfg.channels, _strides(cfg), norm=cfg.norm,
                dropout=float(getattr(cfg, "dropout", 0.0)), encoder_norm=getattr(cfg, "encoder_norm", "") or None)


@NETWORKS.register("vnet", dims=3, role="segmenter")
def build_vnet(cfg: Any, in_channels: int, *, pretrained: bool = True) -> nn.Module:
    """V-Net with 1, 2, 3, 3... convolutions per level and per-axis strides."""
    convs = [1, 2] + [3] * (len(cfg.channels) - 2)
    return VNet(3, in_channels, cfg.num_classes, cfg.channels, convs[: len(cfg.channels)], _strides(cfg),
                norm=cfg.norm)


@NETWORKS.register("basicunet", dims=2, role="reference")
def build_basicunet(cfg: Any, in_channels: int, *, pretrained: bool = True) -> nn.Module:
    """MONAI's ``BasicUNet`` as it comes (two conv-instance-norm-LeakyReLU per level, max-pool down,
    transposed-conv up), ``cfg.channels`` the five encoder features (the plain-U-Net floor of the
    segmentation comparison: 16, 32, 64, 128, 256) and the first one again in the last decoder level."""
    from monai.networks.nets import BasicUNet

    if len(cfg.channels) != 5:
        raise ValueError(f"basicunet takes 5 encoder features, got {list(cfg.channels)}")
    return BasicUNet(spatial_dims=2, in_channels=in_channels, out_channels=cfg.num_classes,
                     features=(*cfg.channels, cfg.channels[0]))


@NETWORKS.register("resnet_generator", dims=2, role="generator")
def build_resnet_generator(cfg: Any, in_channels: int, out_channels: int = 1) -> nn.Module:
    """pix2pix's ResNet generator (``cfg``: ngf, n_blocks, dropout, test_dropout, norm)."""
    return ResnetGenerator(in_channels, out_channels, cfg.ngf, cfg.n_blocks, dropout=cfg.dropout,
                           test_dropout=cfg.test_dropout, norm=cfg.norm)


@NETWORKS.register("patchgan", dims=2, role="discriminator")
def build_patchgan(cfg: Any, in_channels: int) -> nn.Module:
    """The PatchGAN (``cfg``: ndf, n_layers, norm); ``in_channels`` = condition + image channels."""
    return PatchDiscriminator(in_channels, cfg.ndf, cfg.n_layers, norm=cfg.norm)


@NETWORKS.register("unet_generator", dims=2, role="generator")
def build_unet_generator(cfg: Any, in_channels: int, out_channels: int = 1) -> nn.Module:
    """pix2pix's U-Net generator (``cfg``: ngf, num_downs, norm, dropout)."""
    return UnetGenerator(in_channels, out_channels, cfg.ngf, cfg.num_downs, norm=cfg.norm, dropout=cfg.dropout)


@NETWORKS.register("spade_generator", dims=2, role="generator")
def build_spade_generator(cfg: Any, in_channels: int, out_channels: int = 1) -> nn.Module:
    """SPADE generator (``cfg``: spade_channels, latent, spade_hidden); ``in_channels`` = label classes."""
    return SPADEGenerator(in_channels, out_channels, cfg.spade_channels, cfg.latent, cfg.spade_hidden)


@NETWORKS.register("lesion_generator", dims=3, role="generator")
def build_lesion_generator(cfg: Any, shape: tuple[int, int, int]) -> nn.Module:
    """3D WGAN lesion-mask generator (``cfg``: generator_channels, latent) on grid ``shape``."""
    return LesionGenerator(shape, cfg.generator_channels, cfg.latent, getattr(cfg, "generator_norm", "instance"))


@NETWORKS.register("lesion_critic", dims=3, role="discriminator")
def build_lesion_critic(cfg: Any, shape: tuple[int, int, int]) -> nn.Module:
    """3D WGAN critic (``cfg``: critic_channels) on grid ``shape``."""
    return LesionCritic(shape, cfg.critic_channels, bool(getattr(cfg, "minibatch_std", False)))
