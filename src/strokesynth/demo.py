"""The main job on embedded data: the five systems on one digital stroke phantom, one report.

``strokesynth demo`` generates a phantom cohort (ISLES 2018 layout, perfusion maps computed
from the simulated 4D CTP, simulated DWI and FLAIR), writes a perfusion-accuracy report
against the phantom's truth, checks the cohort and makes subject-level folds, then runs each
chosen system at a CPU budget (every number from held-out subjects, every checkpoint chosen
on training subjects):

1. ``segmentation``: PSPNet + focal loss on CT + perfusion maps (FCN; Abulnaga & Rubin);
2. ``ctmr``: one pix2pix CT-to-MR cGAN per fold, generating DWI for its held-out scans only,
   and FCN-CGAN, the same segmenter with the generated DWI (Rubin & Abulnaga);
3. ``pseudo-dwi``: pseudo-DWI from perfusion maps and CTA features of the raw 4D CTP, with
   SLNet trained end to end (Wang, Song et al.);
4. ``labelmap``: label map -> DWI translation (Pix2Pix) and a 3D WGAN lesion generator whose
   synthetic subjects train a 3D U-Net beside the clinical ones (Platscher, Zopes & Federau).
   It needs whole-brain label maps, so it runs on the phantom's whole-brain MR studies (same
   phantom and seed, its own subjects) instead of the CTP slabs;
5. ``pseudo-healthy``: pathology factorisation on the cohort's DWI slices (Xia, Chartsias &
   Tsaftaris); its anomaly map is scored as a lesion detector.

Systems 1-3 and 5 share the CTP cohort and its folds; 1-3 are paired scan by scan with the
CBF-threshold baseline. Each system writes its own run folder (``OUT/ctmr``,
``OUT/pseudo_dwi``, ``OUT/labelmap``, ``OUT/pseudo_healthy``) with its own ``report.html``;
``OUT/report.html`` holds one overview table and a section per system.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from strokesynth._fs import write_text_atomic
from strokesynth.config import bounded, freeze, save_config
from strokesynth.data.config import DataConfig, fold_datasets
from strokesynth.data.splits import subject_kfold
from strokesynth.errors import ConfigError, DataError
from strokesynth.io import open_cohort
from strokesynth.io.integrity import check_dataset, format_report
from strokesynth.phantom import PhantomConfig, cohort_summary, generate_cohort, write_phantom
from strokesynth.phantom.cohort import case_montage, read_ground_truth
from strokesynth.phantom.config import resized
from strokesynth.phantom.validation import accuracy_table, maps_vs_truth, osipi_accuracy, summarize_osipi
from strokesynth.plots import channel_montage
from strokesynth.recipes.recipe import DemoCohort, resolve
from strokesynth.recipes.registry import RECIPES
from strokesynth.report.ctmr import Section, summary_rows
from strokesynth.report.html import dict_table, esc, figure, human, table, write_page
from strokesynth.report.overview import overview, overview_rows
from strokesynth.report.perfusion import write_perfusion_report
from strokesynth.runs import RunDir

#: The demo's own first system: the FCN of the CT-to-MR recipe trained alone (when ``ctmr`` is
#: chosen too, the FCN is trained inside the ``ctmr`` run instead).
SEGMENTATION = ("1. CTP segmentation: PSPNet + focal loss (Abulnaga & Rubin)", "segmentation")


def demo_systems() -> dict[str, tuple[str, str]]:
    """System key -> (heading, run sub-folder), in demo order: ``segmentation``, then every
    registered recipe with a :class:`~strokesynth.recipes.recipe.DemoPart` (by its ``order``)."""
    return {"segmentation": SEGMENTATION, **{d.key: (d.heading, d.folder) for _, d in RECIPES.demo_parts()}}


def demo_budget() -> dict[str, list[str]]:
    """What the demo changes in each recipe's ``tiny`` config so that all five fit in about 15
    minutes on 2 CPU cores (measured per system in ``summary.json: seconds``); declared by each
    recipe's ``DemoPart.budget``. The cohort's size, folds and seed are set on top of these."""
    return {d.key: list(d.budget) for _, d in RECIPES.demo_parts()}


@dataclass
class DemoConfig:
    """The demo: which systems, the phantom cohort they share, and per-system overrides.

    Attributes:
        systems: keys of :func:`demo_systems`, run in that order.
        subjects, healthy, size: the CTP phantom cohort (stroke subjects, subjects without a
            stroke, in-plane matrix; the field of view stays 230 mm).
        folds, seed: subject-level folds of every system on the CTP cohort; the one seed.
        gan_epochs, seg_epochs: the cGAN's and the CTP segmenters' epochs per fold (0: the
            demo budget of the ``ctmr`` recipe).
        data: a user's data set folder (``demo --data``; e.g. an ISLES'24 release) instead of the
            phantom: ``subjects`` and ``healthy`` are then unused and ``size`` is the working grid
            every recipe resamples its slices to (the median field of view over ``size`` pixels).
        overrides: ``system -> ["key=value", ...]`` applied to that recipe's config after
            :func:`demo_budget` (e.g. ``{"pseudo-dwi": ["system.run.epochs=2"]}``).
    """

    name: str = "demo"
    systems: list[str] = field(default_factory=lambda: list(demo_systems()))
    subjects: int = bounded(8, lo=1, hi=1000)
    healthy: int = bounded(1, lo=0, hi=1000)
    size: int = bounded(64, lo=32, hi=1024)
    folds: int = 3
    seed: int = bounded(0, lo=0, hi=2**63 - 1)
    gan_epochs: int = bounded(0, lo=0)
    seg_epochs: int = bounded(0, lo=0)
    overrides: dict[str, list[str]] = field(default_factory=dict)
    data: str = ""

    def __post_init__(self) -> None:
        systems, budget = demo_systems(), demo_budget()
        bad = [s for s in self.systems if s not in systems]
        if bad or not self.systems:
            raise ConfigError("--systems", f"choose among {', '.join(systems)}; got {', '.join(self.systems) or 'none'}")
        bad = [s for s in self.overrides if s not in budget]
        if bad:
            raise ConfigError("--set", f"overrides name a system among {', '.join(budget)}; got {', '.join(bad)}")
        if self.subjects < 1 or self.size < 32 or self.size % 8:
            raise ConfigError("demo", "need at least 1 subject and a size of at least 32 that is a multiple of 8")
        if self.folds < 2 or (not self.data and self.folds > self.subjects + self.healthy):
            raise ConfigError("--folds", f"need 2 to {self.subjects + self.healthy} folds (one subject each at least)")


def recipe_configs(cfg: DemoConfig, data_dir: str | os.PathLike, pixel_mm: float = 0.0) -> dict[str, Any]:
    """The resolved config of every recipe the demo runs (``ctmr`` also serves ``segmentation``),
    every one checked before anything trains: the recipe's ``tiny`` config with its demo budget,
    then the cohort's data, folds, seed and size (``pixel_mm``: a user's data resampled to that
    working pixel size, see :class:`~strokesynth.recipes.recipe.DemoCohort`), then the user's
    ``--set SYSTEM:KEY=VALUE``."""
    cohort = DemoCohort(data=str(Path(data_dir).resolve()), size=cfg.size, folds=cfg.folds, seed=cfg.seed,
                        pixel_mm=pixel_mm)
    epochs = {"ctmr": ([f"synthesis.run.epochs={cfg.gan_epochs}"] if cfg.gan_epochs else [])
                      + ([f"segmentation.run.epochs={cfg.seg_epochs}"] if cfg.seg_epochs else [])}
    wanted = {"ctmr" if s == "segmentation" else s for s in cfg.systems}
    out = {}
    for recipe, part in RECIPES.demo_parts():
        if part.key in wanted:
            shared = resolve(part.cohort)(cohort) if part.cohort is not None else []
            overrides = [*part.budget, *shared, *epochs.get(part.key, []), *cfg.overrides.get(part.key, [])]
            out[part.key] = freeze(recipe.config("tiny", overrides))
    return out


def reset_peak_memory() -> bool:
    """Start a new peak-memory window for this process (Linux: ``clear_refs`` 5 resets ``VmHWM``);
    False where that is not possible (the next :func:`peak_memory_gb` is then the peak so far)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_memory_gb() -> float:
    """This process's peak resident memory since the last :func:`reset_peak_memory` (or since it
    started), GB of 10^9 bytes as in ``benchmarks/`` (``VmHWM``; ``ru_maxrss``, the peak since the
    start, where /proc is absent)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) * 1024 / 1e9, 2)
    except OSError:
        pass
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9, 2)


def run_demo(cfg: DemoConfig, out: str | os.PathLike, *, force: bool = False, dro: str | os.PathLike | None = None,
             echo: Callable[[str], Any] = print) -> dict[str, Any]:
    """Run the demo into the run folder ``out``; returns the summary it also saves
    (``summary.json``: the cohort, perfusion accuracy, seconds per stage, the overview)."""
    t0 = time.time()
    own = open_own_data(cfg, echo) if cfg.data else None  # read before anything is written
    if own is not None and own["skipped"]:
        cfg = replace(cfg, systems=[s for s in cfg.systems if s not in own["skipped"]])
    # every recipe config checked before anything is written
    configs = recipe_configs(cfg, cfg.data or Path(out) / "data", own["pixel_mm"] if own else 0.0)
    run = RunDir.create(out, force=force)
    save_config(cfg, run.file("demo.yaml"))
    log = run.logger()
    systems = demo_systems()
    stages = ["phantom" if own is None else "data"] + [s for s in systems if s in cfg.systems and (s != "segmentation" or "ctmr" not in cfg.systems)]
    seconds: dict[str, float] = {}
    peak_gb: dict[str, float] = {}  # peak resident memory of the process during each stage

    def stage(name: str) -> None:
        i = stages.index(name) + 1
        title = systems[name][0] if name in systems else (
            "phantom, perfusion, checks" if own is None else f"your data set: {cfg.data}")
        if name == "ctmr" and "segmentation" in cfg.systems:
            title = "1-2. CTP segmentation (FCN: PSPNet + focal loss) and the CT-to-MR cGAN (FCN-CGAN)"
        echo(f"\n[{i}/{len(stages)}] {title} ({time.time() - t0:.0f} s so far)")

    stage(stages[0])
    t = time.time()
    own_peaks = reset_peak_memory()
    summary = phantom_stage(cfg, run, dro=dro, echo=echo) if own is None else data_stage(cfg, run, own, echo)
    seconds[stages[0]] = round(time.time() - t, 1)
    peak_gb[stages[0]] = peak_memory_gb()
    for name in stages[1:]:
        stage(name)
        t = time.time()
        own_peaks = reset_peak_memory() and own_peaks
        folder = run.file(systems[name][1])
        if name == "segmentation":  # alone: FCN without the cGAN
            from strokesynth.recipes.cv import run_training

            _, fcn, _ = configs["ctmr"].resolved()
            run_training(fcn, folder, force=True, echo=echo)
        else:
            recipe = RECIPES.by_demo_key(name)
            assert recipe is not None
            resolve(recipe.run)(configs[name], folder, force=True, echo=echo)
            if recipe.report is not None:
                resolve(recipe.report)(folder)
        seconds[name] = round(time.time() - t, 1)
        peak_gb[name] = peak_memory_gb()
        log.info("%s finished in %.1f s (peak memory %.2f GB)", name, seconds[name], peak_gb[name])
    ov = overview(run.path)
    run.save_json("overview.json", ov)
    write_text_atomic(run.file("overview.txt"), ov["text"] + "\n")
    summary["systems"] = list(cfg.systems)
    summary["seconds_by_stage"] = seconds
    summary["peak_gb_by_stage"] = peak_gb
    summary["peak_gb_by_stage_is"] = "each stage's own peak" if own_peaks else "the process's peak so far"
    summary["seconds"] = round(time.time() - t0, 1)
    summary["overview"] = [{k: v for k, v in r.items() if k != "per_case"} for r in ov["rows"]]
    run.save_json("summary.json", summary)
    run.save_json("readme_numbers.json", demo_numbers(run.path))
    echo("\n" + ov["text"])
    html = write_demo_report(run.path)
    echo(f"report: {html}")
    log.info("demo finished in %.1f s", summary["seconds"])
    return summary


def phantom_stage(cfg: DemoConfig, run: RunDir, *, dro: str | os.PathLike | None = None,
                  echo: Callable[[str], Any] = print) -> dict[str, Any]:
    """Phantom cohort -> ``OUT/data``, perfusion accuracy, integrity check, folds, one loader pass
    over fold 0 (throughput, an augmented sample). Returns the first part of the summary."""
    t0 = time.time()
    log = run.logger()
    data_dir = run.file("data")
    size, seed, subjects = cfg.size, cfg.seed, cfg.subjects
    base = PhantomConfig(subjects=subjects, healthy=cfg.healthy, seed=seed)
    pcfg = replace(base, grid=resized(base.grid, size))
    scans = generate_cohort(pcfg, progress=echo)
    write_phantom(scans, data_dir, pcfg)
    log.info("wrote %d phantom scans to %s", len(scans), data_dir)

    per_case = []
    for scan in scans:
        computed = {k: scan.case[k].array for k in ("cbf", "cbv", "mtt", "tmax")}
        truth = {k: scan.truth[k].array for k in ("cbf", "cbv", "tmax", "core", "penumbra", "anatomy", "artery_delay")}
        per_case.append({"case": scan.case.id, "core_ml": scan.info["core_ml"],
                         **maps_vs_truth(computed, truth, aif_voxels=np.array(scan.info["perfusion"]["aif_voxels"])),
                         **invalid_columns(scan.info)})
    curves = accuracy_table(repeats=50, seed=seed)
    dro_rows = summarize_osipi(osipi_accuracy(dro)) if dro else None
    write_perfusion_report(run.file("perfusion_accuracy.md"), per_case, curves, dro_rows, pcfg.perfusion_method)
    run.save_json("perfusion_accuracy.json", {"per_case": per_case, "curves": curves, "osipi": dro_rows})
    echo(f"perfusion accuracy report: {run.file('perfusion_accuracy.md')}")

    report = check_dataset(data_dir)
    echo(format_report(report))
    run.save_json("check.json", report.to_json())
    if not report.ok:
        raise DataError(data_dir, f"integrity check found {len(report.problems)} problem(s)")

    dcfg = DataConfig(dataset=str(data_dir), size=(size, size), cache_dir=str(run.file("cache")))
    run.save_config(dcfg)
    cohort = open_cohort(data_dir, require=dcfg.modalities + [dcfg.label])
    splits = subject_kfold(cohort.cases, cfg.folds, seed)
    splits.save(run.file("splits.json"))
    train, val = fold_datasets(cohort.cases, dcfg, splits, fold=0, seed=seed)
    train.prepare_cache()
    val.prepare_cache()

    torch.manual_seed(seed)
    loader = DataLoader(train, batch_size=8, shuffle=True, num_workers=0,
                        generator=torch.Generator().manual_seed(seed))
    t1 = time.time()
    n_slices, lesion_px, total_px = 0, 0, 0
    first = None
    for batch in loader:
        n_slices += batch["image"].shape[0]
        lesion_px += int(batch["label"].sum())
        total_px += batch["label"].numel()
        if first is None:
            first = batch
    rate = n_slices / max(time.time() - t1, 1e-9)
    assert first is not None
    k = int(np.argmax(first["label"].flatten(1).sum(1).numpy()))
    channel_montage(first["image"][k].numpy(), dcfg.modalities, run.file("figures", "sample.png"),
                    label=first["label"][k, 0].numpy(),
                    title=f"{first['case'][k]} z={int(first['z'][k])} (augmented training sample)")
    return {
        "phantom": cohort_summary(scans),
        "perfusion": {k: float(np.median([r[k] for r in per_case if r.get(k) is not None]))
                      for k in ("cbf_ratio_normal", "cbv_ratio_normal", "tmax_err_normal_s", "tmax_abs_err_normal_s",
                                "tmax_err_slab_s", "tmax_abs_err_slab_s", "aif_late_s", "core_dice_cbf_threshold",
                                "hypoperfusion_dice_tmax6")
                      if any(r.get(k) is not None for r in per_case)},
        "cases": len(cohort),
        "subjects": len(cohort.subjects),
        "folds": cfg.folds,
        "fold0_train_slices": len(train),
        "fold0_val_slices": len(val),
        "channels": dcfg.modalities,
        "input_size": list(dcfg.size),
        "train_lesion_fraction": lesion_px / max(total_px, 1),
        "loader_slices_per_s": round(rate, 1),
        "lesion_ml": {c.id: c.lesion_ml for c in report.cases},
        "phantom_seconds": round(time.time() - t0, 2),
        "run": str(run.path),
    }


#: what each system reads from a user's data set (``demo --data``), checked before anything is written
OWN_DATA_KEYS = {
    "segmentation": ("ct", "cbf", "cbv", "mtt", "tmax", "lesion"),
    "ctmr": ("ct", "cbf", "cbv", "mtt", "tmax", "dwi", "lesion"),
    "pseudo-dwi": ("cbf", "cbv", "mtt", "tmax", "ctp", "dwi", "lesion"),
    "pseudo-healthy": ("dwi", "lesion"),
    "labelmap": ("dwi", "anatomy", "lesion"),
}


def open_own_data(cfg: DemoConfig, echo: Callable[[str], Any] = print) -> dict[str, Any]:
    """A user's data set for ``demo --data``: opened (headers only) and checked for what the
    chosen systems read, before anything is written. The label-map system needs whole-brain label
    maps (``anatomy``), which an ISLES'24 release does not have (a user may add them as
    ``*_dseg``; ``phantom --layout isles24`` does): without them it is skipped, and said so. Returns ``{"cohort", "pixel_mm", "skipped": {system: reason}}``; ``pixel_mm`` is the
    median field of view over ``cfg.size`` pixels (the working grid)."""
    folder = Path(cfg.data)
    if not folder.is_dir():
        raise ConfigError("--data", f"data set folder {cfg.data!r} not found")
    cohort = open_cohort(folder)
    skipped: dict[str, str] = {}
    if "labelmap" in cfg.systems and not all("anatomy" in c for c in cohort.cases):
        skipped["labelmap"] = ("its cases have no whole-brain label maps (anatomy); the label-map system "
                               "(Platscher, Zopes & Federau) needs one per case (in an ISLES'24 tree: "
                               "sub-X_ses-02_space-ncct_dseg.nii.gz, e.g. SynthSeg's)")
        echo(f"note: labelmap skipped: {skipped['labelmap']}")
    keys = sorted({k for s in cfg.systems if s not in skipped for k in OWN_DATA_KEYS.get(s, ())})
    cohort = open_cohort(folder, require=keys)  # one error line naming the case and the missing key
    if len(cohort.subjects) < cfg.folds:
        raise DataError(folder, f"{len(cohort.subjects)} subject(s) for {cfg.folds} folds")
    fov = float(np.median([c.reference.spatial_shape[0] * c.spacing[0] for c in cohort.cases]))
    return {"cohort": cohort, "keys": keys, "pixel_mm": round(fov / cfg.size, 4), "skipped": skipped}


def data_stage(cfg: DemoConfig, run: RunDir, own: dict[str, Any], echo: Callable[[str], Any] = print
               ) -> dict[str, Any]:
    """The cohort part of the summary for a user's data set: its folds (``splits.json``), where
    every image came from (``data_sources.json``), lesion volumes and the working grid."""
    from strokesynth.data.provenance import save_data_sources, source_lines

    t0 = time.time()
    cases = own["cohort"].cases
    splits = subject_kfold(cases, cfg.folds, cfg.seed)
    splits.save(run.file("splits.json"))
    roles = {k: "label" if k == "lesion" else "target" if k == "dwi" else "input" for k in own["keys"]}
    record = save_data_sources(run.path, cases, roles)
    for line in source_lines(record):
        echo(line)
    lesion_ml = {c.id: round(float(c.lesion_volume_ml() or 0.0), 3) for c in cases}
    echo(f"{len(cases)} case(s) of {len(own['cohort'].subjects)} subject(s), layout {own['cohort'].layout}; "
         f"{sum(v > 0 for v in lesion_ml.values())} with a lesion; working grid {cfg.size} x {cfg.size} px at "
         f"{own['pixel_mm']:.3f} mm")
    return {"data": str(Path(cfg.data).resolve()), "layout": own["cohort"].layout, "cases": len(cases),
            "subjects": len(own["cohort"].subjects), "folds": cfg.folds, "input_size": [cfg.size, cfg.size],
            "pixel_mm": own["pixel_mm"], "lesion_ml": lesion_ml, "sources": source_lines(record),
            "skipped": own["skipped"], "data_seconds": round(time.time() - t0, 2), "run": str(run.path)}


def demo_numbers(run_path: str | os.PathLike) -> dict[str, Any]:
    """The numbers the README quotes, from a finished demo run (``summary.json`` and
    ``overview.json``), rounded as quoted."""
    run = RunDir(run_path)
    summary = run.load_json("summary.json")
    rows = run.load_json("overview.json")["rows"]

    def r3(v: float) -> float | None:
        return None if v is None or v != v else round(float(v), 3)

    out: dict[str, Any] = {"seconds": round(float(summary["seconds"])), "systems": summary["systems"],
                           "size": summary["input_size"][0], "rows": []}
    for r in rows:
        p = r.get("paired")
        out["rows"].append({
            "system": r["system"], "method": r["method"], "unit": r["unit"], "n": r["n"],
            "dice": [r3(r["dice"]["mean"]), r3(r["dice"]["sd"])],
            "hd95": None if r["hd95"]["mean"] != r["hd95"]["mean"] else round(r["hd95"]["mean"], 1),
            "avd_ml": None if r["avd_ml"]["mean"] != r["avd_ml"]["mean"] else round(r["avd_ml"]["mean"], 1),
            "vs": None if not p else {"ref": p["vs"], "diff": r3(p["mean_diff"]), "better": p["better"],
                                      "cases": p["cases"],
                                      "p": None if p["wilcoxon_p"] != p["wilcoxon_p"] else float(f"{p['wilcoxon_p']:.2g}")},
        })
    ctmr = run.file("ctmr", "metrics", "quality.json")
    if ctmr.is_file():
        q = run.load_json("ctmr/metrics/quality.json")["overall"]
        out["contrast_generated"] = round(q["contrast_generated"]["mean"], 2)
        out["contrast_real"] = round(q["contrast_real"]["mean"], 2)
    return out


def demo_paragraph(n: dict[str, Any]) -> str:
    """The README's block of demo results from :func:`demo_numbers`: one Markdown table of the
    overview and a closing sentence (a test keeps the README equal to it)."""
    lines = ["| system | method | held-out units with a lesion | Dice | HD95 (mm) | abs. volume error (ml) | "
             "Dice vs reference, paired |", "|---|---|---|---|---|---|---|"]
    for r in n["rows"]:
        d = r["dice"]
        dice = f"{d[0]:.3f}" + (f" ± {d[1]:.3f}" if d[1] is not None else "")
        hd = "–" if r["hd95"] is None else f"{r['hd95']:.1f}"
        avd = "–" if r.get("avd_ml") is None else f"{r['avd_ml']:.1f}"
        vs = "–"
        if r["vs"]:
            v = r["vs"]
            pv = "n/a" if v["p"] is None else f"{v['p']:g}"
            vs = f"{v['diff']:+.3f} vs {v['ref']} (better on {v['better']} of {v['cases']}, Wilcoxon p = {pv})"
        lines.append(f"| {r['system']} | {r['method']} | {r['n']} {r['unit']}s | {dice} | {hd} | {avd} | {vs} |")
    text = "\n".join(lines) + "\n\n"
    if "contrast_generated" in n:
        text += (f"Lesion-to-brain intensity of the cGAN's generated DWI: {n['contrast_generated']:.2f} against "
                 f"{n['contrast_real']:.2f} for the simulated DWI "
                 f"({100 * n['contrast_generated'] / n['contrast_real']:.0f} %). ")
    text += f"The demo took {n['seconds'] // 60} min {n['seconds'] % 60} s at {n['size']} px."
    return text


def invalid_columns(info: dict[str, Any]) -> dict[str, float]:
    """``<map>_invalid_pct`` of a phantom scan's info: % of brain voxels whose computed value was
    physically impossible and set to 0 (see :func:`strokesynth.perfusion.maps.physical_limits`)."""
    return {f"{k}_invalid_pct": v["percent"] for k, v in info.get("perfusion", {}).get("invalid", {}).items()}


def write_demo_report(run_path: str | os.PathLike) -> Path:
    """(Re)write ``RUN/report.html`` of a demo run from what the run folder holds: the overview
    table, the cohort and perfusion sections, then each system's own sections."""
    run = RunDir(run_path)
    if not run.file("summary.json").is_file() or not run.file("overview.json").is_file():
        raise DataError(run.path, "not a finished demo run (needs summary.json and overview.json)")
    summary = run.load_json("summary.json")
    rows = run.load_json("overview.json")["rows"]
    sections = [("overview", "Overview: every system on held-out data", _overview_html(rows, summary))]
    if "data" in summary:  # demo --data: the user's data set instead of the phantom
        sections += [("cohort", "Cohort: your data set", _own_data_html(summary))] + system_sections(run)
        return write_page(run.file("report.html"), f"strokesynth demo: the systems on {Path(summary['data']).name}",
                          sections, _intro(summary))
    accuracy = run.load_json("perfusion_accuracy.json")
    phantom = run.load_json("data/groundtruth/phantom.json")
    invalid = {c["case"]: invalid_columns(c) for c in phantom["cases"]}
    for row in accuracy["per_case"]:  # runs made before the column existed get it from phantom.json
        row.update(invalid.get(row["case"], {}))
    first_case = sorted(summary.get("lesion_ml") or {"case_1": 0})[0]
    sections += _demo_sections(run, summary, accuracy["per_case"], accuracy["curves"], first_case)
    sections += system_sections(run)
    return write_page(run.file("report.html"), "strokesynth demo: five systems on the digital stroke phantom",
                      sections, _intro(summary))


