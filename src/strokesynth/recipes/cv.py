"""Cross-validation of a segmenter: train every fold on the fold loop, score each on its held-out subjects.

Scores are reported for scans with a lesion and lesion-free scans apart: overlap and distance
metrics on the former (Dice, HD, ASSD, precision, recall, volume error, lesion F1), the
false-positive volume and the share of correctly empty predictions on the latter. The
CBF-threshold baseline is scored on the same scans. Which data chose each fold's checkpoint
is the run's selection protocol (:mod:`strokesynth.engine.protocol`), saved with the results.
"""

from __future__ import annotations

import copy
import csv
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import stats

from strokesynth.config import load_config, to_dict
from strokesynth.data.arrays import check_labels
from strokesynth.data.case import Case
from strokesynth.data.config import make_dataset
from strokesynth.data.splits import Splits, load_splits, subject_kfold
from strokesynth.data.volume import Volume
from strokesynth.engine.checkpoint import load_system
from strokesynth.engine.loop import fit
from strokesynth.engine.protocol import PROTOCOLS, fold_sets
from strokesynth.engine.sampling import epoch_steps
from strokesynth.engine.system import Dist
from strokesynth.errors import ConfigError, DataError
from strokesynth.io import open_cohort
from strokesynth.io.nifti import write_volume
from strokesynth.metrics import METRICS, evaluate_case, summarize, summarize_by_size
from strokesynth.metrics.baselines import BASELINE, PERFUSION_KEYS, baseline_core
from strokesynth.runs import RunDir
from strokesynth.systems.segmenter import Segmenter, TrainConfig, predict_case

TABLE_METRICS = ("dice", "hd", "hd95", "assd", "precision", "recall", "avd_ml", "lesion_f1", "lesion_f1_isles24")
LESION_METRICS = ("dice", "hd", "hd95", "assd", "precision", "recall", "avd_ml", "rve", "lesion_f1",
                  "lesion_f1_isles24")
#: What the two lesion-wise F1 columns of every table mean.
F1_LEGEND = ("lesion_f1: ISLES'22's (a reference lesion is found by any overlap); lesion_f1_isles24: ISLES'24's "
             "(components matched one to one at IoU >= 0.2)")
EMPTY_METRICS = ("fp_ml", "empty_ok")

__all__ = ["BASELINE", "evaluate_ensemble", "evaluate_run", "format_table", "load_model", "run_training"]


def _quiet(_: str) -> None:
    return None


def _open(cfg: TrainConfig) -> list[Case]:
    cases = open_cohort(cfg.data.dataset, layout=cfg.data.layout, require=cfg.data.modalities + [cfg.data.label],
                        derived=cfg.data.derived).cases
    check_labels(cases, cfg.data.label)
    return cases


def _kind(cfg: TrainConfig) -> str:
    return "volumes" if cfg.model.volumetric else "slices"


def open_run(out: str | os.PathLike, cfg: Any, cases: list[Case], *, force: bool = False, resume: bool = False
             ) -> tuple[RunDir, Splits]:
    """The run folder of a multi-model experiment and its subject-level splits (``cfg.folds``,
    ``cfg.seed``): created with ``cfg`` saved, or reopened with its saved splits on ``resume``.
    Call it only after every input is checked, so bad input leaves no folder behind."""
    splits = subject_kfold(cases, cfg.folds, cfg.seed)
    if resume:
        run = RunDir.reopen(out)
        if run.file("splits.json").exists():
            splits = load_splits(run.file("splits.json"), cases)
    else:
        run = RunDir.create(out, force=force)
        run.save_config(cfg)
    splits.save(run.file("splits.json"))
    return run, splits


def absolute_data_paths(cfg: TrainConfig) -> TrainConfig:
    """``cfg`` with its data set, derived and cache folders absolute, so the saved config finds
    them from any working directory (``train --resume --out RUN`` alone)."""
    cfg = copy.deepcopy(cfg)
    d = cfg.data
    d.dataset = str(Path(d.dataset).resolve()) if d.dataset else d.dataset
    d.derived = [str(Path(p).resolve()) for p in d.derived]
    d.cache_dir = str(Path(d.cache_dir).resolve()) if d.cache_dir else d.cache_dir
    return cfg


