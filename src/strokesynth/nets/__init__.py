"""Networks: PSPNet with a dilated ResNet backbone, U-Net (2D/3D) and V-Net."""

from strokesynth.nets.pspnet import Initializer, PSPNet, PyramidPooling, fine_tuning_stages
from strokesynth.nets.resnet import DilatedResNet, load_backbone_weights
from strokesynth.nets.unet import UNet, VNet

__all__ = ["DilatedResNet", "Initializer", "PSPNet", "PyramidPooling", "UNet", "VNet", "count_parameters",
           "fine_tuning_stages", "load_backbone_weights"]


def count_parameters(model) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
