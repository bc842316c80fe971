"""Wang, Song et al. (ISLES 2018 winner): pseudo-DWI from perfusion maps and CTA features, SLNet."""

from __future__ import annotations

from strokesynth.errors import ConfigError
from strokesynth.recipes.recipe import DemoCohort, DemoPart, Recipe, RecipeOption
from strokesynth.recipes.registry import RECIPES


def tables_override(text: str) -> list[str]:
    """``--tables 1,5`` -> ``tables=[1,5]``."""
    try:
        return [f"tables=[{','.join(str(int(t)) for t in text.split(','))}]"]
    except ValueError:
        raise ConfigError("--tables", f"give table numbers separated by commas, e.g. 1,5 (got {text!r})") from None


def demo_cohort(c: DemoCohort) -> list[str]:
    out = [f"dataset={c.data}", f"folds={c.folds}", f"seed={c.seed}", f"system.data.size=[{c.size},{c.size}]"]
    return out + (["system.data.mode=resample"] if c.pixel_mm else [])


RECIPE = RECIPES.add(Recipe(
    name="pseudo-dwi",
    summary="Wang, Song et al.: pseudo-DWI from perfusion maps and CTA features, SLNet",
    help="""Wang, Song et al. (ISLES 2018 winner): pseudo-DWI from perfusion maps and CTA features, SLNet.

    Cross-validates every row of the paper's five tables (synthesis losses, generator inputs,
    segmentation networks, segmentation losses, segmentation inputs) on the same subject-level
    folds and writes OUT/table1.txt ... table5.txt, tables.json and OUT/report.html. The synthesis
    needs paired DWI (the public ISLES 2018 release has none): the phantom or your own data.
    """,
    load_config="strokesynth.recipes.pseudo_dwi:load_recipe_config",
    run="strokesynth.recipes.pseudo_dwi:run_pseudo_dwi",
    fidelity="strokesynth.recipes.fidelity.pseudo_dwi",
    report="strokesynth.report.pseudo_dwi:write_pseudo_dwi_report",
    sections="strokesynth.report.pseudo_dwi:pseudo_dwi_sections",
    describe="strokesynth.apps.describe:describe_pseudo_dwi",
    overview="strokesynth.report.overview:pseudo_dwi_rows",
    markers=("tables.json",),
    data_help="Data set folder (needs CBF, CBV, MTT, Tmax, the raw 4D CTP, DWI and the lesion) [config: dataset].",
    device_fields=("system.run.device",),
    options=(RecipeOption("--tables", "Tables to run, e.g. 1,5 [config: all five].", tables_override,
                          metavar="1,2,..."),),
    demo=DemoPart(key="pseudo-dwi", order=3, heading="3. Pseudo-DWI from perfusion maps and CTA, SLNet (Wang, Song et al.)",
                  folder="pseudo_dwi",
                  budget=("tables=[5]", "rows=['DWI^(o,l,h) end to end']", "system.run.epochs=10",
                          "system.optim.milestones=[8]"),
                  cohort=demo_cohort, short="3. Pseudo-DWI + SLNet"),
))
