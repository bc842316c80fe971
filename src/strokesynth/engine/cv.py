"""Cross-validation of a segmenter: train every fold, evaluate each on its held-out subjects."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from strokesynth.config import load_config
from strokesynth.data.case import Case
from strokesynth.data.config import fold_datasets
from strokesynth.data.splits import Splits, load_splits, subject_kfold
from strokesynth.data.volume import Volume
from strokesynth.engine.checkpoint import load_checkpoint
from strokesynth.engine.config import TrainConfig
from strokesynth.engine.models import VOLUMETRIC, build_model, predict_case
from strokesynth.engine.trainer import Dist, train_fold
from strokesynth.errors import ConfigError, DataError
from strokesynth.io import open_cohort
from strokesynth.io.nifti import write_volume
from strokesynth.metrics import METRICS, evaluate_case, summarize, summarize_by_size
from strokesynth.phantom.validation import threshold_core
from strokesynth.runs import RunDir

BASELINE = "baseline: CBF < 30% of median"
TABLE_METRICS = ("dice", "hd", "assd", "precision", "recall", "avd_ml", "lesion_f1")


def _quiet(_: str) -> None:
    return None


def _folds(cfg: TrainConfig) -> list[int]:
    folds = cfg.folds_to_run or list(range(cfg.data.folds))
    bad = [f for f in folds if not 0 <= f < cfg.data.folds]
    if bad:
        raise ConfigError("folds_to_run", f"fold(s) {bad} outside 0..{cfg.data.folds - 1}")
    return folds


def run_training(cfg: TrainConfig, out: str | os.PathLike, *, force: bool = False, resume: bool = False,
                 splits: Splits | None = None, echo: Callable[[str], Any] = print) -> dict[str, Any]:
    """Train and evaluate every fold of ``cfg`` into the run folder ``out``.

    With ``resume`` an existing run continues from each fold's ``last.pt``. ``splits`` imposes
    the folds (e.g. those of a synthesis run whose out-of-fold outputs are inputs here);
    without it they are made by subject from ``cfg.data.seed``.
    """
    ddp = Dist.from_env(cfg.device)
    if resume:
        run = RunDir.resume(out)
        cfg = load_config(TrainConfig, run.file("config.yaml"))
    elif ddp.main:
        run = RunDir.create(out, force=force)
        run.save_config(cfg)
    else:
        run = RunDir(out)
    if ddp.world > 1:
        torch.distributed.barrier()
    if ddp.main:
        log = run.logger()
    else:  # one log and one console: rank 0's
        log = logging.getLogger(f"strokesynth.rank{ddp.rank}")
        log.addHandler(logging.NullHandler())
        log.propagate = False
        echo = _quiet
    cohort = open_cohort(cfg.data.dataset, layout=cfg.data.layout, require=cfg.data.modalities + [cfg.data.label],
                         derived=cfg.data.derived)
    cases = cohort.cases
    splits_path = run.file("splits.json")
    if splits_path.exists():
        splits = load_splits(splits_path, cases)
    elif splits is not None:
        if ddp.main:
            splits.save(splits_path)
    else:
        splits = subject_kfold(cases, cfg.data.folds, cfg.data.seed)
        if ddp.main:
            splits.save(splits_path)
    fold_results = []
    for fold in _folds(cfg):
        folder = run.file(f"fold_{fold}")
        folder.mkdir(exist_ok=True)
        echo(f"fold {fold}: {len(splits.folds[fold].train_cases)} training case(s), "
             f"{len(splits.folds[fold].val_cases)} held out")
        res = train_fold(cfg, cases, splits, fold, folder, log, ddp)
        fold_results.append({"fold": fold, **res})
        echo(f"fold {fold}: best validation Dice {res['best_dice']:.3f} at epoch {res['best_epoch']} "
             f"({res['epochs']} epoch(s){', stopped early' if res['stopped_early'] else ''})")
    if ddp.world > 1:
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    if not ddp.main:
        return {}
    run.save_table("metrics/folds.csv", fold_results)
    summary = evaluate_run(run.path, cfg=cfg, cases=cases, splits=splits, echo=echo)
    summary["folds"] = fold_results
    run.save_json("metrics/summary.json", summary)
    return summary


def evaluate_run(out: str | os.PathLike, *, cfg: TrainConfig | None = None, cases: list[Case] | None = None,
                 splits: Splits | None = None, echo: Callable[[str], Any] = print) -> dict[str, Any]:
    """Evaluate each fold's best model on its held-out cases, next to the CBF-threshold baseline.

    Writes ``predictions/<case>/{prob,mask}.nii.gz`` (input affine), ``metrics/cases.csv`` and
    returns (and saves) the summary: mean ± sd per metric, per fold and per lesion-size group.
    """
    run = RunDir.resume(out)
    cfg = cfg or load_config(TrainConfig, run.file("config.yaml"))
    if cases is None:
        cases = open_cohort(cfg.data.dataset, layout=cfg.data.layout,
                            require=cfg.data.modalities + [cfg.data.label], derived=cfg.data.derived).cases
    splits = splits or load_splits(run.file("splits.json"), cases)
    rows = []
    for fold in _folds(cfg):
        for case, prob in fold_probabilities(run, cfg, cases, splits, fold):
            mask = prob.array > cfg.threshold
            write_volume(prob, run.file("predictions", case.id, "prob.nii.gz"))
            write_volume(Volume(mask.astype(np.uint8), prob.affine, kind="label"),
                         run.file("predictions", case.id, "mask.nii.gz"))
            rows.extend(_case_rows(cfg.name, fold, case, mask))
    if not rows:
        raise ConfigError(run.path, "no fold has a best.pt to evaluate")
    run.save_table("metrics/cases.csv", rows)
    summary = _summaries(rows)
    run.save_json("metrics/evaluation.json", summary)
    echo(format_table(summary["overall"]))
    return summary


def fold_probabilities(run: RunDir, cfg: TrainConfig, cases: list[Case], splits: Splits, fold: int):
    """Yield ``(case, probability Volume)`` for the held-out cases of ``fold`` with its best model."""
    best = run.file(f"fold_{fold}", "best.pt")
    if not best.exists():
        return
    model = build_model(cfg.model, len(cfg.data.modalities), pretrained=False)
    model.load_state_dict(load_checkpoint(best)["model"])
    model.to(cfg.device)
    kind = "volumes" if cfg.model.name in VOLUMETRIC else "slices"
    _, val_ds = fold_datasets(cases, cfg.data, splits, fold, kind=kind)
    for i, case in enumerate(val_ds.cases):
        yield case, predict_case(model, val_ds, i, device=cfg.device, amp=cfg.amp)


def _case_rows(method: str, fold: int, case: Case, mask: np.ndarray) -> list[dict[str, Any]]:
    """Metrics of ``mask`` on ``case``, and of the CBF-threshold baseline when the case has CBF."""
    ref = case.label.array > 0
    rows = [{"method": method, "fold": fold, "case": case.id, **evaluate_case(mask, ref, case.spacing)}]
    if "cbf" in case:
        base = threshold_core(case["cbf"].array, case["cbf"].array > 0)
        rows.append({"method": BASELINE, "fold": fold, "case": case.id, **evaluate_case(base, ref, case.spacing)})
    return rows


def _summaries(rows: list[dict[str, Any]]) -> dict[str, Any]:
    methods = list(dict.fromkeys(r["method"] for r in rows))
    return {
        "overall": {m: summarize([r for r in rows if r["method"] == m], METRICS) for m in methods},
        "by_fold": {m: {f: summarize([r for r in rows if r["method"] == m and r["fold"] == f], METRICS)
                        for f in sorted({r["fold"] for r in rows})} for m in methods},
        "by_size": {m: summarize_by_size([r for r in rows if r["method"] == m], METRICS) for m in methods},
    }


def evaluate_ensemble(runs: list[str | os.PathLike], out: str | os.PathLike, *, force: bool = False,
                      echo: Callable[[str], Any] = print) -> dict[str, Any]:
    """Average the fold-k best models of several cross-validation runs on fold k's held-out cases.

    The runs must share data set and splits (e.g. PSPNet with focal loss and with CE, as the
    paper's final 5 + 5 model ensemble). Writes ``out/metrics/{cases.csv,evaluation.json}``
    with the ensemble, each member and the baseline.
    """
    if len(runs) < 2:
        raise ConfigError("ensemble", "give at least two run folders")
    loaded = [(RunDir.resume(r), load_config(TrainConfig, Path(r) / "config.yaml")) for r in runs]
    first_run, first_cfg = loaded[0]
    splits_text = first_run.file("splits.json").read_text(encoding="utf-8")
    for run, _ in loaded[1:]:
        if run.file("splits.json").read_text(encoding="utf-8") != splits_text:
            raise ConfigError(run.path, "has other cross-validation splits than " + str(first_run.path))
    cases = open_cohort(first_cfg.data.dataset, layout=first_cfg.data.layout, derived=first_cfg.data.derived).cases
    splits = load_splits(first_run.file("splits.json"), cases)
    dest = RunDir.create(out, force=force)
    dest.save_json("members.json", [str(r.path) for r, _ in loaded])
    rows: list[dict[str, Any]] = []
    folds = sorted(set.intersection(*(set(_folds(c)) for _, c in loaded)))
    for fold in folds:
        per_member = [dict((c.id, (c, p)) for c, p in fold_probabilities(r, cfg, cases, splits, fold))
                      for r, cfg in loaded]
        for case_id in per_member[0]:
            case = per_member[0][case_id][0]
            probs = [m[case_id][1].array for m in per_member if case_id in m]
            for (_, cfg), m in zip(loaded, per_member, strict=True):
                if case_id in m:
                    rows.extend(r for r in _case_rows(cfg.name, fold, case, m[case_id][1].array > cfg.threshold)
                                if r["method"] != BASELINE)
            rows.extend(_case_rows(f"ensemble of {len(probs)}", fold, case, np.mean(probs, axis=0) > first_cfg.threshold))
    dest.save_table("metrics/cases.csv", rows)
    summary = _summaries(rows)
    dest.save_json("metrics/evaluation.json", summary)
    echo(format_table(summary["overall"]))
    return summary


def format_table(overall: dict[str, dict[str, dict[str, float]]], metrics=TABLE_METRICS) -> str:
    """A text table: one row per method, ``mean ± sd`` per metric (undefined counts in brackets)."""
    head = ["method".ljust(32)] + [m.rjust(16) for m in metrics]
    lines = ["  ".join(head)]
    for method, s in overall.items():
        cells = []
        for m in metrics:
            v = s[m]
            cell = f"{v['mean']:.3f}±{v['sd']:.3f}" if not np.isnan(v["sd"]) else f"{v['mean']:.3f}"
            if v["undefined"]:
                cell += f" [{v['undefined']}]"
            cells.append(cell.rjust(16))
        lines.append("  ".join([method[:32].ljust(32)] + cells))
    return "\n".join(lines)


def load_model(path: str | os.PathLike) -> tuple[torch.nn.Module, TrainConfig]:
    """A trained model from a run folder (best model of its first fold) or a fold's checkpoint file."""
    path = Path(path)
    if not path.exists():
        raise DataError(path, "no such run folder or checkpoint file")
    if path.is_dir():
        run = RunDir.resume(path)
        cfg = load_config(TrainConfig, run.file("config.yaml"))
        ckpt = run.file(f"fold_{_folds(cfg)[0]}", "best.pt")
    else:
        ckpt = path
        cfg = load_config(TrainConfig, path.parent.parent / "config.yaml")
    model = build_model(cfg.model, len(cfg.data.modalities), pretrained=False)
    model.load_state_dict(load_checkpoint(ckpt)["model"])
    return model.eval(), cfg
