"""Platscher, Zopes & Federau: synthetic stroke DWIs from label maps, and what they do for a 3D U-Net.

One experiment, run into one folder:

1. the data: a stroke cohort (DWI, anatomical label map, lesion) and a healthy ("normal") cohort;
   the embedded phantom's whole-brain MR studies by default. Held out first, by subject: a test
   set of stroke subjects *and* healthy subjects (lesion-free scans, as the paper's test set);
2. the lesion GAN (3D WGAN-GP) on the training stroke subjects' masks of >= 20 voxels, and its
   report: generated vs training lesion volumes (quantiles, two-sample Kolmogorov-Smirnov test),
   connected components, nearest-training-mask Dice (does it copy?) next to the same number for
   held-out real masks;
3. the translation models (Pix2Pix at each ``lambda_l1``, SPADE, CycleGAN) on the training
   stroke and normal subjects' slices, and for each the lesion-to-parenchyma intensity ratio of
   the synthetic DWIs of the *test* stroke maps against their real DWIs;
4. a synthetic database per model: the normal training subjects' label maps with GAN lesions
   injected (:mod:`strokesynth.recipes.synthetic_db`);
5. the 3D U-Net (Platscher's appendix) trained on: clinical only; clinical + synthetic (each
   model); synthetic only; synthetic then fine-tuned on a few clinical cases; and fractions of the
   clinical data with and without synthetic data - each row for every seed in ``seeds``, 15 % of
   its training cases held out for early stopping (never the test set);
6. Table I and Table II analogs (mean ± sd over test subjects, each subject's value averaged over
   seeds; the sd over seeds of the row mean beside it), paired Wilcoxon tests against
   "clinical only" (Table I) and "without synthetic" at the same fraction (Table II); the
   intensity histograms (the paper's Fig. 5) and example figures.

    OUT/
      config.yaml  splits.json  run.log
      lesion_gan/                     best.pt, metrics.csv, samples.png, report.json
      translation/<model>/            best.pt, metrics.csv
      synthetic/<model>/              the synthetic database (plain layout, provenance)
      segmenter/<row>/seed_<s>/       best.pt, last.pt, metrics.csv
      metrics/cases.csv               every test subject x row x seed
      labelmap_table.txt .json        Tables I and II, lesion GAN and translation reports
      figures/                        translations.png, lesion_gan.png, histograms.png

The public ISLES 2018 release has no DWI: this recipe needs DWIs with label maps, from the
phantom or your own data (FreeSurfer/SynthSeg label maps through a label table).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from strokesynth._fs import write_text_atomic
from strokesynth.config import load_config, load_shipped, replaced
from strokesynth.data.case import Case
from strokesynth.data.config import DataConfig, make_dataset
from strokesynth.data.label_maps import load_label_table
from strokesynth.data.mr_volumes import (
    MIN_LESION_VOXELS,
    LesionMasks,
    MRGrid,
    MRVolume,
    TranslationSlices,
    prepare_mr_case,
    to_mr_grid,
)
from strokesynth.data.normalize import NormSpec
from strokesynth.data.provenance import save_data_sources
from strokesynth.data.splits import holdout_split
from strokesynth.data.volume import Volume
from strokesynth.engine.checkpoint import load_system
from strokesynth.engine.config import OptimConfig, RunConfig
from strokesynth.engine.crossval import train_holdout
from strokesynth.engine.loop import fit
from strokesynth.errors import ConfigError, DataError
from strokesynth.metrics import dice
from strokesynth.metrics.paired import paired_values
from strokesynth.metrics.segmentation import evaluate_case, surface_distances
from strokesynth.runs import RunDir
from strokesynth.systems.labelmap import TranslationConfig, build_translation, parenchyma_mask, translate_volume
from strokesynth.systems.lesion_gan import LesionGANConfig, LesionWGAN
from strokesynth.systems.segmenter import LossConfig, ModelConfig, Segmenter, TrainConfig, predict_case

CONFIGS = Path(__file__).resolve().parents[3] / "configs" / "labelmap"
CLINICAL = "clinical only"


@dataclass
class MRPhantomData:
    """The embedded phantom's whole-brain MR studies for this recipe (nothing is downloaded)."""

    stroke: int = 60
    healthy: int = 40
    size: int = 128
    spacing_mm: float = 1.5
    slices: int = 32
    slice_mm: float = 5.0
    seed: int = 0


def _seg_train() -> TrainConfig:
    # the paper: augmentation on, up to 500 epochs, stopped after 100 without improvement
    data = DataConfig(modalities=["dwi"], size=(128, 128), augment_enabled=True)
    data.normalization["dwi"] = NormSpec("percentile", 0.0, 99.0, "nonzero")
    return TrainConfig(name="unet3d_platscher", data=data,
                       model=ModelConfig(name="unet3d", channels=[16, 32, 64, 128, 256], strides=[[2, 2, 2]] * 4,
                                         dropout=0.02, encoder_norm="none"),
                       loss=LossConfig(name="ce", dice_weight=1.0),
                       optim=OptimConfig(name="adam", lr=1e-4),
                       run=RunConfig(epochs=500, batch_size=5, selection="inner", inner_fraction=0.15,
                                     early_stop_patience=100, lesion_fraction=0.0))