def train_fold(cfg: TrainConfig, cases: list[Case], splits: Splits, fold: int, folder: Path,
               log: logging.Logger | None = None, dist: Dist | None = None) -> dict[str, Any]:
    """Train fold ``fold`` of ``cfg`` into ``folder`` on the fold loop; returns the loop's result
    (without the system), the optimiser ``steps`` taken (per process) and the case counts of each set."""
    sets = fold_sets(cases, splits, fold, cfg.run)
    by_id = {c.id: c for c in cases}
    train_ds = make_dataset([by_id[c] for c in sets.train], cfg.data, seed=cfg.run.seed, train=True, kind=_kind(cfg))
    val_ds = (make_dataset([by_id[c] for c in sets.select], cfg.data, seed=cfg.run.seed, kind=_kind(cfg))
              if sets.select else None)
    res = fit(lambda: Segmenter(cfg, train_dataset=train_ds), train_ds, val_ds, folder, cfg.run,
              seed=cfg.run.seed + 1000 * fold, log=log, dist=dist, desc=f"fold {fold}")
    res.pop("system")
    per_epoch = epoch_steps(len(train_ds), cfg.run.batch_size, cfg.run.steps_per_epoch, dist.world if dist else 1)
    return {**res, "steps": per_epoch * res["epochs"], "train_cases": len(sets.train),
            "select_cases": len(sets.select), "test_cases": len(sets.test)}


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
    if not resume and cfg.data.pixel_mm <= 0:  # recorded for predict (resampling new cases to it)
        cfg.data.pixel_mm = round(float(np.median([np.mean(c.spacing[:2]) for c in cases])), 4)
    if not resume:
        if dist.main:
            run = RunDir.create(out, force=force)
            run.save_config(cfg)
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
    splits_path = run.file("splits.json")
    if splits_path.exists():
        splits = load_splits(splits_path, cases)
    else:
        splits = splits if splits is not None else subject_kfold(cases, cfg.run.folds, cfg.run.seed)
        if dist.main:
            splits.save(splits_path)
    echo(f"selection protocol: {cfg.run.selection} - {PROTOCOLS[cfg.run.selection]}")
    fold_results = []
    for fold in cfg.run.fold_list():
        folder = run.file(f"fold_{fold}")
        folder.mkdir(exist_ok=True)
        res = train_fold(cfg, cases, splits, fold, folder, log, dist)
        fold_results.append({"fold": fold, **res})
        best = "" if res["best"] is None else f", selection Dice {res['best']:.3f}"
        echo(f"fold {fold}: {res['train_cases']} training, {res['select_cases']} selection, {res['test_cases']} "
             f"held-out case(s); kept epoch {res['best_epoch']}{best} ({res['epochs']} epoch(s)"
             f"{', stopped early' if res['stopped_early'] else ''})")
    dist.close()
    if not dist.main:
        return {}
    run.save_table("metrics/folds.csv", fold_results)
    summary = evaluate_run(run.path, cfg=cfg, cases=cases, splits=splits, echo=echo)
    summary["folds"] = fold_results
    run.save_json("metrics/summary.json", summary)
    return summary


