"""Trainable systems, one file each; importing this package registers them by name."""

from strokesynth.systems.pix2pix import GANConfig, Pix2Pix
from strokesynth.systems.pseudo_dwi import PseudoDwi, PseudoDwiConfig
from strokesynth.systems.pseudo_healthy import PseudoHealthyConfig, SegmentorConfig
from strokesynth.systems.segmenter import Segmenter, TrainConfig

__all__ = ["GANConfig", "Pix2Pix", "PseudoDwi", "PseudoDwiConfig", "PseudoHealthyConfig", "SegmentorConfig",
           "Segmenter", "TrainConfig"]