@dataclass
class LabelmapRecipeConfig:
    """The experiment (see the module docstring).

    Attributes:
        dataset: ``phantom`` or a data set folder whose cases have ``dwi``, ``anatomy`` and (stroke
            cases) a ``lesion`` mask; cases without lesion voxels form the normal cohort.
        table: label table of ``anatomy`` (shipped name or YAML; the MR phantom's is ``phantom``);
            ``auto``: the one the label maps' JSON sidecars name as ``LabelTable`` (the
            ISLES'24-layout phantom's ``phantom_ct``), else ``phantom``. Resolved once and saved.
        grid: the working grid every data set case is put on first (:class:`MRGrid`; as stored
            by default). A DWI in ISLES'24's NCCT space (512 x 512 x 70-100 at 0.45 x 0.45 x 2 mm)
            needs one, e.g. ``grid.spacing_mm=3.6 grid.slice_mm=10 grid.slices=16`` for the tiny
            config's 64 x 64 x 16 (the embedded phantom is made on its grid and ignores it).
        clip_percentile: each DWI is clipped at this percentile of its brain and scaled to [-1, 1]
            (99.5 as the paper; a lesion under 0.5 % of the brain is then clipped to the level
            of the brightest grey matter - the pseudo-healthy recipe measured this and uses 99.9).
        test_stroke, test_healthy: fraction of stroke / normal subjects held out for testing.
        models: translation models (``pix2pix``, ``spade``, ``cyclegan``).
        pix2pix_l1: Pix2Pix's L1 weights, one model each (the paper's 100 and 10).
        synthetic_model: the model whose database serves the synthetic-only, fine-tuning and
            fraction rows (``pix2pix`` = the first Pix2Pix).
        n_synthetic: synthetic subjects per database.
        finetune_cases: clinical cases of the fine-tuning rows (the paper's 10 and 50, scaled).
        fractions: fractions of the clinical training subjects for Table II.
        seeds: segmenter seeds per row.
        translation, lesion_gan, segmenter: the three trainable parts.
        finetune_epochs: epochs of the fine-tuning stage (150, the paper's).
    """

    name: str = "labelmap_augmentation"
    dataset: str = "phantom"
    layout: str = "auto"
    table: str = "auto"
    grid: MRGrid = field(default_factory=MRGrid)
    clip_percentile: float = 99.5
    phantom: MRPhantomData = field(default_factory=MRPhantomData)
    test_stroke: float = 0.3
    test_healthy: float = 0.3
    models: list[str] = field(default_factory=lambda: ["pix2pix", "spade", "cyclegan"])
    pix2pix_l1: list[float] = field(default_factory=lambda: [100.0, 10.0])
    synthetic_model: str = "pix2pix"
    n_synthetic: int = 200
    finetune_cases: list[int] = field(default_factory=lambda: [10, 50])
    fractions: list[float] = field(default_factory=lambda: [0.1, 0.25, 0.5, 1.0])
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    seed: int = 0
    translation: TranslationConfig = field(default_factory=TranslationConfig)
    lesion_gan: LesionGANConfig = field(default_factory=LesionGANConfig)
    segmenter: TrainConfig = field(default_factory=_seg_train)
    finetune_epochs: int = 150

    def __post_init__(self) -> None:
        bad = [m for m in self.models if m not in ("pix2pix", "spade", "cyclegan")]
        if bad or not self.models:
            raise ConfigError("models", f"choose among pix2pix, spade, cyclegan; got {self.models}")
        if self.synthetic_model not in self.models:
            raise ConfigError("synthetic_model", f"{self.synthetic_model!r} is not among models {self.models}")
        if any(not 0 < f <= 1 for f in self.fractions):
            raise ConfigError("fractions", f"fractions lie in (0, 1], got {self.fractions}")
        if not self.seeds:
            raise ConfigError("seeds", "name at least one seed")


def paper_config() -> LabelmapRecipeConfig:
    """The paper's settings on a 128x128x32 phantom (GPU-sized)."""
    return LabelmapRecipeConfig()


def tiny_config() -> LabelmapRecipeConfig:
    """CPU-sized (``configs/labelmap/tiny.yaml``)."""
    return load_config(LabelmapRecipeConfig, CONFIGS / "tiny.yaml")


SHIPPED = {"paper": paper_config, "tiny": tiny_config}


def load_recipe_config(path: str | os.PathLike | None, overrides: Sequence[str] = ()) -> LabelmapRecipeConfig:
    """A shipped config by name (``tiny``, ``paper``) or a YAML path, with ``key=value`` overrides."""
    return load_shipped(LabelmapRecipeConfig, SHIPPED, CONFIGS, path, overrides)