def system_sections(run: RunDir) -> list[Section]:
    """Each system's report sections (anchors prefixed by the system), with a link to its own
    ``report.html``; systems the run did not include are left out."""
    out: list[Section] = []
    for recipe, part in RECIPES.demo_parts():
        folder, name = part.folder, part.short or part.heading
        if recipe.sections is None or not recipe.finished(run.file(folder)):
            continue
        sections = resolve(recipe.sections)
        link = (f"<p class='note'>{esc(name)}: this system's own report is <a href='{folder}/report.html'>"
                f"{folder}/report.html</a>; its run folder holds the config, splits, checkpoints and per-case "
                "metrics.</p>")
        for i, (anchor, heading, inner) in enumerate(sections(run.file(folder))):
            out.append((f"{folder}-{anchor}", f"{name}: {heading}", (link if i == 0 else "") + inner))
    if run.file("segmentation", "metrics", "summary.json").is_file():
        from strokesynth.metrics.tables import format_table

        text = format_table(run.load_json("segmentation/metrics/summary.json"))
        out.append(("segmentation", "1. FCN: PSPNet + focal loss", f"<pre>{esc(text)}</pre>"))
    return out


def _overview_html(rows: list[dict[str, Any]], summary: dict[str, Any]) -> str:
    header, cells = overview_rows(rows)
    secs = summary.get("seconds_by_stage", {})
    peaks = summary.get("peak_gb_by_stage", {})
    timing = ", ".join(f"{esc(k)} {v:.0f} s" + (f" (peak {peaks[k]:.2f} GB)" if k in peaks else "")
                       for k, v in secs.items())
    return (table(cells, header)
            + "<p class='note'>Mean ± sd over held-out units with a lesion; FP ml: predicted volume on lesion-free "
              "held-out scans or subjects. 'Dice vs reference' is the mean paired difference on the same units, "
              "how many were better, and a Wilcoxon signed-rank p. CTP rows share one cohort and one set of "
              "subject-level folds, so they are paired with the CBF &lt; 30 % threshold scan by scan. The label-map "
              "rows are on the phantom's whole-brain MR studies (held-out subjects; reference: the same 3D U-Net "
              "without synthetic data); the pseudo-healthy row scores the anomaly map on held-out DWI slices "
              "(threshold chosen on training slices). Every checkpoint and threshold was chosen on training "
              "subjects; the networks are tiny CPU variants trained for minutes, so these numbers show that "
              "each system runs and learns on held-out data, not what it reaches at paper size.</p>"
            + (f"<p class='note'>Seconds per stage: {timing}.</p>" if timing else ""))


