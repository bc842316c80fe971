"""Perfusion analysis of raw 4D CTP: deconvolution, AIF selection, bolus window, MIP."""

from strokesynth.perfusion.aif import InputFunction, gamma_variate, select_aif, select_vof, venous_scale
from strokesynth.perfusion.bolus import accumulated_curve, bolus_window, resample_frames, temporal_mip
from strokesynth.perfusion.deconvolution import METHODS, PerfusionMaps, deconvolve, oscillation_index
from strokesynth.perfusion.maps import PerfusionConfig, PerfusionResult, analyze_ctp, brain_mask

__all__ = [
    "METHODS", "InputFunction", "PerfusionConfig", "PerfusionMaps", "PerfusionResult", "accumulated_curve",
    "analyze_ctp", "bolus_window", "brain_mask", "deconvolve", "gamma_variate", "oscillation_index",
    "resample_frames", "select_aif", "select_vof", "temporal_mip", "venous_scale",
]
