"""Every number of the phantom, as typed dataclasses (YAML: ``configs/phantom.yaml``).

Ranges are ``(low, high)`` and drawn uniformly per subject (or per scan where stated).
Units: mm, s, HU, ml/100 g/min (CBF), ml/100 g (CBV).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal, TypeVar

from strokesynth.config import bounded

Range = tuple[float, float]
G = TypeVar("G", "GridConfig", "MRStudyConfig")


def resized(grid: G, size: int) -> G:
    """``grid`` at an in-plane matrix of ``size`` px with the same field of view (``size x spacing_mm``,
    mm): the spacing follows the size. ``size`` must already be checked (at least 1)."""
    return replace(grid, size=size, spacing_mm=grid.spacing_mm * grid.size / size)


@dataclass
class GridConfig:
    """Acquisition grid of each scan (an axial slab)."""

    size: int = bounded(256, lo=16, hi=1024)  #: in-plane matrix (pixels)
    spacing_mm: float = bounded(0.9, lo=0.0, lo_open=True)  #: in-plane pixel size (mm)
    slice_mm: float = bounded(5.0, lo=0.0, lo_open=True)  #: slice thickness = spacing (mm)
    slices: list[int] = bounded(factory=lambda: [2, 4, 6, 8, 8, 10, 16, 22], lo=1, hi=400, min_len=1)  #: slab sizes
    sub_slices: int = bounded(5, lo=1, hi=50)  #: samples across a slice for partial volume
    two_slab_prob: float = bounded(0.25, lo=0.0, hi=1.0)  #: chance a subject has two slabs (two scans)
    slab_center_mni: Range = (-5.0, 35.0)  #: MNI z of a slab's centre (mm)


@dataclass
class AnatomyConfig:
    """Per-subject variation of the MNI ICBM152 anatomy."""

    head_scale: Range = (0.86, 1.0)  #: isotropic scale (MNI brains are large)
    rotate_deg: tuple[float, float, float] = (4.0, 4.0, 10.0)  #: max |rotation| about x, y, z
    translate_mm: float = 6.0  #: max |in-plane translation|
    elastic_mm: float = 3.0  #: SD of the smooth displacement
    elastic_smooth_mm: float = 20.0  #: correlation length of the displacement
    ventricle_enlarge: Range = (0.0, 0.35)  #: radial stretch around the ventricles (0 = none)
    skull_mm: Range = (5.0, 8.0)  #: skull thickness


@dataclass
class TissueConfig:
    """Tissue properties (literature values)."""

    cbf_gm: Range = (50.0, 60.0)
    cbf_wm: Range = (20.0, 25.0)
    cbv_gm: Range = (3.6, 4.4)
    cbv_wm: Range = (1.8, 2.2)
    hu_gm: float = 37.0
    hu_wm: float = 28.0
    hu_csf: float = 6.0
    hu_blood: float = 42.0
    hu_bone: float = 1100.0
    hu_scalp: float = 20.0
    hu_air: float = -1000.0
    territory_delay_s: Range = (0.2, 1.5)  #: normal arrival delay of each territory after the AIF


@dataclass
class BolusConfig:
    """Contrast bolus and the 4D acquisition."""

    frames: int = bounded(48, lo=8, hi=1000)
    dt: float = bounded(1.25, lo=0.0, hi=60.0, lo_open=True)  #: s between frames
    aif_t0: Range = (9.0, 13.0)  #: bolus arrival in the AIF (s)
    aif_alpha: float = 3.0
    aif_beta: Range = (1.3, 1.8)  #: s
    aif_peak_hu: Range = (250.0, 400.0)
    recirculation: float = 0.12  #: second-pass peak / first-pass peak
    recirculation_delay_s: float = 9.0
    residue: Literal["exponential", "gamma"] = "exponential"
    residue_shape: float = 3.0  #: shape of the gamma transit-time distribution
    vof_delay_s: float = 4.0  #: venous output delay after the AIF
    kh: float = 0.733  #: haematocrit factor (same as the default deconvolution)
    rho: float = 1.04  #: tissue density g/ml


@dataclass
class StrokeConfig:
    """The occlusion: where, how large, how severe."""

    territory_weights: dict[str, float] = field(default_factory=lambda: {"mca": 0.7, "aca": 0.15, "pca": 0.15})
    core_radius_mm: Range = (8.0, 45.0)  #: log-uniform (the start before size control fits it)
    hypo_ratio: Range = (1.5, 2.6)  #: hypoperfused radius / core radius
    irregularity: float = 0.35  #: relative amplitude of the boundary noise
    rcbf_core: Range = (0.05, 0.22)
    rcbf_penumbra: Range = (0.4, 0.7)
    rcbv_core: Range = (0.3, 0.6)
    rcbv_penumbra: Range = (1.0, 1.25)
    delay_s: Range = (6.0, 10.0)  #: extra bolus delay in the hypoperfused region
    collateral_fill: Range = (0.3, 0.7)  #: arterial enhancement left distal to the occlusion
    no_core_prob: float = 0.12
    #: fit the core radius to a target volume inside the slab (see ``phantom/lesion_size.py``);
    #: False: the radius is drawn from ``core_radius_mm`` and the slab holds what it holds
    size_control: bool = True
    size_bounds_ml: tuple[float, float] = (10.0, 50.0)  #: size groups: small < 10 <= medium <= 50 < large
    size_group_probs: tuple[float, float, float] = (0.39, 0.43, 0.17)  #: ISLES 2018 test split (Wang et al.)
    size_range_ml: Range = (1.0, 150.0)  #: smallest and largest target volume (ml)
    slab_miss_prob: float = 0.0  #: chance the lesion's seed lies 10 mm or more outside the slabs
    satellite_prob: float = 0.3
    satellites: tuple[int, int] = (1, 3)
    satellite_radius_mm: Range = (2.5, 5.0)
    core_threshold: float = 0.3  #: core = ground-truth CBF below this fraction of normal
    penumbra_tmax_s: float = 6.0  #: penumbra = ground-truth Tmax above this, outside the core
    ncct_core_drop_hu: Range = (1.0, 4.0)  #: early hypodensity of the core
    dwi_core_ratio: Range = (1.6, 2.3)
    flair_core_ratio: Range = (1.0, 1.2)


@dataclass
class ScannerConfig:
    """Image formation and noise."""

    ct_noise_hu: float = 4.0
    ctp_noise_hu: float = 5.0
    noise_corr_mm: float = 0.9  #: Gaussian sigma of the CT noise correlation
    mr_noise: float = 0.03  #: Rician sigma relative to white matter
    bias: float = 0.15  #: amplitude of the MR bias field
    dwi_scale: float = 400.0  #: DWI white-matter signal (a.u.)
    flair_scale: float = 300.0
    intensity_scale: Range = (0.85, 1.15)  #: per-subject factor on the MR signal scales


@dataclass
class MotionConfig:
    """Rigid head motion during the 4D CTP (off by default). The head is still at the first frame
    (the maps' reference), then drifts slowly, jerks once, or both; in-plane rotation and
    translation get the full amplitude, tilts and through-plane shifts the given shares."""

    prob: float = 0.0  #: chance that a scan moves
    translate_mm: Range = (1.0, 4.0)  #: peak in-plane displacement
    rotate_deg: Range = (1.0, 4.0)  #: peak in-plane rotation
    kinds: tuple[str, ...] = ("drift", "sudden", "both")  #: drawn uniformly
    tilt_share: float = 1 / 3  #: peak tilt (about x, y) / peak in-plane rotation
    through_plane_share: float = 0.25  #: peak z shift / peak in-plane shift
    drift_steps: int = 6  #: a drift moves in this many equal steps (each a pose imaged afresh)


@dataclass
class MRStudyConfig:
    """Grid and tissue values of the whole-brain MR studies (``phantom --mr-study``).

    ADC in 1e-3 mm²/s; relative signals are per tissue before the scanner's scale.
    """

    size: int = bounded(128, lo=16, hi=1024)  #: in-plane matrix
    spacing_mm: float = 1.5  #: in-plane pixel size
    slices: int = bounded(32, lo=1, hi=400)
    slice_mm: float = 5.0
    sub_slices: int = 3  #: samples across a slice for partial volume
    center_mni_z: float = 8.0  #: MNI z of the grid's centre (mm)
    b_value: float = 1000.0  #: s/mm²
    adc_gm: tuple[float, float] = (0.78, 0.88)
    adc_wm: tuple[float, float] = (0.66, 0.76)
    adc_csf: float = 3.0
    radc_core: tuple[float, float] = (0.5, 0.7)  #: core ADC / normal ADC
    t2_core: tuple[float, float] = (1.0, 1.15)  #: core S0 / normal S0
    s0: dict[str, float] = field(default_factory=lambda: {
        "gm": 1.1, "wm": 0.9, "csf": 2.0, "vessel": 0.3, "scalp": 0.15, "skull": 0.05})  #: scalp: fat-suppressed
    flair: dict[str, float] = field(default_factory=lambda: {
        "gm": 1.15, "wm": 0.85, "csf": 0.1, "vessel": 0.05, "scalp": 1.3, "skull": 0.05})
    t1: dict[str, float] = field(default_factory=lambda: {
        "gm": 0.6, "wm": 1.0, "csf": 0.15, "vessel": 0.2, "scalp": 0.9, "skull": 0.1})
    t1_core: float = 0.9  #: core T1w signal / normal
    scale: float = 400.0  #: white-matter b0 signal (a.u.); FLAIR and T1 use the same scale


@dataclass
class PhantomConfig:
    """A phantom cohort; the same config and seed give bit-identical files."""

    subjects: int = bounded(8, lo=0, hi=10_000)
    healthy: int = bounded(0, lo=0, hi=10_000)  #: extra subjects without a stroke
    seed: int = bounded(0, lo=0, hi=2**63 - 1)
    grid: GridConfig = field(default_factory=GridConfig)
    anatomy: AnatomyConfig = field(default_factory=AnatomyConfig)
    tissue: TissueConfig = field(default_factory=TissueConfig)
    bolus: BolusConfig = field(default_factory=BolusConfig)
    stroke: StrokeConfig = field(default_factory=StrokeConfig)
    scanner: ScannerConfig = field(default_factory=ScannerConfig)
    motion: MotionConfig = field(default_factory=MotionConfig)
    mr: MRStudyConfig = field(default_factory=MRStudyConfig)  #: whole-brain MR studies (``phantom --mr-study``)
    perfusion_method: str = "osvd"  #: method for the vendor-like maps


#: Peak memory of one phantom process besides its scans (the MNI template and its resampling), bytes;
#: measured 1.68 GB at 128 and 256 px (``/usr/bin/time -v``, Intel Xeon, 2026-12-06).
BASE_BYTES = 1.8e9


def estimated_peak_bytes(cfg: PhantomConfig, mr_study: bool = False) -> float:
    """Estimated peak memory of generating one scan of ``cfg`` (scans are made one at a time).

    A CTP slab: 7 bytes per voxel and frame of the largest slab (the float32 4D CTP, its noise and
    the maps; measured +330 MB from 8 to 16 slices at 256 px and 48 frames, i.e. 6.6 bytes);
    an MR study: 60 bytes per voxel (a dozen float32 volumes at ``sub_slices`` resolution)."""
    if mr_study:
        return BASE_BYTES + 60.0 * cfg.mr.size**2 * cfg.mr.slices * max(1, cfg.mr.sub_slices)
    return BASE_BYTES + 7.0 * cfg.grid.size**2 * max(cfg.grid.slices) * cfg.bolus.frames
