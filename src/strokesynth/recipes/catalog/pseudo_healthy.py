"""Xia, Chartsias & Tsaftaris: pseudo-healthy synthesis by pathology factorisation."""

from __future__ import annotations

from pathlib import Path

from strokesynth.errors import ConfigError
from strokesynth.recipes.recipe import DemoCohort, DemoPart, Recipe, RecipeOption
from strokesynth.recipes.registry import RECIPES


def contrasts_override(text: str) -> list[str]:
    """``--contrasts flair,dwi`` -> ``contrasts=[flair,dwi]``."""
    return [f"contrasts=[{','.join(c.strip() for c in text.split(',') if c.strip())}]"]


def real_case_override(path: str) -> list[str]:
    """``--real-case DIR`` -> ``real_case=<absolute DIR>`` (a folder)."""
    if not Path(path).is_dir():
        raise ConfigError("--real-case", f"{path} is not a folder")
    return [f"real_case={Path(path).resolve()}"]


def demo_cohort(c: DemoCohort) -> list[str]:
    out = [f"dataset={c.data}", f"folds={c.folds}", f"seed={c.seed}", f"system.data.size={c.size}",
           f"segmentor.data.size={c.size}", "real_case="]
    return out + ([f"system.data.spacing_mm={c.pixel_mm}", f"segmentor.data.spacing_mm={c.pixel_mm}"]
                  if c.pixel_mm else [])


RECIPE = RECIPES.add(Recipe(
    name="pseudo-healthy",
    summary="Xia, Chartsias & Tsaftaris: pseudo-healthy synthesis by pathology factorisation",
    help="""Xia, Chartsias & Tsaftaris: pseudo-healthy synthesis by pathology factorisation.

    Trains the conditional GAN and CycleGAN baselines and the proposed model (unpaired and
    paired) on the same subject-level folds, with f_pre judging healthiness, and writes
    OUT/ph_table.txt (identity, healthiness, S and anomaly-detector Dice, lesion-free slices
    apart), the figures and OUT/report.html. Default data: the embedded phantom (FLAIR, DWI).
    """,
    load_config="strokesynth.recipes.pseudo_healthy:load_recipe_config",
    run="strokesynth.recipes.pseudo_healthy:run_pseudo_healthy",
    fidelity="strokesynth.recipes.fidelity.pseudo_healthy",
    report="strokesynth.report.pseudo_healthy:write_pseudo_healthy_report",
    sections="strokesynth.report.pseudo_healthy:pseudo_healthy_sections",
    describe="strokesynth.apps.describe:describe_pseudo_healthy",
    overview="strokesynth.report.overview:pseudo_healthy_rows",
    markers=("ph_table.json",),
    data_help="Data set folder with an MR contrast and lesion masks on one grid [config: the embedded phantom].",
    data_required=False,
    device_fields=("system.run.device", "segmentor.run.device"),
    inputs=("dataset", "real_case"),
    options=(RecipeOption("--contrasts", "MR contrasts, e.g. flair,dwi [config].", contrasts_override,
                          metavar="flair,dwi"),
             RecipeOption("--real-case", "A real data set to apply the models to as a labelled example [config: "
                                         "../shared/data/isles22 when present].", real_case_override, kind="path")),
    demo=DemoPart(key="pseudo-healthy", order=5,
                  heading="5. Pseudo-healthy synthesis by pathology factorisation (Xia, Chartsias & Tsaftaris)",
                  folder="pseudo_healthy",
                  budget=("contrasts=[dwi]", "rows=['proposed paired']", "folds_to_run=[0]", "system.run.epochs=15",
                          "segmentor.run.epochs=15"),
                  cohort=demo_cohort, short="5. Pseudo-healthy"),
))
