"""Wang, Song et al. (ISLES 2018 winner): the pseudo-DWI paper's five tables as one experiment.

Every row is one :class:`~strokesynth.systems.pseudo_dwi.PseudoDwiConfig` (the base config with
a few fields changed), cross-validated on the same subject-level folds; a row that two tables
share (e.g. SLNet + WCE+HGD on DWI^(o,l,h)) is trained once. Each fold's model is chosen on an
inner split of its training subjects (segmenting rows: lesion-scan Dice; synthesis-only rows
keep the last epoch) and scored on the fold's held-out subjects only.

    OUT/
      config.yaml  splits.json  run.log
      rows/<row>/config.yaml             the row's resolved system config
      rows/<row>/fold_k/                 best.pt, last.pt, metrics.csv/json
      rows/<row>/dwi_pseudo/<case>/dwi_pseudo.nii.gz   held-out pseudo-DWI (case affine)
      rows/<row>/metrics/cases.csv       segmentation metrics per held-out case (+ CBF baseline)
      rows/<row>/metrics/quality.csv     SSIM/PSNR/MAE (brain, lesion box), lesion contrast
      table1.txt ... table5.txt, tables.json

The public ISLES 2018 release has no DWI: the synthesis needs paired DWI, from the phantom or
your own data.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from strokesynth._fs import write_text_atomic
from strokesynth.config import from_dict, load_config, load_shipped, replaced, to_dict
from strokesynth.data.arrays import check_labels
from strokesynth.data.case import Case
from strokesynth.data.provenance import save_data_sources
from strokesynth.data.splits import Splits
from strokesynth.engine.crossval import FoldOutcome, cross_validate, open_run
from strokesynth.engine.protocol import PROTOCOLS
from strokesynth.errors import ConfigError, DataError
from strokesynth.io import open_cohort
from strokesynth.io.nifti import write_volume
from strokesynth.metrics import QUALITY_METRICS, brain_mask, image_quality, summarize
from strokesynth.metrics.baselines import BASELINES
from strokesynth.metrics.paired import describe_paired, paired_metric
from strokesynth.metrics.segmentation import SIZE_GROUPS
from strokesynth.metrics.tables import LESION_METRICS, case_rows, summaries
from strokesynth.nets import count_parameters
from strokesynth.perfusion.cta import with_cta_features
from strokesynth.recipes.cv import with_cache_for_large_cases
from strokesynth.runs import RunDir
from strokesynth.systems.pseudo_dwi import PSEUDO, PseudoDwi, PseudoDwiConfig, pseudo_dwi_dataset

CONFIGS = Path(__file__).resolve().parents[3] / "configs" / "pseudo_dwi"


@dataclass(frozen=True)
class Row:
    """One row of a table: its label and the base-config fields it changes (dotted keys; tuples
    stand for lists, so rows stay hashable)."""

    table: int
    label: str
    changes: tuple[tuple[str, Any], ...] = ()
    reference: bool = False  # the row the others of its table are compared with


_SUB_UNET_CE = (("mode", "subsequent"), ("segmenter.name", "unet"), ("segmenter.loss", "ce"))
_FULL = ("generator_inputs", ("maps", "mip", "features"))
_T1 = (*_SUB_UNET_CE, ("generator_inputs", ("maps",)))
_ON_MAPS = (("mode", "segmentation"), ("seg_input", "maps"))
_T3 = (*_ON_MAPS, ("segmenter.loss", "ce"))

ROWS: tuple[Row, ...] = (
    # Table 1: synthesis losses, the generator on F_o (the paper's Table 1); a U-Net (CE) segments each pseudo-DWI
    Row(1, "L1", (*_T1, ("synthesis_loss", "l1"))),
    Row(1, "L2", (*_T1, ("synthesis_loss", "l2"))),
    Row(1, "w-L2", (*_T1, ("synthesis_loss", "wl2"))),
    Row(1, "w-L2+l_h1 (trained Phi_c)", (*_T1, ("synthesis_loss", "wl2_ctx")), reference=True),
    Row(1, "w-L2+l_h2 (gamma 2.4)", (*_T1, ("synthesis_loss", "wl2_ctx"), ("gamma", 2.4))),
    Row(1, "LSGAN (multi-scale D)", (*_T1, ("synthesis_loss", "none"), ("gan_weight", 1.0))),
    Row(1, "L2+GAN", (*_T1, ("synthesis_loss", "l2"), ("gan_weight", 0.05))),
    # Table 2: generator inputs (w-L2 + l_h; a U-Net (CE) segments each pseudo-DWI)
    Row(2, "F_o", _T1),
    Row(2, "F_o+F_l", (*_SUB_UNET_CE, ("generator_inputs", ("maps", "mip")))),
    Row(2, "F_o+F_l+F_h* (no L_e)", (*_SUB_UNET_CE, _FULL, ("beta", 0.0))),
    Row(2, "F_o+F_l+F_h", (*_SUB_UNET_CE, _FULL), reference=True),
    Row(2, "real DWI", (("mode", "segmentation"), ("seg_input", "real_dwi"), ("segmenter.name", "unet"),
                        ("segmenter.loss", "ce"))),
    # Table 3: segmentation networks on the perfusion maps F_o, cross entropy (the paper's Table 3)
    Row(3, "FCN", (*_T3, ("segmenter.name", "fcn"))),
    Row(3, "U-Net", (*_T3, ("segmenter.name", "unet"))),
    Row(3, "R2UNet", (*_T3, ("segmenter.name", "r2unet"))),
    Row(3, "ResUNet", (*_T3, ("segmenter.name", "resunet"))),
    Row(3, "SLNet", _T3, reference=True),
    Row(3, "SLNet w/o SE", (*_T3, ("segmenter.name", "slnet_no_se"))),
    Row(3, "SLNet w/o SN", (*_T3, ("segmenter.name", "slnet_no_sn"))),
    Row(3, "SLNet on DWI^(o,l,h), end to end, WCE+HGD (not in the paper's Table 3)", ()),
    # Table 4: segmentation losses, SLNet on F_o (the paper's Table 4)
    Row(4, "CE", _T3),
    Row(4, "Dice", (*_ON_MAPS, ("segmenter.loss", "dice"))),
    Row(4, "GD", (*_ON_MAPS, ("segmenter.loss", "generalized_dice"))),
    Row(4, "HGD", (*_ON_MAPS, ("segmenter.loss", "hgd"))),
    Row(4, "CE+HGD", (*_ON_MAPS, ("segmenter.loss", "ce_hgd"))),
    Row(4, "WCE+HGD", _ON_MAPS, reference=True),
    # Table 5: segmentation inputs (SLNet, WCE + HGD)
    Row(5, "CTA (I*)", (("mode", "segmentation"), ("seg_input", "cta"))),
    Row(5, "F_o", _ON_MAPS),
    Row(5, "DWI^o", (("generator_inputs", ("maps",)),)),
    Row(5, "DWI^(o,l)", (("generator_inputs", ("maps", "mip")),)),
    Row(5, "DWI^(o,l,h) end to end", (), reference=True),
    Row(5, "DWI^(o,l,h) subsequent", (("mode", "subsequent"),)),
    Row(5, "F_o + DWI^(o,l,h)", (("seg_input", "pseudo_dwi+maps"),)),
    Row(5, "real DWI", (("mode", "segmentation"), ("seg_input", "real_dwi"))),
)

TABLE_TITLES = {
    1: "Table 1: synthesis losses, generator on F_o (pseudo-DWI quality on held-out scans; Dice of a U-Net (CE) on it)",
    2: "Table 2: generator inputs",
    3: "Table 3: segmentation networks on the perfusion maps F_o, cross entropy",
    4: "Table 4: segmentation losses (SLNet on the perfusion maps F_o)",
    5: "Table 5: segmentation inputs (SLNet, WCE+HGD)",
}


@dataclass
class PseudoDwiRecipeConfig:
    """The experiment: data set, folds and seed shared by every row, the base system, the tables.

    Attributes:
        dataset, layout, folds, seed: the cases and the subject-level splits of every row.
        tables: which of the five tables to run (rows they share are trained once).
        rows: row labels to keep of those tables (empty: every row); each chosen table keeps its
            reference row, which the others are compared with.
        system: the base :class:`PseudoDwiConfig` every row changes (the paper's SLNet end to end).
    """

    name: str = "pseudo_dwi"
    dataset: str = ""
    layout: str = "auto"
    folds: int = 5
    seed: int = 0
    tables: list[int] = field(default_factory=lambda: [1, 2, 3, 4, 5])
    rows: list[str] = field(default_factory=list)
    system: PseudoDwiConfig = field(default_factory=PseudoDwiConfig)


def paper_config() -> PseudoDwiRecipeConfig:
    """The paper's settings (``configs/pseudo_dwi/paper.yaml``): 256x256 slices, U-Nets of 64..1024
    (SLNet 33.84 M parameters), RMSprop 2e-3 x0.2 after 180 of 300 epochs, batch 5, 5 folds."""
    return PseudoDwiRecipeConfig(dataset="runs/phantom")


def tiny_config() -> PseudoDwiRecipeConfig:
    """A CPU-sized variant (``configs/pseudo_dwi/tiny.yaml``): 128x128 slices, networks of 8..64
    features, 3 folds, 12 epochs of 12 steps of batch 4 (half of each from lesion slices), RMSprop
    2e-3 x0.2 after epoch 9."""
    cfg = PseudoDwiRecipeConfig(name="pseudo_dwi_tiny", dataset="runs/phantom", folds=3)
    s = cfg.system
    s.data.size = (128, 128)
    s.extractor_channels = [8, 16, 32]
    s.generator_channels = [16, 32, 64, 128]
    s.segmenter.channels = [8, 16, 32, 64]
    s.run.epochs, s.run.batch_size, s.run.steps_per_epoch, s.run.lesion_fraction = 12, 4, 12, 0.5
    s.optim.milestones = [9]
    return cfg


SHIPPED = {"paper": paper_config, "tiny": tiny_config}


def load_recipe_config(path: str | os.PathLike | None, overrides: Sequence[str] = ()) -> PseudoDwiRecipeConfig:
    """A shipped config by name (``tiny``, ``paper``) or a YAML path, with ``key=value`` overrides."""
    return load_shipped(PseudoDwiRecipeConfig, SHIPPED, CONFIGS, path, overrides)


def row_config(base: PseudoDwiConfig, row: Row) -> PseudoDwiConfig:
    """``base`` with the row's changes (checked like any config)."""
    tree = to_dict(base)
    for dotted, value in row.changes:
        node = tree
        *parents, last = dotted.split(".")
        for key in parents:
            node = node[key]
        if last not in node:
            raise ConfigError(f"row {row.label!r}", f"unknown field {dotted!r}")
        node[last] = list(value) if isinstance(value, tuple) else copy.deepcopy(value)
    return from_dict(PseudoDwiConfig, tree, where=f"row {row.label!r}")


def row_key(cfg: PseudoDwiConfig) -> str:
    """A short stable name of a resolved row config: rows with equal configs share one run."""
    text = yaml.safe_dump(to_dict(cfg), sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:10]


def selected_rows(tables: Sequence[int], labels: Sequence[str] = ()) -> list[Row]:
    """The rows of ``tables``; with ``labels`` only those rows and each table's reference row."""
    bad = sorted(set(tables) - set(TABLE_TITLES))
    if bad or not tables:
        raise ConfigError("tables", f"choose tables among 1-5, got {list(tables)}")
    rows = [r for r in ROWS if r.table in set(tables)]
    unknown = sorted(set(labels) - {r.label for r in rows})
    if unknown:
        raise ConfigError("rows", f"no row {unknown} in table(s) {list(tables)}; rows there: "
                                  f"{sorted({r.label for r in rows})}")
    return [r for r in rows if not labels or r.label in set(labels) or r.reference]


def train_row(cfg: PseudoDwiConfig, cases: list[Case], splits: Splits, folder: Path, label: str,
              log: logging.Logger | None = None, echo: Callable[[str], Any] = print) -> dict[str, Any]:
    """Cross-validate one row into ``folder``; score each fold's kept model on its held-out cases.

    Returns the row's per-case segmentation rows and image-quality rows (both also saved).
    """
    seg_rows: list[dict[str, Any]] = []
    quality: list[dict[str, Any]] = []
    params = None

    def score(o: FoldOutcome, held_out: list[Case]) -> None:
        """The fold's kept model on its held-out cases: the pseudo-DWI written and scored against the
        real DWI, the core mask scored (with the CBF-threshold baseline)."""
        nonlocal params
        system = o.kept()
        if "segmenter" in system.networks:
            params = count_parameters(system.networks["segmenter"])
        test = pseudo_dwi_dataset(cfg, held_out, with_target=True, train=False)
        for i, case in enumerate(test.cases):
            pseudo, prob = system.predict(test, i, device=cfg.run.device, amp=cfg.run.amp)
            ref = case[cfg.data.label].array > 0
            if pseudo is not None:
                write_volume(pseudo, folder / PSEUDO / case.id / f"{PSEUDO}.nii.gz")
                real = test.native_channel(i, test.modalities[-1])
                q = image_quality(pseudo.array, real, brain_mask(case), ref if ref.any() else None)
                quality.append({"method": label, "fold": o.fold, "case": case.id, "lesion": bool(ref.any()), **q})
            if prob is not None:
                seg_rows.extend(case_rows(label, o.fold, case, prob.array > cfg.threshold))

    cross_validate(cases, splits, cfg.run, lambda k: folder / f"fold_{k}", build=lambda _: PseudoDwi(cfg),
                   datasets=lambda cs, train: pseudo_dwi_dataset(cfg, cs, with_target=True, train=train),
                   predict=score, log=log, desc=f"{label} fold",
                   after=lambda o: echo(f"  {label}, fold {o.fold}: kept epoch {o.result['best_epoch']} of "
                                        f"{o.result['epochs']}"))
    run = RunDir(folder)
    if seg_rows:
        run.save_table("metrics/cases.csv", seg_rows)
    if quality:
        run.save_table("metrics/quality.csv", quality)
    return {"cases": seg_rows, "quality": quality, "segmenter_parameters": params}


def run_pseudo_dwi(cfg: PseudoDwiRecipeConfig, out: str | os.PathLike, *, force: bool = False, resume: bool = False,
                   echo: Callable[[str], Any] = print) -> dict[str, Any]:
    """Run the chosen tables into ``out`` (see the module docstring); returns the tables.

    With ``resume`` finished rows are read back and an interrupted row continues from each
    fold's ``last.pt``.
    """
    if resume:
        cfg = load_config(PseudoDwiRecipeConfig, RunDir.resume(out).file("config.yaml"))
    elif cfg.dataset:
        cfg = replaced(cfg, dataset=str(Path(cfg.dataset).resolve()))
    if not cfg.dataset:
        raise ConfigError("dataset", "set the data set folder (dataset: ... or --set dataset=...)")
    rows = selected_rows(cfg.tables, cfg.rows)
    base = replaced(cfg.system, {"data.dataset": cfg.dataset, "data.layout": cfg.layout, "run.folds": cfg.folds,
                                 "run.seed": cfg.seed})
    configs = {r: row_config(base, r) for r in rows}  # every row checked before anything is written
    needs = {"ctp"} if any(c.needs_cta() for c in configs.values()) else set()
    require = [*base.data.modalities, base.target, base.data.label, *needs]
    cohort = open_cohort(cfg.dataset, layout=cfg.layout, require=require)
    cases = cohort.cases
    check_labels(cases, base.data.label)
    if len({c.subject for c in cases}) < cfg.folds:
        raise DataError(cfg.dataset, f"{len({c.subject for c in cases})} subject(s) for {cfg.folds} folds")
    if needs:  # computed once for every row and fold; a scan without a bolus fails here, before any write
        cases = [with_cta_features(c, base.cta) for c in cases]
        for c in cases:
            c["cta_mip"].array  # noqa: B018 - computes (and keeps) the features, raising on a bad scan
    run, splits = open_run(out, cfg, cases, force=force, resume=resume)
    save_data_sources(run.path, cases, {**{k: "input" for k in [*base.data.modalities, *needs]},
                                        base.target: "target", base.data.label: "label"})
    log = run.logger()
    results: dict[str, dict[str, Any]] = {}
    for row in rows:
        c = configs[row]
        key = row_key(c)
        folder = run.file("rows", key)
        done = folder / "metrics" / "done.json"
        if key not in results:
            if resume and done.exists():
                results[key] = RunDir(folder).load_json("metrics/done.json")
            else:
                echo(f"== table {row.table}, {row.label} (rows/{key})")
                folder.mkdir(parents=True, exist_ok=True)
                c, note = with_cache_for_large_cases(c, cases, run.path)  # one disk cache for every row
                if note:
                    echo(note)
                RunDir(folder).save_config(c)
                res = train_row(c, cases, splits, folder, key, log=log, echo=echo)
                RunDir(folder).save_json("metrics/done.json", res)
                results[key] = res
    tables = build_tables(rows, configs, results, run, splits)
    run.save_json("tables.json", tables)
    for t, table in tables.items():
        write_text_atomic(run.file(f"table{t}.txt"), table["text"] + "\n")
        echo("\n" + table["text"])
    return tables


def _unsigned_rve(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The case rows with Wang et al.'s relative volume error |V_s − V_g| / V_g (``cases.csv`` keeps
    the signed value, which says whether a method over- or under-segments)."""
    return [r | {"rve": abs(r["rve"])} if isinstance(r.get("rve"), float) else r for r in rows]


def _mean_sd(values: list[float]) -> dict[str, float]:
    v = np.array([x for x in values if not np.isnan(x)], float)
    return {"mean": float(v.mean()) if v.size else float("nan"),
            "sd": float(v.std(ddof=1)) if v.size > 1 else float("nan"), "n": int(v.size)}


def _fmt(s: dict[str, float], digits: int = 3) -> str:
    if np.isnan(s["mean"]):
        return "-"
    return f"{s['mean']:.{digits}f}" + (f"±{s['sd']:.{digits}f}" if not np.isnan(s["sd"]) else "")


def build_tables(rows: list[Row], configs: dict[Row, PseudoDwiConfig], results: dict[str, dict[str, Any]],
                 run: RunDir, splits: Splits) -> dict[int, dict[str, Any]]:
    """The tables as numbers, paired comparisons and text (the paper's layout, lesion and
    lesion-free scans apart, the CBF-threshold and Tmax > 6 s baselines on the same scans)."""
    out: dict[int, dict[str, Any]] = {}
    for t in sorted({r.table for r in rows}):
        trows = [r for r in rows if r.table == t]
        ref = next(r for r in trows if r.reference)
        entries, lines = [], [TABLE_TITLES[t]]
        synth = t in (1, 2)
        width = max([28, *map(len, BASELINES)] + [len(r.label) for r in trows])  # labels are never cut
        head = ["row".ljust(width)]
        if synth:
            head += [h.rjust(14) for h in ("SSIM brain", "PSNR brain", "SSIM lesion", "PSNR lesion",
                                           "contrast", "% of real")]
        head += [h.rjust(14) for h in ("Dice", "HD mm", "|RVE|", "FP ml (empty)")]
        if t == 3:
            head.append("params (M)".rjust(12))
        lines.append("  ".join(head))
        base_rows: dict[str, list[dict[str, Any]]] = {}
        for r in trows:
            key = row_key(configs[r])
            res = results[key]
            q = [x for x in res["quality"] if x["lesion"]]
            qa = res["quality"]
            for b in BASELINES:
                base_rows[b] = base_rows.get(b) or _unsigned_rve([x for x in res["cases"] if x["method"] == b])
            summ = summaries(_unsigned_rve(res["cases"]), configs[r].run.selection) if res["cases"] else None
            e: dict[str, Any] = {"row": r.label, "run": f"rows/{key}", "reference": r.reference}
            cells = [r.label.ljust(width)]
            if synth:
                gen = _mean_sd([x["contrast_generated"] for x in q])
                real = _mean_sd([x["contrast_real"] for x in q])
                ratio = gen["mean"] / real["mean"] if real["mean"] and not np.isnan(gen["mean"]) else float("nan")
                e["quality"] = {m: _mean_sd([x[m] for x in (q if "lesion" in m or "contrast" in m else qa)])
                                for m in QUALITY_METRICS}
                e["contrast_ratio_of_real"] = ratio
                cells += [_fmt(e["quality"][m]).rjust(14) for m in ("ssim_brain", "psnr_brain", "ssim_lesion",
                                                                     "psnr_lesion", "contrast_generated")]
                cells.append(("-" if np.isnan(ratio) else f"{100 * ratio:.0f} %").rjust(14))
            if summ is not None:
                les, emp = summ["lesion"][key], summ["empty"].get(key)
                e["lesion"], e["empty"], e["by_size"] = les, emp, summ["by_size"][key]
                cells += [_fmt(les["dice"]).rjust(14), _fmt(les["hd"], 1).rjust(14), _fmt(les["rve"]).rjust(14),
                          (_fmt(emp["fp_ml"], 2) if emp else "-").rjust(14)]
            else:
                cells += ["-".rjust(14)] * 4
            if t == 3:
                p = res.get("segmenter_parameters")
                e["parameters"] = p
                cells.append(("-" if p is None else f"{p / 1e6:.2f}").rjust(12))
            entries.append(e)
            lines.append("  ".join(cells))
        for b, recs in base_rows.items():
            if not recs:
                continue
            bs = summarize([x for x in recs if x["lesion"]], LESION_METRICS)
            empty = [x["fp_ml"] for x in recs if not x["lesion"]]
            lines.append("  ".join([b.ljust(width)] + ([" " * 14] * 6 if synth else [])
                                   + [_fmt(bs["dice"]).rjust(14), _fmt(bs["hd"], 1).rjust(14), _fmt(bs["rve"]).rjust(14),
                                      (f"{np.mean(empty):.2f}" if empty else "-").rjust(14)]))
        # paired comparisons: each row against the table's reference row, and against the baseline
        ref_key = row_key(configs[ref])
        paired = []
        for r in trows:
            key = row_key(configs[r])
            a_csv = run.file("rows", ref_key, "metrics", "cases.csv")
            b_csv = run.file("rows", key, "metrics", "cases.csv")
            if b_csv.exists():
                for b in BASELINES:
                    if base_rows.get(b):
                        paired.append(paired_metric(b_csv, b, b_csv, key, "dice") | {"vs": b, "row": r.label})
                if r is not ref and a_csv.exists():
                    paired.append(paired_metric(a_csv, ref_key, b_csv, key, "dice") | {"vs": ref.label, "row": r.label})
            if synth and r is not ref:
                qa_csv = run.file("rows", ref_key, "metrics", "quality.csv")
                qb_csv = run.file("rows", key, "metrics", "quality.csv")
                if qa_csv.exists() and qb_csv.exists():
                    for m in ("contrast_generated", "ssim_lesion"):
                        paired.append(paired_metric(qa_csv, ref_key, qb_csv, key, m) | {"vs": ref.label,
                                                                                       "row": r.label})
        names = {row_key(configs[r]): r.label for r in trows} | {b: b for b in BASELINES}
        for p in paired:
            text = describe_paired({**p, "a": names.get(p["a"], p["a"]), "b": names.get(p["b"], p["b"])})
            lines.append("  " + text)
        if t == 5:
            lines.append("Dice / |relative volume error| by reference lesion size:")
            for e in entries:
                if "by_size" in e:
                    parts = [f"{g}: {_fmt(e['by_size'][g]['dice'])} / {_fmt(e['by_size'][g]['rve'])} "
                             f"(n={e['by_size'][g]['dice']['n']})"
                             for g, _, _ in SIZE_GROUPS]
                    lines.append(f"  {e['row']}: " + "; ".join(parts))
        lines.append(f"held-out subjects only; selection: {base_selection(configs[ref])}")
        out[t] = {"title": TABLE_TITLES[t], "rows": entries, "paired": paired, "text": "\n".join(lines)}
    return out


def base_selection(cfg: PseudoDwiConfig) -> str:
    return f"{cfg.run.selection} - {PROTOCOLS[cfg.run.selection]}"