# -- data ---------------------------------------------------------------------------------------
def phantom_mr_cases(p: MRPhantomData, echo: Callable[[str], Any] = print) -> list[Case]:
    """The phantom's stroke and healthy whole-brain MR studies, in memory."""
    from strokesynth.phantom import PhantomConfig
    from strokesynth.phantom.mr_study import generate_mr_studies

    cfg = PhantomConfig()
    cfg.subjects, cfg.healthy, cfg.seed = p.stroke, p.healthy, p.seed
    cfg.mr.size, cfg.mr.spacing_mm, cfg.mr.slices, cfg.mr.slice_mm = p.size, p.spacing_mm, p.slices, p.slice_mm
    echo(f"phantom MR studies: {p.stroke} stroke + {p.healthy} healthy subjects, {p.size}x{p.size}x{p.slices} "
         f"({p.spacing_mm}x{p.spacing_mm}x{p.slice_mm} mm)")
    cases, _ = generate_mr_studies(cfg)
    return cases


def seg_case(v: MRVolume) -> Case:
    """A prepared volume as a segmentation case: ``dwi`` in [0, 1] (brain only) and ``lesion``."""
    dwi = np.where(v.brain, (v.image + 1) / 2, 0).astype(np.float32)  # type: ignore[operator]
    return Case(v.case_id, v.subject, {"dwi": Volume(dwi, v.affine), "lesion": Volume(v.lesion.astype(np.uint8),
                                                                                   v.affine, kind="label")})


def resolve_table(name: str, cases: list[Case]) -> str:
    """The label table's name: ``name`` unless it is ``auto`` (see :class:`LabelmapRecipeConfig`).

    Raises:
        DataError: the cases' label maps name different tables (or some name none).
    """
    if name != "auto":
        return name
    named = {str(c.id): (c["anatomy"].meta.get("sidecar") or {}).get("LabelTable") for c in cases if "anatomy" in c}
    found = set(named.values())
    if found <= {None}:
        return "phantom"
    if len(found) > 1:
        first = {t: next(i for i, v in named.items() if v == t) for t in found}
        raise DataError("anatomy", "the label maps' sidecars name different label tables: " +
                        ", ".join(f"{t or 'none'} (e.g. {i})" for t, i in sorted(first.items(), key=str)) +
                        "; name one with --table")
    return str(found.pop())


def synthetic_cases(folder: Path) -> list[Case]:
    """The synthetic database at ``folder`` as segmentation cases (``dwi``, ``lesion``)."""
    from strokesynth.io import open_cohort

    return [c.select(["dwi", "lesion"]) for c in open_cohort(folder, layout="plain", require=["lesion"]).cases]


