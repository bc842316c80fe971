"""Cross-validation of a segmenter: train every fold on the fold loop, score each on its held-out subjects.

Scores are reported for scans with a lesion and lesion-free scans apart: overlap and distance
metrics on the former (Dice, HD, ASSD, precision, recall, volume error, lesion F1), the
false-positive volume and the share of correctly empty predictions on the latter. The
CBF-threshold baseline is scored on the same scans. Which data chose each fold's checkpoint
is the run's selection protocol (:mod:`strokesynth.engine.protocol`), saved with the results.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from strokesynth.config import load_config, replaced, to_dict
from strokesynth.data.arrays import check_labels
from strokesynth.data.case import Case
from strokesynth.data.config import make_dataset
from strokesynth.data.provenance import save_data_sources
from strokesynth.data.splits import Splits, load_splits
from strokesynth.data.volume import Volume
from strokesynth.engine.checkpoint import load_system
from strokesynth.engine.crossval import FoldOutcome, cross_validate, run_splits
from strokesynth.engine.sampling import epoch_steps
from strokesynth.engine.system import Dist
from strokesynth.errors import ConfigError, DataError
from strokesynth.io import open_cohort
from strokesynth.io.nifti import write_volume
from strokesynth.metrics.baselines import BASELINES
from strokesynth.metrics.paired import describe_paired, paired_rows
from strokesynth.metrics.tables import PROTOCOLS, case_rows, format_table, summaries
from strokesynth.runs import RunDir
from strokesynth.systems.segmenter import Segmenter, TrainConfig, predict_case, pretraining_warning

__all__ = ["evaluate_ensemble", "evaluate_run", "load_model", "run_training"]


def _quiet(_: str) -> None:
    return None


def _open(cfg: TrainConfig) -> list[Case]:
    cases = open_cohort(cfg.data.dataset, layout=cfg.data.layout, require=cfg.data.modalities + [cfg.data.label],
                        derived=cfg.data.derived).cases
    check_labels(cases, cfg.data.label)
    return cases


def _kind(cfg: TrainConfig) -> str:
    return "volumes" if cfg.model.volumetric else "slices"


def absolute_data_paths(cfg: TrainConfig) -> TrainConfig:
    """``cfg`` with its data set, derived and cache folders absolute, so the saved config finds
    them from any working directory (``train --resume --out RUN`` alone)."""
    d = cfg.data
    return replaced(cfg, {"data.dataset": str(Path(d.dataset).resolve()) if d.dataset else d.dataset,
                          "data.derived": [str(Path(p).resolve()) for p in d.derived],
                          "data.cache_dir": str(Path(d.cache_dir).resolve()) if d.cache_dir else d.cache_dir})


#: any config with a ``data`` part (a segmenter's, a cGAN's, a pseudo-DWI system's)
C = TypeVar("C")

#: cases above this many bytes of preprocessed channels each are cached on disk when the config names no cache
#: and the in-memory LRU (:class:`~strokesynth.data.arrays.ArrayStore`, 8 cases) cannot hold the data set
AUTO_CACHE_BYTES = 64 * 2**20


def with_cache_for_large_cases(cfg: C, cases: list[Case], out: str | os.PathLike) -> tuple[C, str]:
    """``cfg`` with ``data.cache_dir = OUT/cache`` when it names none and the data set would thrash
    the in-memory LRU: more than 8 cases of more than :data:`AUTO_CACHE_BYTES` each (an ISLES'24
    case: 5 channels of 512 x 512 x 80 float32, 420 MB; shuffled slices then re-read whole volumes
    for almost every slice). The disk cache holds each case on the working grid (26 MB for that case
    at 128 px; :mod:`strokesynth.data.arrays`). Returns the config and a note for the console ("" when
    unchanged)."""
    if cfg.data.cache_dir or len(cases) <= 8:
        return cfg, ""
    per_case = max(int(np.prod(c.reference.spatial_shape)) for c in cases) * 4 * len(cfg.data.modalities)
    if per_case <= AUTO_CACHE_BYTES:
        return cfg, ""
    folder = str((Path(out) / "cache").resolve())
    return replaced(cfg, {"data.cache_dir": folder}), (
        f"note: {len(cases)} cases of up to {per_case / 2**20:.0f} MB of channels each do not fit the in-memory "
        f"cache; preprocessed arrays are cached on disk, on the working grid, in {folder} (data.cache_dir)")


#: the run's record of what was measured from its data (beside ``config.yaml``, which stays as resolved)
MEASURED = "measured.json"


def measure_training_data(cases: list[Case]) -> dict[str, Any]:
    """What a run records from its data set, not from its config: ``pixel_mm``, the median
    in-plane pixel size (mm) of the cases, to which ``predict`` resamples new cases (unless the
    config sets ``data.pixel_mm``). Saved as ``measured.json`` and in every checkpoint."""
    return {"pixel_mm": round(float(np.median([np.mean(c.spacing[:2]) for c in cases])), 4)}


def predict_config(system: Segmenter) -> TrainConfig:
    """A restored segmenter's config as ``predict`` reads it: the resolved config with the
    measured training pixel size in ``data.pixel_mm`` where the config left it to be measured
    (a new config, :func:`strokesynth.config.replaced`; the saved one is not changed)."""
    cfg, pixel = system.config, system.measured.get("pixel_mm")
    if cfg.data.pixel_mm > 0 or not pixel:
        return cfg
    return replaced(cfg, {"data.pixel_mm": float(pixel)})


def run_training(cfg: TrainConfig, out: str | os.PathLike, *, force: bool = False, resume: bool = False,
                 splits: Splits | None = None, echo: Callable[[str], Any] = print) -> dict[str, Any]:
    """Train and evaluate every fold of ``cfg`` into the run folder ``out``.

    With ``resume`` an existing run continues from each fold's ``last.pt``. ``splits`` imposes
    the folds (e.g. those of a synthesis run whose out-of-fold outputs are inputs here);
    without it they are made by subject from ``cfg.run.seed``.
    """
    dist = Dist.from_env(cfg.run.device)
    if resume:
        run = RunDir.reopen(out) if dist.main else RunDir.resume(out)
        cfg = load_config(TrainConfig, run.file("config.yaml"))
        if run.file("metrics", "summary.json").is_file():
            echo(f"{run.path} already finished (metrics/summary.json): nothing to resume. "
                 "`strokesynth evaluate RUN` scores it again; --force trains a new run.")
            return run.load_json("metrics/summary.json")
    else:
        cfg = absolute_data_paths(cfg)
    cases = _open(cfg)  # read before anything is written
    # a run killed before its record was written (or older than it) measures again: same cases, same values
    measured = run.load_json(MEASURED) if resume and run.file(MEASURED).is_file() else measure_training_data(cases)
    if not resume:
        cfg, note = with_cache_for_large_cases(cfg, cases, out)
        if note:
            echo(note)
        if dist.main:
            run = RunDir.create(out, force=force)
            run.save_config(cfg)
            run.save_json(MEASURED, measured)
            save_data_sources(run.path, cases, {**{k: "input" for k in cfg.data.modalities}, cfg.data.label: "label"})
        else:
            run = RunDir(out)
    if dist.world > 1:
        torch.distributed.barrier()
    if dist.main:
        log = run.logger()
    else:  # one log and one console: rank 0's
        log = logging.getLogger(f"strokesynth.rank{dist.rank}")
        log.addHandler(logging.NullHandler())
        log.propagate = False
        echo = _quiet
    splits = run_splits(run, cases, cfg.run.folds, cfg.run.seed, given=splits, save=dist.main)
    echo(f"selection protocol: {cfg.run.selection} - {PROTOCOLS[cfg.run.selection]}")
    warning = pretraining_warning(cfg)
    if warning:
        echo(warning)
        log.warning(warning)
    fold_results = []

    def after(o: FoldOutcome) -> None:
        res = o.result
        per_epoch = epoch_steps(o.train_size, cfg.run.batch_size, cfg.run.steps_per_epoch, dist.world)
        fold_results.append({"fold": o.fold, **res, "steps": per_epoch * res["epochs"],
                             "train_cases": len(o.sets.train), "select_cases": len(o.sets.select),
                             "test_cases": len(o.sets.test)})
        best = "" if res["best"] is None else f", selection Dice {res['best']:.3f}"
        echo(f"fold {o.fold}: {len(o.sets.train)} training, {len(o.sets.select)} selection, {len(o.sets.test)} "
             f"held-out case(s); kept epoch {res['best_epoch']}{best} ({res['epochs']} epoch(s)"
             f"{', stopped early' if res['stopped_early'] else ''})")

    cross_validate(cases, splits, cfg.run, lambda k: run.file(f"fold_{k}"),
                   build=lambda train: Segmenter(cfg, train_dataset=train, measured=measured),
                   datasets=lambda cs, train: make_dataset(cs, cfg.data, seed=cfg.run.seed, train=train, kind=_kind(cfg)),
                   after=after, log=log, dist=dist, desc="fold")
    dist.close()
    if not dist.main:
        return {}
    run.save_table("metrics/folds.csv", fold_results)
    summary = evaluate_run(run.path, cfg=cfg, cases=cases, splits=splits, echo=echo)
    summary["folds"] = fold_results
    if warning:
        summary["warnings"] = [warning]
    run.save_json("metrics/summary.json", summary)
    return summary


def evaluate_run(out: str | os.PathLike, *, cfg: TrainConfig | None = None, cases: list[Case] | None = None,
                 splits: Splits | None = None, echo: Callable[[str], Any] = print) -> dict[str, Any]:
    """Score each fold's kept model (``best.pt``) on its held-out cases, next to the CBF-threshold and
    Tmax > 6 s baselines, with the paired Dice of the model against each (``paired_vs_baselines``).

    Writes ``predictions/<case>/{prob,mask}.nii.gz`` (input affine), ``metrics/cases.csv`` and
    ``metrics/evaluation.json``; returns the summary (see :func:`summaries`).
    """
    run = RunDir.reopen(out)
    cfg = cfg or load_config(TrainConfig, run.file("config.yaml"))
    missing = [f for f in cfg.run.fold_list() if not run.file(f"fold_{f}", "best.pt").is_file()]
    if missing:  # a partial evaluation would replace the saved one with fewer folds
        raise DataError(run.file(f"fold_{missing[0]}", "best.pt"),
                        f"missing (fold(s) {', '.join(map(str, missing))} have no kept model); nothing re-evaluated "
                        "(finish the run with --resume)")
    cases = cases if cases is not None else _open(cfg)
    splits = splits or load_splits(run.file("splits.json"), cases)
    rows = []
    for fold in cfg.run.fold_list():
        for case, prob in fold_probabilities(run, cfg, cases, splits, fold):
            mask = prob.array > cfg.threshold
            write_volume(prob, run.file("predictions", case.id, "prob.nii.gz"))
            write_volume(Volume(mask.astype(np.uint8), prob.affine, kind="label"),
                         run.file("predictions", case.id, "mask.nii.gz"))
            rows.extend(case_rows(cfg.name, fold, case, mask))
    if not rows:
        raise ConfigError(run.path, "no fold has a best.pt to evaluate")
    run.save_table("metrics/cases.csv", rows)
    summary = summaries(rows, cfg.run.selection)
    summary["paired_vs_baselines"] = [paired_rows(rows, base, cfg.name) for base in BASELINES
                                      if any(r["method"] == base for r in rows)]
    run.save_json("metrics/evaluation.json", summary)
    echo("\n".join([format_table(summary), *map(describe_paired, summary["paired_vs_baselines"])]))
    return summary


def fold_probabilities(run: RunDir, cfg: TrainConfig, cases: list[Case], splits: Splits, fold: int):
    """Yield ``(case, probability Volume)`` for the held-out cases of ``fold`` with its kept model."""
    best = run.file(f"fold_{fold}", "best.pt")
    if not best.exists():
        return
    model = kept_model(best, cfg).to(cfg.run.device)
    by_id = {c.id: c for c in cases}
    ds = make_dataset([by_id[c] for c in splits.folds[fold].val_cases], cfg.data, seed=cfg.run.seed, kind=_kind(cfg))
    for i, case in enumerate(ds.cases):
        yield case, predict_case(model, ds, i, device=cfg.run.device, amp=cfg.run.amp)


def kept_model(path: Path, cfg: TrainConfig) -> torch.nn.Module:
    """The segmentation network in checkpoint ``path``, checked to be the one the run ``cfg`` trains
    (same system, network and input channels), so a checkpoint copied from another run is refused in
    one line instead of failing inside the network."""
    system = load_system(path)
    if not isinstance(system, Segmenter):
        raise DataError(path, f"holds a {system.name} system, not the segmenter this run trains")
    theirs = {**{f"model.{k}": v for k, v in to_dict(system.config.model).items()},
              "data.modalities": list(system.config.data.modalities)}
    ours = {**{f"model.{k}": v for k, v in to_dict(cfg.model).items()}, "data.modalities": list(cfg.data.modalities)}
    differ = [k for k in ours if theirs.get(k) != ours[k]]
    if differ:
        k = differ[0]
        raise DataError(path, f"is not this run's model: {k} is {theirs.get(k)!r} there, {ours[k]!r} in the run's "
                              "config.yaml (a checkpoint of another run?)")
    return system.networks["model"]


def evaluate_ensemble(runs: list[str | os.PathLike], out: str | os.PathLike, *, force: bool = False,
                      echo: Callable[[str], Any] = print) -> dict[str, Any]:
    """Average the fold-k kept models of several cross-validation runs on fold k's held-out cases.

    The runs must share data set, splits and selection protocol (e.g. PSPNet with focal loss
    and with CE, as the paper's final 5 + 5 model ensemble). Writes
    ``out/metrics/{cases.csv,evaluation.json}`` with the ensemble, each member and the baseline.
    """
    if len(runs) < 2:
        raise ConfigError("ensemble", "give at least two run folders")
    loaded = [(RunDir.resume(r), load_config(TrainConfig, Path(r) / "config.yaml")) for r in runs]
    first_run, first_cfg = loaded[0]
    splits_text = first_run.file("splits.json").read_text(encoding="utf-8")
    for run, cfg in loaded[1:]:
        if run.file("splits.json").read_text(encoding="utf-8") != splits_text:
            raise ConfigError(run.path, "has other cross-validation splits than " + str(first_run.path))
        if cfg.run.selection != first_cfg.run.selection:
            raise ConfigError(run.path, f"selection {cfg.run.selection!r} differs from {first_cfg.run.selection!r}")
    cases = open_cohort(first_cfg.data.dataset, layout=first_cfg.data.layout, derived=first_cfg.data.derived).cases
    splits = load_splits(first_run.file("splits.json"), cases)
    dest = RunDir.create(out, force=force)
    dest.save_json("members.json", [str(r.path) for r, _ in loaded])
    rows: list[dict[str, Any]] = []
    folds = sorted(set.intersection(*(set(c.run.fold_list()) for _, c in loaded)))
    for fold in folds:
        per_member = [dict((c.id, (c, p)) for c, p in fold_probabilities(r, cfg, cases, splits, fold))
                      for r, cfg in loaded]
        for case_id in per_member[0]:
            case = per_member[0][case_id][0]
            probs = [m[case_id][1].array for m in per_member if case_id in m]
            for (_, cfg), m in zip(loaded, per_member, strict=True):
                if case_id in m:
                    rows.extend(r for r in case_rows(cfg.name, fold, case, m[case_id][1].array > cfg.threshold)
                                if r["method"] not in BASELINES)
            rows.extend(case_rows(f"ensemble of {len(probs)}", fold, case, np.mean(probs, axis=0) > first_cfg.threshold))
    dest.save_table("metrics/cases.csv", rows)
    summary = summaries(rows, first_cfg.run.selection)
    dest.save_json("metrics/evaluation.json", summary)
    echo(format_table(summary))
    return summary


def load_model(path: str | os.PathLike) -> tuple[torch.nn.Module, TrainConfig]:
    """A trained model from a run folder (kept model of its first fold) or a checkpoint file."""
    path = Path(path)
    if not path.exists():
        raise DataError(path, "no such run folder or checkpoint file")
    if path.is_dir():
        run = RunDir.resume(path)
        cfg = load_config(TrainConfig, run.file("config.yaml"))
        path = run.file(f"fold_{cfg.run.fold_list()[0]}", "best.pt")
    system = load_system(path)
    if not isinstance(system, Segmenter):
        raise DataError(path, f"holds a {system.name} system, not a segmenter")
    return system.model.eval(), predict_config(system)
