"""The main job on embedded data: phantom -> perfusion -> CT-to-MR cGAN -> FCN vs FCN-CGAN -> report.

Generates a digital stroke phantom cohort (ISLES 2018 layout, perfusion maps computed from
the simulated 4D CTP), writes a perfusion-accuracy report against the phantom's ground truth,
checks the cohort's integrity, makes subject-level folds and runs one pass of a DataLoader
over fold 0 (throughput and an augmented sample), then runs the CT-to-MR experiment with the
``tiny`` config (:mod:`strokesynth.recipes.ctmr`): one pix2pix cGAN per fold generating DWI
for its held-out scans only, and PSPNet + focal loss cross-validated without and with the
generated DWI. Everything goes into one run folder, summed up in ``report.html``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from strokesynth.data.config import DataConfig, fold_datasets
from strokesynth.data.splits import subject_kfold
from strokesynth.errors import DataError
from strokesynth.io import open_cohort
from strokesynth.io.integrity import check_dataset, format_report
from strokesynth.phantom import PhantomConfig, cohort_summary, generate_cohort, write_phantom
from strokesynth.phantom.cohort import case_montage, read_ground_truth
from strokesynth.phantom.validation import accuracy_table, maps_vs_truth, osipi_accuracy, summarize_osipi
from strokesynth.plots import channel_montage
from strokesynth.recipes.ctmr import load_ctmr_config, run_ctmr
from strokesynth.report.ctmr import Section, summary_rows, write_ctmr_report
from strokesynth.report.html import dict_table, esc, figure, human, table
from strokesynth.report.perfusion import write_perfusion_report
from strokesynth.runs import RunDir


def run_demo(
    out: str | os.PathLike,
    *,
    subjects: int = 8,
    size: int = 128,
    seed: int = 0,
    force: bool = False,
    dro: str | os.PathLike | None = None,
    gan_epochs: int | None = None,
    seg_epochs: int | None = None,
    echo: Callable[[str], Any] = print,
) -> dict[str, Any]:
    """Run the demo into the run folder ``out``; returns the summary it also saves.

    Args:
        subjects: phantom stroke subjects (one healthy subject is added).
        size: in-plane matrix of the phantom (the field of view stays 230 mm).
        dro: OSIPI DSC DRO CSV to add to the perfusion report (optional).
        gan_epochs, seg_epochs: epochs per fold of the cGAN and the segmenters (default: the
            ``tiny`` CT-to-MR config's).
    """
    t0 = time.time()
    run = RunDir.create(out, force=force)
    log = run.logger()
    data_dir = run.file("data")
    pcfg = PhantomConfig(subjects=subjects, healthy=1, seed=seed)
    pcfg.grid.spacing_mm = pcfg.grid.spacing_mm * pcfg.grid.size / size
    pcfg.grid.size = size
    scans = generate_cohort(pcfg, progress=echo)
    write_phantom(scans, data_dir, pcfg)
    log.info("wrote %d phantom scans to %s", len(scans), data_dir)

    per_case = []
    for scan in scans:
        computed = {k: scan.case[k].array for k in ("cbf", "cbv", "mtt", "tmax")}
        truth = {k: scan.truth[k].array for k in ("cbf", "cbv", "tmax", "core", "penumbra", "anatomy")}
        per_case.append({"case": scan.case.id, "core_ml": scan.info["core_ml"], **maps_vs_truth(computed, truth),
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

    cfg = DataConfig(dataset=str(data_dir), size=(size, size), cache_dir=str(run.file("cache")))
    folds = min(5, subjects + 1)
    run.save_config(cfg)
    cohort = open_cohort(data_dir, require=cfg.modalities + [cfg.label])
    splits = subject_kfold(cohort.cases, folds, seed)
    splits.save(run.file("splits.json"))
    train, val = fold_datasets(cohort.cases, cfg, splits, fold=0, seed=seed)
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
    channel_montage(first["image"][k].numpy(), cfg.modalities, run.file("figures", "sample.png"),
                    label=first["label"][k, 0].numpy(),
                    title=f"{first['case'][k]} z={int(first['z'][k])} (augmented training sample)")
    summary = {
        "phantom": cohort_summary(scans),
        "perfusion": {k: float(np.median([r[k] for r in per_case if r.get(k) is not None]))
                      for k in ("cbf_ratio_normal", "cbv_ratio_normal", "tmax_err_normal_s",
                                "core_dice_cbf_threshold", "hypoperfusion_dice_tmax6")
                      if any(r.get(k) is not None for r in per_case)},
        "cases": len(cohort),
        "subjects": len(cohort.subjects),
        "folds": folds,
        "fold0_train_slices": len(train),
        "fold0_val_slices": len(val),
        "channels": cfg.modalities,
        "input_size": list(cfg.size),
        "train_lesion_fraction": lesion_px / max(total_px, 1),
        "loader_slices_per_s": round(rate, 1),
        "lesion_ml": {c.id: c.lesion_ml for c in report.cases},
        "seconds": round(time.time() - t0, 2),
        "run": str(Path(out)),
    }
    overrides = [f"dataset={data_dir}", f"folds={folds}", f"seed={seed}",
                 f"synthesis.data.size=[{size},{size}]", f"segmentation.data.size=[{size},{size}]"]
    if gan_epochs is not None:
        overrides.append(f"synthesis.run.epochs={gan_epochs}")
    if seg_epochs is not None:
        overrides.append(f"segmentation.run.epochs={seg_epochs}")
    ctmr = load_ctmr_config("tiny", overrides)
    echo(f"CT-to-MR cGAN out of fold, then FCN vs FCN-CGAN (PSPNet, focal loss), {folds}-fold "
         "cross-validation by subject")
    result = run_ctmr(ctmr, run.file("ctmr"), force=True, echo=echo)
    summary["synthesis_quality"] = {k: round(v["mean"], 3) for k, v in result["quality"].items()}
    summary["segmentation"] = {m: {k: round(v["mean"], 3) for k, v in s.items() if k in ("dice", "hd", "avd_ml")}
                               for m, s in result["segmentation"].items()}
    summary["empty_scans"] = {m: {k: round(v["mean"], 3) for k, v in s.items()}
                              for m, s in result["empty_scans"].items()}
    summary["protocol"] = result["protocol"]
    summary["paired_dice"] = result["paired_dice"]
    summary["paired_vs_baseline"] = result["paired_vs_baseline"]
    summary["seconds"] = round(time.time() - t0, 2)
    run.save_json("summary.json", summary)
    run.save_json("readme_numbers.json", demo_numbers(run.path))
    html = write_demo_report(run.path)
    echo(f"report: {html}")
    log.info("demo finished in %.1f s", summary["seconds"])
    return summary


def demo_numbers(run_path: str | os.PathLike) -> dict[str, Any]:
    """The numbers the README quotes, from a finished demo run (``summary.json``, ``ctmr/table.json``,
    ``ctmr/metrics/quality.json``), rounded as quoted."""
    run = RunDir(run_path)
    summary = run.load_json("summary.json")
    tab = run.load_json("ctmr/table.json")
    quality = run.load_json("ctmr/metrics/quality.json")["overall"]
    methods = list(tab["lesion"])
    base = next(m for m in methods if m.startswith("baseline"))
    fcn, cgan = (m for m in methods if m != base)
    out: dict[str, Any] = {"seconds": round(float(summary["seconds"])), "lesion_scans": tab["scans"]["lesion"],
                           "empty_scans": tab["scans"]["empty"], "protocol": tab["protocol"]}
    for key, m in (("fcn", fcn), ("fcn_cgan", cgan), ("baseline", base)):
        d = tab["lesion"][m]["dice"]
        out[f"{key}_dice"] = [round(d["mean"], 3), round(d["sd"], 3)]
        out[f"{key}_hd95"] = round(tab["lesion"][m]["hd95"]["mean"], 1) if "hd95" in tab["lesion"][m] else None
        out[f"{key}_fp_ml"] = round(tab["empty"][m]["fp_ml"]["mean"], 2) if tab["scans"]["empty"] else None
        out[f"{key}_empty_ok"] = tab["empty"][m]["empty_ok"]["mean"] if tab["scans"]["empty"] else None
    for key, p in (("fcn_vs_baseline", tab["paired_vs_baseline"][fcn]),
                   ("fcn_cgan_vs_baseline", tab["paired_vs_baseline"][cgan]), ("cgan_minus_fcn", tab["paired_dice"])):
        out[key] = {"diff": round(p["mean_diff"], 3), "better": p["better"], "cases": p["cases"],
                    "p": float(f"{p['wilcoxon_p']:.2g}")}
    out["ssim_brain"] = round(quality["ssim_brain"]["mean"], 2)
    out["contrast_generated"] = round(quality["contrast_generated"]["mean"], 2)
    out["contrast_real"] = round(quality["contrast_real"]["mean"], 2)
    return out


def demo_paragraph(n: dict[str, Any]) -> str:
    """The README's paragraph of demo results from :func:`demo_numbers` (a test keeps them equal)."""
    def dice(key: str) -> str:
        return f"{n[key][0]:.3f} ± {n[key][1]:.3f}"

    def paired(key: str, name: str) -> str:
        p = n[key]
        return f"{p['diff']:+.3f} ({name}, better on {p['better']} of {p['cases']} scans, Wilcoxon p = {p['p']:g})"

    text = (f"On the {n['lesion_scans']} held-out scans **with a lesion**, Dice was {dice('fcn_dice')} for FCN, "
            f"{dice('fcn_cgan_dice')} for FCN-CGAN and {dice('baseline_dice')} for the CBF-threshold baseline: "
            f"{paired('fcn_vs_baseline', 'FCN')} and {paired('fcn_cgan_vs_baseline', 'FCN-CGAN')} over the baseline "
            f"on the same scans. FCN-CGAN minus FCN: {n['cgan_minus_fcn']['diff']:+.3f} "
            f"(p = {n['cgan_minus_fcn']['p']:g}).")
    if n.get("fcn_hd95") is not None:
        text += (f" HD95: {n['fcn_hd95']:.1f} mm (FCN), {n['fcn_cgan_hd95']:.1f} mm (FCN-CGAN), "
                 f"{n['baseline_hd95']:.1f} mm (baseline).")
    if n["empty_scans"]:
        text += (f" On the {n['empty_scans']} lesion-free scans the false-positive volume was {n['fcn_fp_ml']:.2f} ml "
                 f"(FCN), {n['fcn_cgan_fp_ml']:.2f} ml (FCN-CGAN) and {n['baseline_fp_ml']:.2f} ml (baseline); share "
                 f"predicted empty {n['fcn_empty_ok']:.2f}, {n['fcn_cgan_empty_ok']:.2f} and {n['baseline_empty_ok']:.2f}.")
    text += (f" The tiny cGAN reproduces the anatomy (SSIM {n['ssim_brain']:.2f} in the brain); lesion-to-brain "
             f"intensity of the generated DWI {n['contrast_generated']:.2f} against {n['contrast_real']:.2f} for the "
             f"simulated DWI ({100 * n['contrast_generated'] / n['contrast_real']:.0f} %). The demo took "
             f"{n['seconds'] // 60} min {n['seconds'] % 60} s.")
    return text


def invalid_columns(info: dict[str, Any]) -> dict[str, float]:
    """``<map>_invalid_pct`` of a phantom scan's info: % of brain voxels whose computed value was
    physically impossible and set to 0 (see :func:`strokesynth.perfusion.maps.physical_limits`)."""
    return {f"{k}_invalid_pct": v["percent"] for k, v in info.get("perfusion", {}).get("invalid", {}).items()}


def write_demo_report(run_path: str | os.PathLike) -> Path:
    """(Re)write ``RUN/report.html`` of a demo run from what the run folder holds."""
    run = RunDir(run_path)
    if not run.file("summary.json").is_file() or not run.file("ctmr", "config.yaml").is_file():
        raise DataError(run.path, "not a finished demo run (needs summary.json and ctmr/)")
    summary = run.load_json("summary.json")
    accuracy = run.load_json("perfusion_accuracy.json")
    phantom = run.load_json("data/groundtruth/phantom.json")
    invalid = {c["case"]: invalid_columns(c) for c in phantom["cases"]}
    for row in accuracy["per_case"]:  # runs made before the column existed get it from phantom.json
        row.update(invalid.get(row["case"], {}))
    first_case = sorted(summary.get("lesion_ml") or {"case_1": 0})[0]
    return write_ctmr_report(run.file("ctmr"), run.file("report.html"), title="strokesynth demo: digital stroke "
                             "phantom → perfusion → CT-to-MR cGAN → FCN vs FCN-CGAN",
                             before=_demo_sections(run, summary, accuracy["per_case"], accuracy["curves"], first_case),
                             intro=_intro(summary))


def _intro(summary: dict[str, Any]) -> str:
    seg = summary["segmentation"]
    cells = "; ".join(f"{esc(m)}: Dice {v['dice']:.3f}" for m, v in seg.items())
    q = summary["synthesis_quality"]
    return (f"<p>Everything below was computed by <code>strokesynth demo</code> in {summary['seconds']:.0f} s on "
            f"this machine, from a digital stroke phantom of {summary['subjects']} subjects "
            f"({summary['cases']} scans) at {summary['input_size'][0]} px. Mean Dice over the held-out scans "
            f"<b>with a lesion</b>: {cells}. Checkpoints were chosen on an inner split of each fold's training "
            f"subjects (protocol <code>{esc(summary['protocol'])}</code>); the held-out scans chose nothing. "
            f"Lesion-to-brain intensity of the generated DWI: {q['contrast_generated']:.2f} against "
            f"{q['contrast_real']:.2f} for the simulated DWI. The networks are the tiny CPU variants.</p>")


def _demo_sections(run: RunDir, summary: dict[str, Any], per_case: list[dict[str, Any]],
                   curves: list[dict[str, Any]], first_case: str) -> list[Section]:
    """The phantom and perfusion sections that come before the CT-to-MR ones."""
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