# -- the experiment -----------------------------------------------------------------------------
def run_labelmap_augmentation(cfg: LabelmapRecipeConfig, out: str | os.PathLike, *, force: bool = False,
                              resume: bool = False, echo: Callable[[str], Any] = print) -> dict[str, Any]:
    """Run the experiment into ``out`` (module docstring); returns the tables.

    Every input is checked (label maps mapped and on their DWI's grid, a stroke subject with a
    lesion of >= 20 voxels in the training split) before the run folder is created; with
    ``resume`` finished models are kept and an interrupted one continues from its ``last.pt``.
    """
    if resume:
        cfg = load_config(LabelmapRecipeConfig, RunDir.resume(out).file("config.yaml"))
    size = cfg.translation.size
    if cfg.dataset == "phantom":
        cases = phantom_mr_cases(cfg.phantom, echo)
    else:
        from strokesynth.io import open_cohort

        cfg = replaced(cfg, dataset=str(Path(cfg.dataset).resolve()))
        if not Path(cfg.dataset).is_dir():
            raise ConfigError("dataset", f"data set folder {cfg.dataset!r} not found")
        cases = open_cohort(cfg.dataset, layout=cfg.layout, require=["dwi", "anatomy"]).cases
        if not cfg.grid.as_stored:
            echo(f"working grid: {cfg.grid.spacing_mm or 'stored'} mm in plane, {cfg.grid.slice_mm or 'stored'} mm "
                 f"slices, {cfg.grid.slices or 'all'} slices (dwi, anatomy, lesion of {len(cases)} cases)")
            cases = [to_mr_grid(c, cfg.grid) for c in cases]
    cfg = replaced(cfg, table=resolve_table(cfg.table, cases))
    table = load_label_table(cfg.table)
    vols = {c.id: prepare_mr_case(c, table, size=size, clip_percentile=cfg.clip_percentile) for c in cases}
    stroke = [i for i, v in vols.items() if v.lesion.any()]
    normal = [i for i, v in vols.items() if not v.lesion.any()]
    if not stroke or len(normal) < 2:
        raise DataError(cfg.dataset, f"need stroke cases and at least two lesion-free cases, got {len(stroke)} and "
                                     f"{len(normal)}")
    rng = np.random.default_rng(cfg.seed)
    train_s, test_s = holdout_split(stroke, cfg.test_stroke, rng)
    train_n, test_n = holdout_split(normal, cfg.test_healthy, rng)
    masks = LesionMasks([vols[i] for i in train_s], min_voxels=cfg.lesion_gan.min_voxels, flip=cfg.lesion_gan.flip,
                        where=f"{cfg.dataset} (training stroke subjects)")
    if any(n < 4 or n & (n - 1) for n in masks.shape):
        raise DataError(cfg.dataset, f"the lesion GAN needs a grid whose sides are powers of two of at least 4; "
                                     f"the lesion masks are {tuple(masks.shape)} (translation.size sets x, y)")
    run = RunDir.reopen(out) if resume else RunDir.create(out, force=force)
    if not resume:
        run.save_config(cfg)
    save_data_sources(run.path, cases, {"anatomy": "input", "dwi": "target", "lesion": "label"})
    run.save_json("splits.json", {"train_stroke": train_s, "test_stroke": test_s, "train_normal": train_n,
                                  "test_normal": test_n})
    log = run.logger()
    echo(f"stroke subjects: {len(train_s)} training, {len(test_s)} test; normal: {len(train_n)} training "
         f"(healthy maps for synthesis), {len(test_n)} test")
    report: dict[str, Any] = {"splits": {"train_stroke": len(train_s), "test_stroke": len(test_s),
                                         "train_normal": len(train_n), "test_normal": len(test_n)}}
    # 1. lesion GAN
    gcfg = replaced(cfg.lesion_gan, shape=list(masks.shape))
    fit(lambda: LesionWGAN(gcfg), masks, None, run.file("lesion_gan"), gcfg.run, seed=cfg.seed, log=log,
        desc="lesion GAN")
    gan = load_system(run.file("lesion_gan", "best.pt"))
    report["lesion_gan"] = lesion_gan_report(gan, masks, [vols[i] for i in test_s],
                                             [prepare_mr_case(c, table, size=size, image=None) for c in cases
                                              if c.id in set(train_n)], table, seed=cfg.seed)
    echo(describe_gan(report["lesion_gan"]))
    # 2. translation models
    tr_vols = [vols[i] for i in train_s + train_n]
    train_slices = TranslationSlices(tr_vols, table.n_classes)
    models = model_configs(cfg)
    report["translation"] = {}
    for key, tcfg in models.items():
        fit(lambda tcfg=tcfg: build_translation(tcfg), train_slices, None, run.file("translation", key), tcfg.run,
            seed=cfg.seed, log=log, desc=f"translation {key}")
        system = load_system(run.file("translation", key, "best.pt"))
        report["translation"][key] = translation_report(system, [vols[i] for i in test_s + test_n], table)
        echo(f"translation {key}: " + describe_translation(report["translation"][key]))
    # 3. synthetic databases (the normal training subjects' label maps)
    from strokesynth.recipes.synthetic_db import build_synthetic_db

    healthy_cases = [c for c in cases if c.id in set(train_n)]
    synth: dict[str, list[Case]] = {}
    for key in models:
        folder = run.file("synthetic", key)
        if not (folder / "synthetic_db.json").exists():
            build_synthetic_db(healthy_cases, run.file("lesion_gan", "best.pt"), run.file("translation", key, "best.pt"),
                               cfg.n_synthetic, folder, seed=cfg.seed, table=cfg.table, force=True, echo=echo)
        synth[key] = synthetic_cases(folder)
    # 4. segmenters
    clinical = [seg_case(vols[i]) for i in train_s]
    test_cases = [seg_case(vols[i]) for i in test_s + test_n]
    rows = segmenter_rows(cfg, clinical, synth, list(models))
    results: list[dict[str, Any]] = []
    for row, spec in rows.items():
        for s in cfg.seeds:
            results += train_and_test(cfg, row, spec, s, test_cases, run, log, echo)
    run.save_table("metrics/cases.csv", results)
    tables = build_tables(cfg, results, rows)
    report.update(tables)
    report["text"] = "\n".join([tables["text"], "", describe_gan(report["lesion_gan"]), ""] +
                               [f"translation {k}: {describe_translation(v)}" for k, v in report["translation"].items()])
    run.save_json("labelmap_table.json", report)
    write_text_atomic(run.file("labelmap_table.txt"), report["text"] + "\n")
    figure_data(run.path, vols, train_s, test_s, train_n, synth, gan, models, table, cfg.seed)
    report["figures"] = dict(FIGURES)  # drawn by the report (strokesynth.report.labelmap_figures)
    run.save_json("labelmap_table.json", report)
    echo("\n" + report["text"])
    return report


#: figure key -> file, relative to the run folder (drawn by :mod:`strokesynth.report.labelmap_figures`)
FIGURES = {"translations": "figures/translations.png", "lesion_gan": "figures/lesion_gan.png",
           "histograms": "figures/histograms.png"}


def _slice_of(v: MRVolume) -> int:
    return int(np.argmax(v.lesion.sum((0, 1)))) if v.lesion.any() else v.classes.shape[2] // 2


