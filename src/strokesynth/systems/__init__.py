"""Trainable systems, one file each; importing this package registers them by name."""

from strokesynth.systems.labelmap import TranslationConfig, build_translation
from strokesynth.systems.lesion_gan import LesionGANConfig, LesionWGAN
from strokesynth.systems.pix2pix import GANConfig, Pix2Pix
from strokesynth.systems.pseudo_dwi import PseudoDwi, PseudoDwiConfig
from strokesynth.systems.pseudo_healthy import PseudoHealthyConfig, SegmentorConfig
from strokesynth.systems.segmenter import Segmenter, TrainConfig

__all__ = ["GANConfig", "LesionGANConfig", "LesionWGAN", "Pix2Pix", "TranslationConfig", "build_translation", "PseudoDwi", "PseudoDwiConfig", "PseudoHealthyConfig", "SegmentorConfig",
           "Segmenter", "TrainConfig"]