def evaluate_run(out: str | os.PathLike, *, cfg: TrainConfig | None = None, cases: list[Case] | None = None,
                 splits: Splits | None = None, echo: Callable[[str], Any] = print) -> dict[str, Any]:
    """Score each fold's kept model (``best.pt``) on its held-out cases, next to the CBF-threshold baseline.

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
    run.save_json("metrics/evaluation.json", summary)
    echo(format_table(summary))
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


def case_rows(method: str, fold: int, case: Case, mask: np.ndarray) -> list[dict[str, Any]]:
    """Metrics of ``mask`` on ``case``, and of the CBF-threshold baseline when the case has CBF."""
    ref = case.label.array > 0
    preds = [(method, mask)]
    if "cbf" in case:
        preds.append((BASELINE, baseline_core({k: case[k].array for k in PERFUSION_KEYS if k in case})))
    rows = []
    for name, pred in preds:
        m = evaluate_case(pred, ref, case.spacing)
        lesion = bool(ref.any())
        extra = {} if lesion else {"fp_ml": m["pred_ml"], "empty_ok": float(not pred.any())}
        rows.append({"method": name, "fold": fold, "case": case.id, "lesion": lesion, **m, **extra})
    return rows


#: The selection line of tables of predictions made elsewhere (``strokesynth evaluate --predictions``).
EXTERNAL = "external"
EXTERNAL_TEXT = "predictions made outside this run; how their models were chosen is not known here"


def summaries(rows: list[dict[str, Any]], protocol: str = "inner") -> dict[str, Any]:
    """Per method: ``lesion`` (scans with a lesion: overlap/distance metrics), ``empty`` (lesion-free
    scans: false-positive ml, share predicted empty), ``overall`` (all scans), ``by_fold`` and
    ``by_size`` (lesion scans per size group), plus the selection ``protocol``."""
    methods = list(dict.fromkeys(r["method"] for r in rows))
    les = [r for r in rows if r["lesion"]]
    emp = [r for r in rows if not r["lesion"]]
    return {
        "protocol": protocol,
        "protocol_text": EXTERNAL_TEXT if protocol == EXTERNAL else PROTOCOLS[protocol],
        "lesion": {m: summarize([r for r in les if r["method"] == m], LESION_METRICS) for m in methods},
        "empty": {m: summarize([r for r in emp if r["method"] == m], EMPTY_METRICS) for m in methods},
        "overall": {m: summarize([r for r in rows if r["method"] == m], METRICS) for m in methods},
        "by_fold": {m: {f: summarize([r for r in les if r["method"] == m and r["fold"] == f], LESION_METRICS)
                        for f in sorted({r["fold"] for r in rows})} for m in methods},
        "by_size": {m: summarize_by_size([r for r in les if r["method"] == m], LESION_METRICS) for m in methods},
        "scans": {"lesion": len({r["case"] for r in les}), "empty": len({r["case"] for r in emp})},
    }


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
                                if r["method"] != BASELINE)
            rows.extend(case_rows(f"ensemble of {len(probs)}", fold, case, np.mean(probs, axis=0) > first_cfg.threshold))
    dest.save_table("metrics/cases.csv", rows)
    summary = summaries(rows, first_cfg.run.selection)
    dest.save_json("metrics/evaluation.json", summary)
    echo(format_table(summary))
    return summary


def paired_dice(csv_a: Path, method_a: str, csv_b: Path, method_b: str) -> dict[str, Any]:
    """Per-scan Dice of ``method_b`` minus ``method_a`` on the lesion scans both scored (same
    folds), with a Wilcoxon signed-rank test; from two ``metrics/cases.csv`` files."""
    return paired_metric(csv_a, method_a, csv_b, method_b, "dice")


def paired_metric(csv_a: Path, method_a: str, csv_b: Path, method_b: str, metric: str) -> dict[str, Any]:
    """:func:`paired_dice` for any numeric column ``metric`` of two per-case tables (lesion scans;
    cases where either value is undefined are left out)."""
    def read(path: Path, method: str) -> dict[str, float]:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = {r["case"]: float(r[metric]) if r.get(metric, "") not in ("", "nan") else float("nan")
                    for r in csv.DictReader(fh) if r["method"] == method and r.get("lesion", "True") == "True"}
        return {c: v for c, v in rows.items() if not np.isnan(v)}

    return paired_values(read(csv_a, method_a), read(csv_b, method_b), method_a, method_b, metric)


def paired_values(a: dict[str, float], b: dict[str, float], method_a: str, method_b: str,
                  metric: str) -> dict[str, Any]:
    """``b`` minus ``a`` (case -> value, undefined values already left out) on the cases both have,
    with a Wilcoxon signed-rank test on the non-zero differences."""
    common = sorted(set(a) & set(b))
    diff = np.array([b[c] - a[c] for c in common])
    nonzero = diff[diff != 0]
    p = float(stats.wilcoxon(nonzero).pvalue) if nonzero.size >= 2 else float("nan")
    return {"a": method_a, "b": method_b, "metric": metric, "cases": len(common),
            "mean_diff": float(diff.mean()) if diff.size else float("nan"),
            "better": int((diff > 0).sum()), "worse": int((diff < 0).sum()), "equal": int((diff == 0).sum()),
            "wilcoxon_p": p}


def describe_paired(p: dict[str, Any]) -> str:
    """One sentence for a paired comparison (Dice unless the result names another metric)."""
    name = {"dice": "Dice"}.get(p.get("metric", "dice"), p.get("metric", "dice"))
    return (f"{p['b']} - {p['a']}, {name} per held-out lesion scan: mean {p['mean_diff']:+.3f} over {p['cases']} "
            f"scan(s); better on {p['better']}, worse on {p['worse']}, equal on {p['equal']}; "
            f"Wilcoxon signed-rank p = {p['wilcoxon_p']:.3g}")


def _cell(v: dict[str, float], digits: int = 3) -> str:
    if np.isnan(v["mean"]):
        cell = "-"
    elif not np.isnan(v["sd"]):
        cell = f"{v['mean']:.{digits}f}±{v['sd']:.{digits}f}"
    else:
        cell = f"{v['mean']:.{digits}f}"
    return cell + (f" [{v['undefined']}]" if v["undefined"] else "")


def format_table(summary: dict[str, Any], metrics=TABLE_METRICS) -> str:
    """Text tables of a :func:`summaries` result: lesion scans (``mean ± sd`` per metric, undefined
    counts in brackets), then lesion-free scans, then the selection protocol."""
    lesion, empty = summary["lesion"], summary["empty"]
    metrics = [m for m in metrics if all(m in s for s in lesion.values())]  # runs saved before a metric existed
    n = summary.get("scans", {})
    lines = [f"scans with a lesion ({n.get('lesion', '?')}):",
             "  ".join(["method".ljust(32)] + [m.rjust(16) for m in metrics])]
    for method, s in lesion.items():
        lines.append("  ".join([method[:32].ljust(32)] + [_cell(s[m]).rjust(16) for m in metrics]))
    if n.get("empty"):
        lines.append(f"lesion-free scans ({n['empty']}):")
        lines.append("  ".join(["method".ljust(32), "false-positive ml".rjust(18), "predicted empty".rjust(16)]))
        for method, s in empty.items():
            lines.append("  ".join([method[:32].ljust(32), _cell(s["fp_ml"], 2).rjust(18),
                                    _cell(s["empty_ok"], 2).rjust(16)]))
    if any(m.startswith("lesion_f1") for m in metrics):
        lines.append(F1_LEGEND)
    lines.append(f"selection: {summary['protocol']} - {summary.get('protocol_text') or PROTOCOLS[summary['protocol']]}")
    return "\n".join(lines)


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
    return system.model.eval(), system.config