def figure_data(run: Path, vols: dict[str, MRVolume], train_s: list[str], test_s: list[str], train_n: list[str],
                synth: dict[str, list[Case]], gan: Any, models: dict[str, Any], table: Any, seed: int) -> Path:
    """Save what the report's figures show, as arrays (``figures/figure_data.npz``) and names
    (``figures/figure_data.json``): one slice of a held-out stroke subject's label map, real DWI and
    each model's translation (in [0, 1]); 6 lesion GAN samples and 3 training masks (maximum
    projection along z); brain-intensity histograms (50 bins on [0, 1], density) of clinical,
    normal and each model's synthetic DWIs. Returns the ``.npz`` path."""
    from strokesynth._fs import write_json_atomic

    arrays: dict[str, np.ndarray] = {}
    v = vols[test_s[0]]
    z = _slice_of(v)
    names, ranges, cmaps = ["label map (test subject)", "real DWI"], [(0, table.n_classes - 1), (0, 1)], ["tab20", "gray"]
    images = [v.classes[:, :, z], (v.image[:, :, z] + 1) / 2]  # type: ignore[index]
    torch.manual_seed(seed)
    for key in models:
        system = load_system(run / "translation" / key / "best.pt")
        fake = translate_volume(system, v.classes, table.n_classes)
        names.append(key)
        ranges.append((0, 1))
        cmaps.append("gray")
        images.append((fake[:, :, z] + 1) / 2)
    arrays.update({f"translation_{i}": np.asarray(a, np.float32) for i, a in enumerate(images)})
    arrays["translation_label"] = np.asarray(v.lesion[:, :, z], np.uint8)
    samples = gan.sample(6, seed=seed + 5).numpy()
    gan_names = [f"generated {k + 1}" for k in range(len(samples))]
    projections = [s.max(2).astype(np.float32) for s in samples]
    for i in train_s[:3]:
        gan_names.append(f"training {vols[i].case_id}")
        projections.append(vols[i].lesion.max(2).astype(np.float32))
    arrays.update({f"gan_{i}": a for i, a in enumerate(projections)})
    bins = np.linspace(0, 1, 51)
    series = [("clinical (stroke)", "-", np.concatenate([(vols[i].image[vols[i].brain] + 1) / 2 for i in train_s])),  # type: ignore[index]
              ("normal", "--", np.concatenate([(vols[i].image[vols[i].brain] + 1) / 2 for i in train_n]))]  # type: ignore[index]
    for key, cases in synth.items():
        series.append((f"synthetic ({key})", ":",
                       np.concatenate([np.asarray(c["dwi"].array)[np.asarray(c["dwi"].array) > 0] for c in cases[:20]])))
    for i, (_, _, values) in enumerate(series):
        arrays[f"hist_{i}"] = np.histogram(values, bins, density=True)[0]
    arrays["hist_centres"] = (bins[1:] + bins[:-1]) / 2
    path = run / "figures" / "figure_data.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(".figure_data.tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)
    write_json_atomic(run / "figures" / "figure_data.json", {
        "translations": {"names": names, "ranges": ranges, "cmaps": cmaps,
                         "title": f"label map -> DWI on a held-out stroke subject ({v.case_id}, z={z}); red: lesion"},
        "lesion_gan": {"names": gan_names, "title": "lesion GAN samples and training masks (projection along z)"},
        "histograms": {"names": [n for n, _, _ in series], "styles": [st for _, st, _ in series]}})
    return path


def model_configs(cfg: LabelmapRecipeConfig) -> dict[str, TranslationConfig]:
    """Translation model key -> its config (Pix2Pix once per L1 weight: ``pix2pix`` for the first,
    ``pix2pix_l1_<w>`` for the others)."""
    out: dict[str, TranslationConfig] = {}
    for m in cfg.models:
        if m == "pix2pix":
            for j, w in enumerate(cfg.pix2pix_l1 or [cfg.translation.lambda_l1]):
                out["pix2pix" if j == 0 else f"pix2pix_l1_{w:g}"] = replaced(
                    cfg.translation, model="pix2pix", lambda_l1=float(w), table=cfg.table)
        else:
            out[m] = replaced(cfg.translation, model=m, table=cfg.table)
    return out


def segmenter_rows(cfg: LabelmapRecipeConfig, clinical: list[Case], synth: dict[str, list[Case]],
                   models: list[str]) -> dict[str, dict[str, Any]]:
    """Row label -> ``{"train": cases, "finetune": cases or None, "table": "I"|"II"}``."""
    rng = np.random.default_rng(cfg.seed + 7)
    order = [clinical[i] for i in rng.permutation(len(clinical))]
    main = synth[cfg.synthetic_model]
    rows: dict[str, dict[str, Any]] = {CLINICAL: {"train": clinical, "finetune": None, "table": "I"}}
    for key in models:
        rows[f"clinical + synthetic ({key})"] = {"train": clinical + synth[key], "finetune": None, "table": "I"}
    rows[f"synthetic only ({cfg.synthetic_model})"] = {"train": main, "finetune": None, "table": "I"}
    for n in cfg.finetune_cases:
        n = min(n, len(clinical))
        rows[f"synthetic -> fine-tuned on {n} clinical"] = {"train": main, "finetune": order[:n], "table": "I"}
    for f in cfg.fractions:
        part = order[:max(2, int(round(f * len(clinical))))]
        rows[f"{f:.0%} clinical"] = {"train": part, "finetune": None, "table": "II", "fraction": f, "synthetic": False}
        rows[f"{f:.0%} clinical + synthetic"] = {"train": part + main, "finetune": None, "table": "II", "fraction": f,
                                                 "synthetic": True}
    return rows


