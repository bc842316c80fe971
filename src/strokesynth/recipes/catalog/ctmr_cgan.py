"""Rubin & Abulnaga: out-of-fold CT-to-MR cGAN, then FCN vs FCN-CGAN (PSPNet + focal loss)."""

from __future__ import annotations

from strokesynth.recipes.recipe import DemoCohort, DemoPart, Recipe
from strokesynth.recipes.registry import RECIPES


def demo_cohort(c: DemoCohort) -> list[str]:
    """The demo's phantom, folds, seed and matrix for the cGAN and both segmenters."""
    size = f"[{c.size},{c.size}]"
    out = [f"dataset={c.data}", f"folds={c.folds}", f"seed={c.seed}", f"synthesis.data.size={size}",
           f"segmentation.data.size={size}"]
    return out + (["synthesis.data.mode=resample", "segmentation.data.mode=resample"] if c.pixel_mm else [])


RECIPE = RECIPES.add(Recipe(
    name="ctmr-cgan",
    summary="Rubin & Abulnaga: out-of-fold CT-to-MR cGAN, FCN vs FCN-CGAN",
    help="""Rubin & Abulnaga: out-of-fold CT-to-MR cGAN, then FCN vs FCN-CGAN (PSPNet + focal loss).

    Trains one pix2pix cGAN per subject-level fold; cGAN k generates DWI only for fold k's
    scans (OUT/dwi_gen/<case>/dwi_gen.nii.gz, the case's affine). Scores the generated DWI
    (SSIM, PSNR, MAE in the brain and around the lesion), cross-validates the segmenter with and
    without it on the same folds, and writes OUT/table.txt and OUT/report.html.
    """,
    load_config="strokesynth.recipes.ctmr:load_ctmr_config",
    run="strokesynth.recipes.ctmr:run_ctmr",
    fidelity="strokesynth.recipes.fidelity.ctmr",
    report="strokesynth.report.ctmr:write_ctmr_report",
    sections="strokesynth.report.ctmr:ctmr_sections",
    describe="strokesynth.apps.describe:describe_ctmr",
    overview="strokesynth.report.overview:ctmr_rows",
    markers=("table.json", "metrics/quality.json"),
    data_help="Data set folder (needs CT, CBF, CBV, MTT, Tmax, DWI and the lesion) [config: dataset].",
    device_fields=("synthesis.run.device", "segmentation.run.device"),
    demo=DemoPart(key="ctmr", order=2, heading="2. CT-to-MR cGAN, FCN-CGAN (Rubin & Abulnaga)", folder="ctmr",
                  budget=("synthesis.run.epochs=6", "segmentation.run.epochs=14"), cohort=demo_cohort,
                  short="1-2. FCN and FCN-CGAN"),
))
