"""Platscher, Zopes & Federau: label map -> DWI synthesis and a 3D lesion GAN as training data."""

from __future__ import annotations

from strokesynth.recipes.recipe import DemoCohort, DemoPart, Recipe, RecipeOption
from strokesynth.recipes.registry import RECIPES

#: the demo's grid on a user's data set: the tiny config's 64 x 64 (the data set's median field of
#: view) x 16 slices of 10 mm, the MR phantom's own grid (160 mm: ISLES'24's 70-100 slices of 2 mm)
DEMO_SIZE, DEMO_SLICES, DEMO_SLICE_MM = 64, 16, 10.0


def demo_cohort(c: DemoCohort) -> list[str]:
    """The label-map recipe makes its own whole-brain MR phantom: only the seed is shared; a
    user's data set (``demo --data``, whose cases hold label maps) replaces that phantom, put on
    the working grid :data:`DEMO_SIZE` x :data:`DEMO_SIZE` x :data:`DEMO_SLICES`."""
    own = [f"dataset={c.data}", f"grid.spacing_mm={c.pixel_mm * c.size / DEMO_SIZE:.4g}",
           f"grid.slice_mm={DEMO_SLICE_MM:g}", f"grid.slices={DEMO_SLICES}"] if c.pixel_mm else []
    return [f"seed={c.seed}", f"phantom.seed={c.seed}", *own]


RECIPE = RECIPES.add(Recipe(
    name="labelmap-augmentation",
    summary="Platscher, Zopes & Federau: label map -> DWI synthesis (Pix2Pix, SPADE, CycleGAN), 3D lesion GAN, "
            "3D U-Net",
    help="""Platscher, Zopes & Federau: label map -> DWI synthesis and a 3D lesion GAN as training data.

    Trains the lesion GAN and the translation models (Pix2Pix, SPADE, CycleGAN), builds a synthetic
    database per model, trains the 3D U-Net on clinical / clinical + synthetic / synthetic /
    fine-tuned / fractional data and scores it on held-out stroke and healthy subjects: OUT/labelmap_table.txt
    (Tables I and II analogs with paired tests), figures and OUT/report.html. Needs DWIs with label
    maps (the public ISLES 2018 release has no DWI).
    """,
    load_config="strokesynth.recipes.labelmap_augmentation:load_recipe_config",
    run="strokesynth.recipes.labelmap_augmentation:run_labelmap_augmentation",
    fidelity="strokesynth.recipes.fidelity.labelmap",
    report="strokesynth.report.labelmap:write_labelmap_report",
    sections="strokesynth.report.labelmap:labelmap_sections",
    describe="strokesynth.apps.describe:describe_labelmap",
    overview="strokesynth.report.overview:labelmap_rows",
    markers=("labelmap_table.json",),
    data_help="Data set folder with dwi, anatomy and lesion per case; lesion-free cases form the normal cohort "
              "[config: the embedded phantom's MR studies].",
    data_required=False,
    data_absolute=True,
    device_fields=("translation.run.device", "lesion_gan.run.device", "segmenter.run.device"),
    options=(RecipeOption("--table", "Label table of the anatomy maps: phantom, phantom_ct, freesurfer_to_phantom, "
                                     "freesurfer_aseg or a YAML file [config: auto: the LabelTable of the maps' JSON "
                                     "sidecars, else phantom].",
                          lambda v: [f"table={v}"]),),
    demo=DemoPart(key="labelmap", order=4,
                  heading="4. Label map -> DWI and a 3D lesion GAN for augmentation (Platscher, Zopes & Federau)",
                  folder="labelmap",
                  budget=("phantom.stroke=16", "phantom.healthy=10", "phantom.slices=16", "pix2pix_l1=[100.0]",
                          "models=[pix2pix]", "n_synthetic=12", "finetune_cases=[]", "fractions=[]", "seeds=[0]",
                          "translation.run.epochs=4", "segmenter.run.epochs=8"),
                  cohort=demo_cohort, short="4. Label-map augmentation"),
))