def train_and_test(cfg: LabelmapRecipeConfig, row: str, spec: dict[str, Any], seed: int, test: list[Case],
                   run: RunDir, log: Any, echo: Callable[[str], Any]) -> list[dict[str, Any]]:
    """Train one row's 3D U-Net at ``seed`` (early stopping on 15 % of its training cases) and score it on ``test``."""
    scfg = replaced(cfg.segmenter, {"run.seed": seed})
    folder = run.file("segmenter", _key(row), f"seed_{seed}")

    def data(cases: list[Case], training: bool):
        return make_dataset(cases, scfg.data, seed=seed, train=training, kind="volumes")

    done = train_holdout(spec["train"], test, scfg.run, folder, build=lambda _: Segmenter(scfg), datasets=data,
                         seed=seed, log=log, desc=f"{row} seed {seed}")
    if spec["finetune"]:
        ft = replaced(scfg, {"run.epochs": cfg.finetune_epochs})
        pretrained = done.folder / "best.pt"

        def start(_: Any) -> Segmenter:
            system = Segmenter(ft)
            system.networks["model"].load_state_dict(load_system(pretrained).networks["model"].state_dict())
            return system

        done = train_holdout(spec["finetune"], test, ft.run, folder / "finetune", build=start, datasets=data,
                             seed=seed, split_seed=seed + 1, log=log, desc=f"{row} seed {seed} fine-tuning")
    res = done.result
    model = done.kept().networks["model"].eval()
    ds = make_dataset(test, scfg.data, seed=seed, kind="volumes")
    out = []
    for i, case in enumerate(test):
        prob = predict_case(model, ds, i, device=scfg.run.device).array
        pred = prob > scfg.threshold
        ref = np.asarray(case.label.array) > 0  # type: ignore[union-attr]
        spacing = case["dwi"].spacing
        m = evaluate_case(pred, ref, spacing)
        r: dict[str, Any] = {"row": row, "seed": seed, "case": case.id, "lesion": bool(ref.any()),
                             "epochs": res["epochs"]}
        if ref.any():
            hd_mean = float("nan")
            if pred.any():
                a, b = surface_distances(pred, ref, spacing)
                hd_mean = float((a.max() + b.max()) / 2)
            rvd = (m["pred_ml"] - m["ref_ml"]) / m["ref_ml"]
            r.update({"dice": m["dice"], "rvd": rvd, "hd": m["hd"], "hd95": m["hd95"], "hd_mean_directed": hd_mean,
                      "assd": m["assd"], "precision": m["precision"], "recall": m["recall"], "ref_ml": m["ref_ml"],
                      "avd_ml": m["avd_ml"]})
        else:
            r["fp_ml"] = m["pred_ml"]
        out.append(r)
    les = [r["dice"] for r in out if r["lesion"]]
    fp = [r["fp_ml"] for r in out if not r["lesion"]]
    echo(f"  {row} (seed {seed}): {len(spec['train'])} training cases, epochs {res['epochs']}; test Dice "
         f"{np.mean(les):.3f} on {len(les)} stroke subjects, FP {np.mean(fp) if fp else float('nan'):.2f} ml on "
         f"{len(fp)} healthy")
    return out


def _key(row: str) -> str:
    import re

    return re.sub(r"_+", "_", "".join(ch if ch.isalnum() else "_" for ch in row)).strip("_")


# -- reports ------------------------------------------------------------------------------------
def nearest_dice(masks: Sequence[np.ndarray], reference: Sequence[np.ndarray]) -> np.ndarray:
    """For each mask, the largest Dice with any mask of ``reference`` (a copy scores 1)."""
    return np.array([max(dice(m, r) for r in reference) for m in masks]) if len(reference) else np.zeros(0)


