"""Networks: PSPNet with a dilated ResNet backbone, U-Net (2D/3D), V-Net, pix2pix generator and PatchGAN."""

from strokesynth.nets.pix2pix import NoiseDropout, PatchDiscriminator, ResnetGenerator
from strokesynth.nets.pspnet import Initializer, PSPNet, PyramidPooling, fine_tuning_stages
from strokesynth.nets.resnet import DilatedResNet, load_backbone_weights
from strokesynth.nets.unet import UNet, VNet

__all__ = ["DilatedResNet", "Initializer", "NoiseDropout", "PSPNet", "PatchDiscriminator", "PyramidPooling",
           "ResnetGenerator", "UNet", "VNet", "count_parameters", "fine_tuning_stages", "load_backbone_weights"]


def count_parameters(model) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
