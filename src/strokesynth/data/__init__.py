"""Cases, volumes, modality keys and the training data layer."""

from strokesynth.data.case import LABEL_KEY, Case
from strokesynth.data.modalities import Modality, get_modality, known_modalities, register_modality
from strokesynth.data.volume import Volume

__all__ = ["LABEL_KEY", "Case", "Modality", "Volume", "get_modality", "known_modalities", "register_modality"]