def _own_data_html(summary: dict[str, Any]) -> str:
    """The cohort section of ``demo --data``: the data set, its working grid, sessions, skips."""
    lesion = summary.get("lesion_ml", {})
    rows = [["data set", summary["data"]], ["layout", summary["layout"]],
            ["cases (subjects)", f"{summary['cases']} ({summary['subjects']})"],
            ["with a lesion", sum(v > 0 for v in lesion.values())], ["subject-level folds", summary["folds"]],
            ["working grid", f"{summary['input_size'][0]} x {summary['input_size'][1]} px at "
                             f"{summary['pixel_mm']:.3f} mm (slices resampled; predictions scored on each case's "
                             "own grid)"]]
    inner = table(rows, ["", ""])
    inner += "<p>Where every image came from:</p><ul>" + "".join(
        f"<li>{esc(line)}</li>" for line in summary.get("sources", [])) + "</ul>"
    for system, why in (summary.get("skipped") or {}).items():
        inner += f"<p class='note'>{esc(system)} was not run: {esc(why)}.</p>"
    return inner


def _intro(summary: dict[str, Any]) -> str:
    if "data" in summary:
        return (f"<p>Everything below was computed by <code>strokesynth demo --data</code> in "
                f"{summary['seconds']:.0f} s on this machine, from {esc(summary['data'])} ({summary['subjects']} "
                f"subjects, {summary['cases']} scans) at a {summary['input_size'][0]} px working grid, "
                f"{summary['folds']} subject-level folds. Systems: {esc(', '.join(summary.get('systems', [])))}.</p>")
    return (f"<p>Everything below was computed by <code>strokesynth demo</code> in {summary['seconds']:.0f} s on "
            f"this machine, from a digital stroke phantom of {summary['subjects']} subjects "
            f"({summary['cases']} scans) at {summary['input_size'][0]} px, {summary['folds']} subject-level folds. "
            f"Systems: {esc(', '.join(summary.get('systems', [])))}.</p>")