def lesion_gan_report(gan: LesionWGAN, masks: LesionMasks, test: list[MRVolume], healthy: list[MRVolume], table: Any,
                      *, seed: int, n: int = 64) -> dict[str, Any]:
    """What a user needs to trust the lesion GAN (see the module docstring): volumes, a two-sample
    test, components, nearest-training-mask Dice, and where the raw masks fall in healthy maps."""
    from scipy import ndimage, stats

    from strokesynth.data.injection import inject, parenchyma_classes

    samples = gan.sample(n, seed=seed + 99).numpy()
    gen_vox = samples.reshape(n, -1).sum(1)
    real_vox = np.array([m.sum() for m in masks.masks])
    usable = gen_vox >= MIN_LESION_VOXELS
    comps = [ndimage.label(s, np.ones((3, 3, 3)))[1] for s in samples[usable]]
    real_comps = [ndimage.label(m, np.ones((3, 3, 3)))[1] for m in masks.masks]
    near_gen = nearest_dice(list(samples[usable][:32]), masks.masks)
    test_masks = [v.lesion for v in test if v.lesion_voxels >= MIN_LESION_VOXELS]
    near_test = nearest_dice(test_masks, masks.masks)
    par = parenchyma_classes(table)
    inside, fits = [], []
    for k, s in enumerate(samples):
        h = healthy[k % len(healthy)].classes
        if s.any():
            inside.append(float(np.isin(h[s], par).mean()))
        fits.append(inject(h, s, table) is not None)
    ks = stats.ks_2samp(gen_vox[usable], real_vox) if usable.sum() >= 2 else None
    q = [10, 25, 50, 75, 90]
    return {"samples": int(n), "usable_samples": int(usable.sum()), "min_voxels": MIN_LESION_VOXELS,
            "training_masks": len(masks),
            "volume_voxels_quantiles": {"q": q, "generated": np.percentile(gen_vox[usable], q).tolist() if usable.any()
                                        else [], "training": np.percentile(real_vox, q).tolist()},
            "ks_statistic": None if ks is None else float(ks.statistic), "ks_p": None if ks is None else float(ks.pvalue),
            "components_per_mask": {"generated_mean": float(np.mean(comps)) if comps else None,
                                    "training_mean": float(np.mean(real_comps))},
            "nearest_training_dice": {"generated_median": float(np.median(near_gen)) if near_gen.size else None,
                                      "generated_max": float(near_gen.max()) if near_gen.size else None,
                                      "held_out_real_median": float(np.median(near_test)) if near_test.size else None},
            "raw_mask_share_in_parenchyma": float(np.mean(inside)) if inside else None,
            "injection_fits_first_draw": float(np.mean(fits))}


def describe_gan(r: dict[str, Any]) -> str:
    q = r["volume_voxels_quantiles"]
    nd = r["nearest_training_dice"]
    ks = "-" if r["ks_p"] is None else f"KS D = {r['ks_statistic']:.2f}, p = {r['ks_p']:.3g}"
    return (f"lesion GAN: {r['usable_samples']}/{r['samples']} samples with >= {r['min_voxels']} voxels; volume "
            f"quantiles (voxels, 10/25/50/75/90) generated {[round(v) for v in q['generated']]} vs training "
            f"{[round(v) for v in q['training']]} ({ks}, {r['training_masks']} training masks); components per mask "
            f"{_num(r['components_per_mask']['generated_mean'])} vs {r['components_per_mask']['training_mean']:.2f}; "
            f"nearest-training-mask Dice median {_num(nd['generated_median'])} (held-out real masks: "
            f"{_num(nd['held_out_real_median'])}); share of raw mask voxels in the parenchyma of healthy maps "
            f"{_num(r.get('raw_mask_share_in_parenchyma'))}, injections fitting at the first draw "
            f"{_num(r.get('injection_fits_first_draw'))}")


def _num(v: Any) -> str:
    return "-" if v is None else f"{v:.2f}"


def translation_report(system: Any, test: list[MRVolume], table: Any) -> dict[str, Any]:
    """Lesion-to-parenchyma ratio of synthetic vs real DWIs of the test label maps, L1 on the brain."""
    from strokesynth.metrics import lesion_contrast

    gen, real, l1 = [], [], []
    torch.manual_seed(0)
    for v in test:
        fake = translate_volume(system, v.classes, table.n_classes)
        l1.append(float(np.abs(fake - v.image)[v.brain].mean()) / 2)  # type: ignore[operator]
        if v.lesion_voxels >= MIN_LESION_VOXELS:
            par = parenchyma_mask(v.classes, table) | v.lesion
            gen.append(lesion_contrast((fake + 1) / 2, v.lesion, par))
            real.append(lesion_contrast((v.image + 1) / 2, v.lesion, par))  # type: ignore[operator]
    g, r = float(np.nanmean(gen)) if gen else float("nan"), float(np.nanmean(real)) if real else float("nan")
    # ratio_of_ratios: generated over real lesion-to-parenchyma ratio. A generator that draws no lesion
    # at all (ratio 1) already scores 1 / r of it, so the share of the real lesion's *excess*
    # brightness over parenchyma, (g - 1) / (r - 1), is given too
    return {"lesion_ratio_generated": g, "lesion_ratio_real": r, "ratio_of_ratios": g / r if r else float("nan"),
            "excess_of_real": (g - 1) / (r - 1) if r and r != 1 else float("nan"),
            "l1_brain": float(np.mean(l1)), "test_maps": len(test), "stroke_maps": len(gen)}


def describe_translation(r: dict[str, Any]) -> str:
    return (f"lesion/parenchyma intensity {r['lesion_ratio_generated']:.2f} synthetic vs {r['lesion_ratio_real']:.2f} "
            f"real ({r['ratio_of_ratios']:.0%}; excess over parenchyma {r.get('excess_of_real', float('nan')):.0%} of the "
            f"real) on {r['stroke_maps']} test stroke maps; brain L1 {r['l1_brain']:.3f}")


