"""Xia, Chartsias & Tsaftaris: pseudo-healthy synthesis, the paper's Table 1 as one experiment.

For each contrast (phantom FLAIR and DWI by default) and each subject-level fold, on the same
slices: f_pre (the healthiness judge, S's architecture) and the four rows - conditional GAN,
CycleGAN, proposed unpaired, proposed paired - are trained on the fold's training subjects
and scored on its held-out subjects. Nothing is chosen on scored data: every model keeps its
last epoch, and the threshold of the anomaly detector ``|x_p - pseudo-healthy|`` is the one
with the best Dice on the *training* slices.

    OUT/
      config.yaml  splits.json  run.log
      data/<contrast>.npz                 the prepared slices (float16, masks, case, z)
      <contrast>/fold_k/<row>/            best.pt, last.pt, metrics.csv (each model)
      <contrast>/fold_k/f_pre/            the healthiness judge
      metrics/slices.csv                  every score per held-out slice, row and fold
      ph_table.txt  ph_table.json         Table 1 analog, significance marks, f_pre Dice
      figures/<contrast>_examples.png     the paper's Fig. 4 analog
      figures/<contrast>_cyclegan_failure.png   the Fig. 2 failure mode, when it occurs
      figures/real_<contrast>.png         the models applied to a real case (if one is given)

The default data set ``phantom`` is the embedded digital phantom, generated from the config's
seed (nothing to download). The public ISLES 2018 release has no MR: bring MR slices with masks.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from strokesynth._fs import write_text_atomic
from strokesynth.config import load_config, load_shipped, replaced
from strokesynth.data.case import Case
from strokesynth.data.pathology_slices import (
    FactorisationPairs,
    SegmentationSlices,
    SliceBank,
    SliceConfig,
    check_bank,
    prepare_volume,
)
from strokesynth.data.provenance import save_data_sources
from strokesynth.data.splits import subject_kfold
from strokesynth.engine.crossval import cross_validate, fold_seed, open_run
from strokesynth.errors import ConfigError
from strokesynth.io import open_cohort
from strokesynth.metrics.paired import paired_values
from strokesynth.metrics.pseudo_healthy import best_threshold, healthiness, identity, slice_dice
from strokesynth.runs import RunDir
from strokesynth.systems.pseudo_healthy import (
    PseudoHealthyConfig,
    SegmentorConfig,
    SliceSegmentor,
    batched,
    build_pseudo_healthy,
)

CONFIGS = Path(__file__).resolve().parents[3] / "configs" / "pseudo_healthy"

#: the rows of Table 1: label -> (method, mode, lambda_gan); baselines first
ROWS: dict[str, tuple[str, str, float | None]] = {
    "cGAN": ("cgan", "paired", None),
    "CycleGAN": ("cyclegan", "paired", None),
    "proposed unpaired": ("factorisation", "unpaired", 2.0),
    "proposed paired": ("factorisation", "paired", 1.0),
}
BASELINES = ("cGAN", "CycleGAN")
INPUT_ROW = "input (no synthesis)"
ROW_KEYS = {"cGAN": "cgan", "CycleGAN": "cyclegan", "proposed unpaired": "unpaired", "proposed paired": "paired"}


@dataclass
class PhantomData:
    """The embedded phantom cohort generated for this recipe (nothing is downloaded)."""

    subjects: int = 16
    healthy: int = 3
    size: int = 128
    seed: int = 0


@dataclass
class PseudoHealthyRecipeConfig:
    """The experiment.

    Attributes:
        dataset: ``phantom`` (generate the embedded phantom from ``phantom``) or a data set folder
            with the contrasts and lesion masks on one grid.
        contrasts: MR contrasts, one table block each (``flair``, ``dwi``).
        rows: which of ``cGAN``, ``CycleGAN``, ``proposed unpaired``, ``proposed paired`` to train.
        folds, folds_to_run, seed: subject-level cross-validation (every fold by default).
        real_case: a real data set (e.g. ``../shared/data/isles22``) the fold-0 models are applied
            to as a labelled real-data example; skipped with a note when the folder is absent.
        clip_percentiles: contrast -> clip percentile replacing ``system.data.clip_percentile``
            (the paper's 99.5, for FLAIR). DWI: 99.9, because a hyperintense acute lesion is under
            0.5 % of the voxels, so at 99.5 it is clipped to the level of grey matter (measured on
            the phantom: 95 % of lesion voxels at 1, f_pre's held-out Dice 0.002; at 99.9: 0.70).
        system: the base model config each row changes (method, mode, lambda_gan).
        segmentor: f_pre.
    """

    name: str = "pseudo_healthy"
    dataset: str = "phantom"
    layout: str = "auto"
    phantom: PhantomData = field(default_factory=PhantomData)
    contrasts: list[str] = field(default_factory=lambda: ["flair", "dwi"])
    rows: list[str] = field(default_factory=lambda: list(ROWS))
    folds: int = 3
    folds_to_run: list[int] = field(default_factory=list)
    seed: int = 0
    real_case: str = "../shared/data/isles22"
    clip_percentiles: dict[str, float] = field(default_factory=lambda: {"dwi": 99.9})
    system: PseudoHealthyConfig = field(default_factory=PseudoHealthyConfig)
    segmentor: SegmentorConfig = field(default_factory=SegmentorConfig)

    def __post_init__(self) -> None:
        bad = [r for r in self.rows if r not in ROWS]
        if bad or not self.rows:
            raise ConfigError("rows", f"choose among {', '.join(ROWS)}; got {self.rows}")
        if not self.contrasts:
            raise ConfigError("contrasts", "name at least one MR contrast")


def paper_config() -> PseudoHealthyRecipeConfig:
    """The paper's networks (G/R 32 + 6 blocks, S 32..512, critics 32-128-256-512) at 128 px,
    middle 60 slices, 3 folds, 100 epochs of batch 4; f_pre 50 epochs."""
    return PseudoHealthyRecipeConfig()


def tiny_config() -> PseudoHealthyRecipeConfig:
    """A CPU-sized variant (``configs/pseudo_healthy/tiny.yaml``): a 64 px phantom, networks of 8
    features, one fold of three, 25 epochs at Adam 1e-3; minutes per model on 2 cores."""
    cfg = PseudoHealthyRecipeConfig(name="pseudo_healthy_tiny", folds_to_run=[0])
    cfg.phantom.size = 64
    s = cfg.system
    s.data.size = 64
    s.ngf, s.n_blocks = 8, 3
    s.segmentor_channels = [8, 16, 32, 64]
    s.critic_channels = [8, 16, 32, 64]
    s.run.epochs = 25
    s.optim.lr = 1e-3  # 25 short epochs: at 2e-4 the cycle losses had barely fallen (measured)
    g = cfg.segmentor
    g.data.size = 64
    g.channels = [8, 16, 32, 64]
    g.run.epochs = 25
    return cfg


SHIPPED = {"paper": paper_config, "tiny": tiny_config}


def load_recipe_config(path: str | os.PathLike | None, overrides: Sequence[str] = ()) -> PseudoHealthyRecipeConfig:
    """A shipped config by name (``tiny``, ``paper``) or a YAML path, with ``key=value`` overrides."""
    return load_shipped(PseudoHealthyRecipeConfig, SHIPPED, CONFIGS, path, overrides)


def phantom_cases(p: PhantomData, echo: Callable[[str], Any] = print) -> tuple[list[Case], float]:
    """The phantom cohort in memory, and its in-plane pixel size (mm)."""
    from strokesynth.phantom import PhantomConfig, generate_cohort
    from strokesynth.phantom.config import resized

    base = PhantomConfig(subjects=p.subjects, healthy=p.healthy, seed=p.seed)
    cfg = dataclasses.replace(base, grid=resized(base.grid, p.size))
    echo(f"phantom: {p.subjects} stroke + {p.healthy} healthy subjects at {p.size} px ({cfg.grid.spacing_mm:.2f} mm)")
    return [s.case for s in generate_cohort(cfg)], float(cfg.grid.spacing_mm)


def contrast_data(data: SliceConfig, contrast: str, clip: dict[str, float]) -> SliceConfig:
    """``data`` for ``contrast``, with its clip percentile from ``clip`` when listed there."""
    return replaced(data, modality=contrast, clip_percentile=float(clip.get(contrast, data.clip_percentile)))


def row_config(base: PseudoHealthyConfig, row: str, contrast: str,
               clip: dict[str, float] | None = None) -> PseudoHealthyConfig:
    method, mode, lam = ROWS[row]
    return replaced(base, method=method, mode=mode, data=contrast_data(base.data, contrast, clip or {}),
                    lambda_gan=base.lambda_gan if lam is None else lam)


def _banks(cases: list[Case], cfg: PseudoHealthyRecipeConfig, contrast: str) -> SliceBank:
    data = contrast_data(cfg.system.data, contrast, cfg.clip_percentiles)
    return SliceBank.from_volumes([prepare_volume(c, data) for c in cases])


def _fold_banks(bank: SliceBank, splits, k: int) -> tuple[SliceBank, SliceBank]:
    f = splits.folds[k]
    return bank.subset(np.isin(bank.case, f.train_cases)), bank.subset(np.isin(bank.case, f.val_cases))


def run_pseudo_healthy(cfg: PseudoHealthyRecipeConfig, out: str | os.PathLike, *, force: bool = False,
                       resume: bool = False, echo: Callable[[str], Any] = print) -> dict[str, Any]:
    """Run the experiment into ``out`` (see the module docstring); returns the table.

    Every input is checked (masks binary and on the image grid, healthy and pathological slices
    in every fold's training subjects) before the run folder is created. With ``resume`` the
    finished models are kept and an interrupted one continues from its ``last.pt``.
    """
    if resume:
        cfg = load_config(PseudoHealthyRecipeConfig, RunDir.resume(out).file("config.yaml"))
    if cfg.real_case and Path(cfg.real_case).is_dir():  # saved absolute: a resume from elsewhere finds it
        cfg = replaced(cfg, real_case=str(Path(cfg.real_case).resolve()))
    if cfg.dataset == "phantom":
        cases, spacing = phantom_cases(cfg.phantom, echo)
        cfg = replaced(cfg, {"system.data.spacing_mm": spacing, "segmentor.data.spacing_mm": spacing})
    else:
        cfg = replaced(cfg, dataset=str(Path(cfg.dataset).resolve()))
        if not Path(cfg.dataset).is_dir():
            raise ConfigError("dataset", f"data set folder {cfg.dataset!r} not found")
        cases = open_cohort(cfg.dataset, layout=cfg.layout, require=["lesion"]).cases
    splits = subject_kfold(cases, cfg.folds, cfg.seed)
    folds = cfg.folds_to_run or list(range(cfg.folds))
    if any(not 0 <= k < cfg.folds for k in folds):
        raise ConfigError("folds_to_run", f"folds lie in 0..{cfg.folds - 1}, got {folds}")
    for where, run_cfg in (("system.run", cfg.system.run), ("segmentor.run", cfg.segmentor.run)):
        if run_cfg.selection != "last":  # no data would choose anything: the paper keeps the last epoch
            raise ConfigError(f"{where}.selection", f"every pseudo-healthy model keeps its last epoch; set 'last' "
                                                    f"(got {run_cfg.selection!r})")
    banks = {}
    for contrast in cfg.contrasts:  # every check before anything is written
        bank = _banks(cases, cfg, contrast)
        check_bank(bank, f"{cfg.dataset} ({contrast})")
        for k in folds:
            train, test = _fold_banks(bank, splits, k)
            check_bank(train, f"{cfg.dataset} ({contrast}, fold {k} training subjects)")
        banks[contrast] = bank
    run, splits = open_run(out, cfg, cases, force=force, resume=resume)
    save_data_sources(run.path, cases, {**{c: "image" for c in cfg.contrasts}, "lesion": "label"})
    log = run.logger()
    rows: list[dict[str, Any]] = []
    extras: dict[str, Any] = {"f_pre": {}, "thresholds": {}, "cyclegan_failures": {}, "scales": None}
    for contrast, bank in banks.items():
        bank.save(run.file("data", f"{contrast}.npz"))
        for k in folds:
            rows += _train_and_score(cfg, contrast, bank, cases, splits, k, run, extras, log, echo)
    run.save_table("metrics/slices.csv", rows)
    table = build_table(cfg, rows, extras)
    run.save_json("ph_table.json", table)
    write_text_atomic(run.file("ph_table.txt"), table["text"] + "\n")
    echo("\n" + table["text"])
    table["real_case"] = real_case_scores(run.path, cfg, folds[0], echo=echo)
    run.save_json("ph_table.json", table)
    return table


def load_kept(folder: Path):
    """The kept model of one training folder (its ``best.pt``, the last epoch here)."""
    from strokesynth.engine.checkpoint import load_system

    return load_system(folder / "best.pt")


def kept_models(run: Path, contrast: str, fold: int, rows: list[str]) -> dict[str, Any]:
    """Row -> the kept model (eval mode) of ``fold`` for ``contrast``, for the rows that were trained."""
    out = {}
    for row in rows:
        path = run / contrast / f"fold_{fold}" / ROW_KEYS[row]
        if (path / "best.pt").exists():
            out[row] = load_kept(path).eval_mode()
    return out


def real_case_scores(run_path: str | os.PathLike, cfg: PseudoHealthyRecipeConfig, fold: int,
                     echo: Callable[[str], Any] = print) -> dict[str, Any]:
    """Apply the fold's kept models to the first case of ``cfg.real_case`` with a lesion slice, per
    contrast (skipped with a note if absent): identity, healthiness and S Dice on its pathological
    slices. The report draws its figure (``entry["figure"]``) from the same models and case."""
    import torch

    from strokesynth.data.pathology_slices import prepare_volume
    from strokesynth.errors import StrokesynthError

    run = Path(run_path)
    src = Path(cfg.real_case) if cfg.real_case else None
    if src is None or not src.is_dir():
        note = f"real-data example skipped: {cfg.real_case or '(none)'} not found"
        echo(note)
        return {"note": note, "cases": []}
    cases = open_cohort(src).cases
    results: dict[str, Any] = {"source": str(src), "cases": [], "notes": []}
    for contrast in cfg.contrasts:
        models = kept_models(run, contrast, fold, cfg.rows)
        fpre = load_kept(run / contrast / f"fold_{fold}" / "f_pre")
        data = contrast_data(cfg.system.data, contrast, cfg.clip_percentiles)
        for case in cases:
            try:
                vol = prepare_volume(case, data)
            except StrokesynthError as exc:
                note = f"{case.id} {contrast}: skipped ({exc.problem})"
                results["notes"].append(note)
                echo(note)
                continue
            les = vol.masks.reshape(len(vol.z), -1).sum(1).astype(np.int64)
            x = torch.from_numpy(vol.images[:, None])
            m = vol.masks[:, None]
            entry: dict[str, Any] = {"case": case.id, "contrast": contrast, "slices": len(vol.z),
                                     "pathological": int((les > 0).sum()), "rows": {}}
            with torch.no_grad():
                judged = fpre.probability(x).numpy() > 0.5
            sel = les > 0
            entry["f_pre_dice"] = float(slice_dice(judged[sel], m[sel]).mean()) if sel.any() else None
            for row, model in models.items():
                ph = model.pseudo_healthy(x).numpy()
                ident, _ = identity(ph[sel], vol.images[sel][:, None], m[sel])
                found = (fpre.probability(torch.from_numpy(ph)).numpy() > 0.5)[sel].reshape(int(sel.sum()), -1).sum(1)
                e = {"identity": float(ident.mean()),
                     "healthiness": float(1 - found.mean() / max(les[sel].mean(), 1e-9))}
                p = model.pathology(x)
                if p is not None:
                    e["s_dice"] = float(slice_dice(p.numpy()[sel] > 0.5, m[sel]).mean())
                entry["rows"][row] = e
            entry["figure"] = f"figures/real_{contrast}.png"  # drawn by strokesynth.report.pseudo_healthy_figures
            results["cases"].append(entry)
            echo(f"real case {case.id} {contrast}: f_pre Dice {entry['f_pre_dice']}; "
                 + "; ".join(f"{r}: identity {v['identity']:.3f}, healthiness {v['healthiness']:.3f}"
                             for r, v in entry["rows"].items()))
            break  # one labelled example per contrast
    return results


def _train_and_score(cfg: PseudoHealthyRecipeConfig, contrast: str, bank: SliceBank, cases: list[Case], splits,
                     k: int, run: RunDir,
                     extras: dict[str, Any], log: logging.Logger, echo: Callable[[str], Any]) -> list[dict[str, Any]]:
    train, test = _fold_banks(bank, splits, k)
    base = run.file(contrast, f"fold_{k}")
    seed = fold_seed(cfg.seed, k)
    seg_cfg = replaced(cfg.segmentor, data=contrast_data(cfg.segmentor.data, contrast, cfg.clip_percentiles))
    echo(f"== {contrast}, fold {k}: {int(train.lesion.sum())} pathological + {int((~train.lesion).sum())} healthy "
         f"training slices; {int(test.lesion.sum())} + {int((~test.lesion).sum())} held out")

    def on_fold(folder: Path, build: Callable[[], Any], slices: Callable[[SliceBank], Any], run_cfg: Any,
                what: str) -> dict[str, Any]:
        """Train one model on fold k's training slices (the cross-validation runner: its fold sets,
        its seed rule from the recipe's seed); every model keeps its last epoch."""
        (outcome,) = cross_validate(cases, splits, run_cfg, lambda _: folder, build=lambda _: build(),
                                    datasets=lambda cs, _: slices(bank.subset(np.isin(bank.case, [c.id for c in cs]))),
                                    folds=[k], seed=cfg.seed, log=log, desc=f"{contrast} {what} fold")
        return outcome.result

    on_fold(base / "f_pre", lambda: SliceSegmentor(seg_cfg), lambda b: SegmentationSlices(b, seed), seg_cfg.run, "f_pre")
    f_pre = load_kept(base / "f_pre")
    for n in f_pre.networks.values():
        n.eval()
    dev = cfg.system.run.device

    def judge(images: np.ndarray) -> np.ndarray:
        return batched(f_pre.probability, images, device=dev) > 0.5

    les, hea = test.lesion, ~test.lesion
    xp, mp = test.images[les], test.masks[les]
    real_px = mp.reshape(len(mp), -1).sum(1)
    ids = [{"contrast": contrast, "fold": k, "case": c, "z": int(z)} for c, z in zip(test.case, test.z, strict=True)]
    out: list[dict[str, Any]] = []
    judged = judge(test.images)
    fpre_dice = slice_dice(judged[les], mp)
    extras["f_pre"].setdefault(contrast, []).extend(fpre_dice.tolist())
    h_input = healthiness(judged[les].reshape(int(les.sum()), -1).sum(1), real_px)
    for i, (idx, h) in enumerate(zip(np.flatnonzero(les), h_input, strict=True)):
        out.append({**ids[idx], "row": INPUT_ROW, "lesion": True, "identity": 1.0, "healthiness": float(h),
                    "lesion_px": int(real_px[i]), "f_pre_dice": float(fpre_dice[i])})
    for row in cfg.rows:
        rcfg = row_config(cfg.system, row, contrast, cfg.clip_percentiles)
        folder = base / ROW_KEYS[row]
        res = on_fold(folder, lambda rcfg=rcfg: build_pseudo_healthy(rcfg), lambda b: FactorisationPairs(b, seed),
                      rcfg.run, row)
        model = load_kept(folder).eval_mode()
        ph_train = batched(model.pseudo_healthy, train.images[train.lesion], device=dev)
        thr, thr_dice = best_threshold(np.abs(train.images[train.lesion] - ph_train), train.masks[train.lesion])
        extras["thresholds"].setdefault(contrast, {}).setdefault(row, []).append(
            {"fold": k, "threshold": thr, "training_dice": thr_dice})
        ph = batched(model.pseudo_healthy, test.images, device=dev)
        ident_p, scales = identity(ph[les], xp, mp)
        ident_h, _ = identity(ph[hea], test.images[hea], None) if hea.any() else (np.zeros(0), scales)
        extras["scales"] = scales
        found = judge(ph)
        health = healthiness(found[les].reshape(int(les.sum()), -1).sum(1), real_px)
        anomaly = np.abs(test.images - ph) > thr
        an_dice = slice_dice(anomaly[les], mp)
        seg = batched(model.pathology, test.images, device=dev) > 0.5 if ROWS[row][0] == "factorisation" else None
        s_dice = None if seg is None else slice_dice(seg[les], mp)
        for i, idx in enumerate(np.flatnonzero(les)):
            out.append({**ids[idx], "row": row, "lesion": True, "identity": float(ident_p[i]),
                        "healthiness": float(health[i]), "anomaly_dice": float(an_dice[i]),
                        "s_dice": None if s_dice is None else float(s_dice[i]), "lesion_px": int(real_px[i])})
        for i, idx in enumerate(np.flatnonzero(hea)):
            out.append({**ids[idx], "row": row, "lesion": False, "identity": float(ident_h[i]),
                        "anomaly_fp_px": int(anomaly[idx].sum()),
                        "s_fp_px": None if seg is None else int(seg[idx].sum())})
        if ROWS[row][0] == "cyclegan":
            extras["cyclegan_failures"].setdefault(contrast, []).extend(
                cyclegan_failures(model, xp, mp, ph[les], [ids[i] for i in np.flatnonzero(les)], dev))
        echo(f"  {row}: epochs {res['epochs']}; identity {np.mean(ident_p):.3f}, healthiness {np.mean(health):.3f}, "
             f"anomaly Dice {np.mean(an_dice):.3f} (threshold {thr:.2f} from training slices)"
             + ("" if s_dice is None else f", S Dice {np.mean(s_dice):.3f}"))
    return out


def cyclegan_failures(model, xp: np.ndarray, mp: np.ndarray, ph: np.ndarray, ids: list[dict[str, Any]],
                      device: str, rise: float = 0.15) -> list[dict[str, Any]]:
    """Slices where the CycleGAN's reconstruction puts a lesion elsewhere (the paper's Fig. 2).

    Where the reconstruction is brighter than the input by more than ``rise`` away from the true
    lesion (dilated by 2 px), the largest connected blob is measured: a slice counts when it has
    at least 5 pixels and at least a quarter of the true lesion's size (an invented lesion, not
    scattered reconstruction noise). ``ph`` is kept for the figure.
    """
    from scipy import ndimage

    rec = batched(model.reconstruction, xp, device=device)
    found = []
    for i in range(len(xp)):
        near = ndimage.binary_dilation(mp[i, 0] > 0, iterations=2)
        added = ((rec[i, 0] - xp[i, 0]) > rise) & ~near
        blobs, n = ndimage.label(added)
        largest = int(np.bincount(blobs.ravel())[1:].max()) if n else 0
        if largest >= max(5, 0.25 * float(mp[i, 0].sum())):
            found.append({**ids[i], "index": i, "invented_px": largest,
                          "reconstruction_l1": float(np.abs(rec[i, 0] - xp[i, 0]).mean())})
    return found


def _mean_sd(values: Sequence[float]) -> dict[str, float]:
    v = np.array([x for x in values if x is not None and not np.isnan(x)], float)
    return {"mean": float(v.mean()) if v.size else float("nan"), "sd": float(v.std(ddof=1)) if v.size > 1
            else float("nan"), "n": int(v.size)}


def _cell(s: dict[str, float], mark: str = "") -> str:
    if np.isnan(s["mean"]):
        return "-"
    return f"{s['mean']:.3f}" + (f"±{s['sd']:.3f}" if not np.isnan(s["sd"]) else "") + mark


def _by_slice(rows: list[dict[str, Any]], metric: str) -> dict[str, float]:
    return {f"{r['fold']}|{r['case']}|{r['z']}": r[metric] for r in rows}


def _mark(p: float, better: bool) -> str:
    if not better or np.isnan(p):
        return ""
    return "**" if p < 0.01 else "*" if p < 0.05 else ""


def build_table(cfg: PseudoHealthyRecipeConfig, rows: list[dict[str, Any]], extras: dict[str, Any]) -> dict[str, Any]:
    """Table 1 analog per contrast: identity and healthiness (mean ± SD over held-out pathological
    slices), S and anomaly-detector Dice, and on held-out healthy slices identity and false-positive
    pixels; ``*``/``**``: better than the best baseline at p < 0.05 / 0.01 (paired Wilcoxon over
    slices)."""
    lines = ["Table 1 analog: pseudo-healthy synthesis (held-out subjects; mean±SD over slices)"]
    result: dict[str, Any] = {"contrasts": {}, "f_pre": {}, "thresholds": extras["thresholds"],
                              "ms_ssim_scales": extras["scales"], "cyclegan_failures": {}}
    order = [INPUT_ROW] + [r for r in ROWS if r in cfg.rows]
    head = ["row".ljust(20)] + [h.rjust(16) for h in ("identity", "healthiness", "S Dice", "anomaly Dice",
                                                      "identity (h)", "anomaly FP px (h)")]
    for contrast in cfg.contrasts:
        mine = [r for r in rows if r["contrast"] == contrast]
        les = {row: [r for r in mine if r["row"] == row and r["lesion"]] for row in order}
        hea = {row: [r for r in mine if r["row"] == row and not r["lesion"]] for row in order}
        stats = {}
        for row in order:
            stats[row] = {m: _mean_sd([r.get(m) for r in les[row]]) for m in ("identity", "healthiness", "anomaly_dice",
                                                                               "s_dice")}
            stats[row]["identity_healthy"] = _mean_sd([r["identity"] for r in hea[row]])
            stats[row]["anomaly_fp_px_healthy"] = _mean_sd([r.get("anomaly_fp_px") for r in hea[row]])
        paired: list[dict[str, Any]] = []
        marks: dict[tuple[str, str], str] = {}
        for metric in ("identity", "healthiness"):
            bases = [b for b in BASELINES if b in cfg.rows]
            if not bases:
                continue
            best = max(bases, key=lambda b: stats[b][metric]["mean"])
            for row in (r for r in cfg.rows if r not in BASELINES):
                p = paired_values(_by_slice(les[best], metric), _by_slice(les[row], metric), best, row, metric)
                p["vs"] = "best baseline"
                paired.append(p)
                marks[(row, metric)] = _mark(p["wilcoxon_p"], p["mean_diff"] > 0)
        lines += ["", f"{contrast.upper()} ({len(les[INPUT_ROW])} pathological, {len(hea[order[-1]])} healthy "
                      "held-out slices)", "  ".join(head)]
        for row in order:
            s = stats[row]
            lines.append("  ".join([row[:20].ljust(20), _cell(s["identity"], marks.get((row, "identity"), "")).rjust(16),
                                    _cell(s["healthiness"], marks.get((row, "healthiness"), "")).rjust(16),
                                    _cell(s["s_dice"]).rjust(16), _cell(s["anomaly_dice"]).rjust(16),
                                    _cell(s["identity_healthy"]).rjust(16),
                                    _cell(s["anomaly_fp_px_healthy"]).rjust(16)]))
        fpre = _mean_sd(extras["f_pre"].get(contrast, []))
        result["f_pre"][contrast] = fpre
        fails = extras["cyclegan_failures"].get(contrast, [])
        result["cyclegan_failures"][contrast] = fails
        lines.append(f"f_pre (healthiness judge) Dice on held-out pathological slices: {_cell(fpre)}")
        for p in paired:
            lines.append(f"  {p['b']} vs {p['a']} (best baseline), {p['metric']}: mean {p['mean_diff']:+.3f} over "
                         f"{p['cases']} slices, better on {p['better']}, worse on {p['worse']}; "
                         f"Wilcoxon p = {p['wilcoxon_p']:.3g}")
        if "CycleGAN" in cfg.rows:
            lines.append(f"CycleGAN reconstructions that put a lesion elsewhere (Fig. 2 failure): {len(fails)} of "
                         f"{len(les['CycleGAN'])} slices")
        result["contrasts"][contrast] = {"stats": stats, "paired": paired,
                                         "slices": {"pathological": len(les[INPUT_ROW]),
                                                    "healthy": len(hea[order[-1]])}}
    lines += ["", f"identity: masked MS-SSIM with {extras['scales']} scale(s) (window 11), lesion left out; "
                  "identity (h): plain MS-SSIM on healthy slices",
              "healthiness: 1 - mean lesion pixels f_pre finds in the pseudo-healthy images / mean real lesion "
              "pixels; anomaly: |x - pseudo-healthy| > threshold chosen on training slices",
              "*/**: better than the best baseline, paired Wilcoxon over slices p < 0.05 / 0.01 (slices of one "
              "subject are not independent: read p as descriptive)",
              "every model keeps its last epoch; held-out subjects only"]
    result["text"] = "\n".join(lines)
    return result