def _demo_sections(run: RunDir, summary: dict[str, Any], per_case: list[dict[str, Any]],
                   curves: list[dict[str, Any]], first_case: str) -> list[Section]:
    """The phantom and perfusion sections that come before the systems' ones."""
    ph = summary["phantom"]
    inner = table(summary_rows(ph), ["cohort", "value"])
    data = run.file("data")
    if data.is_dir():
        case = open_cohort(data)[first_case]
        truth = read_ground_truth(data, first_case, ("core", "anatomy"))
        montage = run.file("figures", f"phantom_{first_case}.png")
        case_montage(case, truth["core"].array, truth["anatomy"].array, montage,
                     title=f"{first_case}, core {case.lesion_volume_ml() or 0:.1f} ml (red)")
        inner += figure(montage, f"{first_case}: simulated CT, perfusion maps computed from the simulated 4D CTP, "
                                 "simulated DWI and FLAIR, anatomy labels; red: true core")
    inner += figure(run.file("figures", "sample.png"), "an augmented training sample of fold 0 (normalised channels)")
    sections: list[Section] = [("cohort", "Cohort: digital stroke phantom", inner)]
    med = summary["perfusion"]
    rows = [[human(k), f"{v:.3f}"] for k, v in med.items()]
    for key in ("cbf", "cbv", "mtt", "tmax"):
        vals = [r[f"{key}_invalid_pct"] for r in per_case if r.get(f"{key}_invalid_pct") is not None]
        if vals:
            rows.append([human(f"{key}_invalid_pct"), f"{float(np.median(vals)):.3f}"])
    inner = ("<p>CBF, CBV, MTT and Tmax were computed from each simulated 4D CTP (oSVD deconvolution, "
             "automatic AIF) and compared with the phantom's truth. Normal tissue: grey and white matter with "
             "true Tmax under 3 s. Negative (physically impossible) values are set to 0 and counted. "
             "Medians over scans:</p>" + table(rows, ["measure", "median"])
             + "<details><summary>per scan</summary>" + dict_table(per_case) + "</details>"
             + "<p>Deconvolution methods on the forward model's curves, by noise (HU per frame):</p>"
             + dict_table(curves, ["method", "noise_hu", "cbf_bias", "cbf_abs_err", "cbv_abs_err", "mtt_abs_err",
                                   "tmax_bias_s", "delay_sensitivity"]))
    sections.append(("perfusion", "Perfusion accuracy", inner))
    return sections