METRICS_I = ("dice", "rvd", "hd", "hd_mean_directed", "assd", "precision", "recall")


def _stats(values: list[float]) -> dict[str, float]:
    v = np.array([x for x in values if x is not None and np.isfinite(x)], float)
    return {"mean": float(v.mean()) if v.size else float("nan"),
            "sd": float(v.std(ddof=1)) if v.size > 1 else float("nan"), "n": int(v.size),
            "undefined": int(len(values) - v.size)}


def _cell(s: dict[str, float], digits: int = 3) -> str:
    if np.isnan(s["mean"]):
        return "-"
    return f"{s['mean']:.{digits}f}" + (f"±{s['sd']:.{digits}f}" if np.isfinite(s["sd"]) else "")


def _per_case(results: list[dict[str, Any]], row: str, metric: str) -> dict[str, float]:
    """Case -> metric averaged over seeds (NaN seeds left out)."""
    acc: dict[str, list[float]] = {}
    for r in results:
        if r["row"] == row and metric in r and r[metric] is not None and np.isfinite(r[metric]):
            acc.setdefault(r["case"], []).append(float(r[metric]))
    return {c: float(np.mean(v)) for c, v in acc.items()}


def build_tables(cfg: LabelmapRecipeConfig, results: list[dict[str, Any]], rows: dict[str, dict[str, Any]]
                 ) -> dict[str, Any]:
    """Tables I and II (see the module docstring) as text and numbers."""
    out: dict[str, Any] = {"table_I": {}, "table_II": {}, "paired": []}
    head = "  ".join(["row".ljust(40), *(m.rjust(15) for m in ("Dice", "RVD", "HD mm", "HD mean-dir mm", "ASSD mm",
                                                              "precision", "recall", "FP ml healthy", "Dice seed sd"))])
    lines = [f"Table I analog: 3D U-Net on held-out stroke subjects (+ healthy subjects for FP), "
             f"mean±sd over subjects (each averaged over {len(cfg.seeds)} seed(s))", head]
    for row, spec in rows.items():
        if spec["table"] != "I":
            continue
        cells = {m: _stats(list(_per_case(results, row, m).values())) for m in METRICS_I}
        cells["fp_ml"] = _stats(list(_per_case(results, row, "fp_ml").values()))
        seed_means = [np.nanmean([r["dice"] for r in results if r["row"] == row and r["seed"] == s and r["lesion"]])
                      for s in cfg.seeds]
        cells["dice_seed_sd"] = {"mean": float(np.std(seed_means, ddof=1)) if len(seed_means) > 1 else float("nan"),
                                 "sd": float("nan"), "n": len(seed_means), "undefined": 0}
        out["table_I"][row] = cells
        lines.append("  ".join([row[:40].ljust(40), *(_cell(cells[m]).rjust(15) for m in METRICS_I),
                                _cell(cells["fp_ml"], 2).rjust(15), _cell(cells["dice_seed_sd"]).rjust(15)]))
        if row != CLINICAL:
            p = paired_values(_per_case(results, CLINICAL, "dice"), _per_case(results, row, "dice"), CLINICAL, row,
                              "dice")
            out["paired"].append(p)
    lines += ["", "Table II analog: Dice by fraction of the clinical training data, without / with synthetic data",
              "  ".join(["fraction".ljust(10), "without".rjust(15), "with".rjust(15), "mean diff".rjust(10),
                         "better/worse".rjust(13), "Wilcoxon p".rjust(11)])]
    for f in cfg.fractions:
        a, b = f"{f:.0%} clinical", f"{f:.0%} clinical + synthetic"
        da, db = _per_case(results, a, "dice"), _per_case(results, b, "dice")
        p = paired_values(da, db, a, b, "dice")
        out["table_II"][f"{f:g}"] = {"without": _stats(list(da.values())), "with": _stats(list(db.values())),
                                     "paired": p}
        lines.append("  ".join([f"{f:.0%}".ljust(10), _cell(_stats(list(da.values()))).rjust(15),
                                _cell(_stats(list(db.values()))).rjust(15), f"{p['mean_diff']:+.3f}".rjust(10),
                                f"{p['better']}/{p['worse']}".rjust(13), f"{p['wilcoxon_p']:.3g}".rjust(11)]))
    lines += ["", "Paired against 'clinical only' (Dice per test stroke subject, Wilcoxon signed-rank):"]
    lines += [f"  {p['b']}: mean {p['mean_diff']:+.3f} over {p['cases']} subjects, better on {p['better']}, worse on "
              f"{p['worse']}; p = {p['wilcoxon_p']:.3g}" for p in out["paired"]]
    lines += ["", "HD: the standard Hausdorff distance (max of both directed maxima); HD mean-dir: the paper's mean of "
                  "the two directed maxima; RVD = (predicted - reference) / reference volume; FP ml: predicted volume "
                  "on the healthy test subjects; every checkpoint chosen on 15 % of the row's own training cases"]
    out["text"] = "\n".join(lines)
    return out
