"""Abulnaga & Rubin: segmentation architectures x {cross entropy, weighted CE, focal loss}, one CV table."""

from __future__ import annotations

from strokesynth.recipes.recipe import Recipe, RecipeOption
from strokesynth.recipes.registry import RECIPES


def _segmenters() -> list[str]:
    from strokesynth.nets.registry import NETWORKS

    return NETWORKS.names(role="segmenter")


RECIPE = RECIPES.add(Recipe(
    name="seg-comparison",
    summary="Abulnaga & Rubin: segmentation architectures x {CE, weighted CE, focal}, one CV table",
    help="""Abulnaga & Rubin: PSPNet, U-Net 2D, 3D U-Net, V-Net x {CE, weighted CE, focal}, one CV table.

    Every cell is the shipped configs/seg/<arch>_focal[_tiny].yaml with the loss swapped, cross-validated
    on the same subject-level folds; OUT/table.txt and table.json hold the table beside the
    CBF-threshold baseline. --set KEY=VALUE sets a field of the comparison (architectures, losses,
    floor, tiny) or, for any other key (run.epochs=2), every cell's training config.
    """,
    load_config="strokesynth.recipes.segmentation:load_comparison_config",
    run="strokesynth.recipes.segmentation:run_comparison",
    fidelity="strokesynth.recipes.fidelity.segmentation",
    markers=("table.json", "comparison.yaml"),
    data_help="Data set folder (CT, CBF, CBV, MTT, Tmax and the lesion).",
    device_fields=("run.device",),
    resumable=False,
    options=(
        RecipeOption("--paper", "Paper-size networks and schedules (the paper config) instead of the tiny CPU "
                                "variants.", lambda on: ["tiny=false"], kind="flag"),
        RecipeOption("--arch", "Architectures (repeatable), any segmentation network [the paper's: pspnet, unet2d, "
                               "unet3d, vnet].",
                     lambda names: [f"architectures=[{','.join(names)}]"], kind="choice", multiple=True,
                     choices=_segmenters),
        RecipeOption("--loss", "Losses (repeatable) [ce, weighted_ce and focal].", lambda names: [f"losses=[{','.join(names)}]"],
                     kind="choice", multiple=True, choices="strokesynth.recipes.catalog.seg_comparison:_losses"),
        RecipeOption("--floor", "Add the plain-U-Net floor (MONAI BasicUNet 16-256, CE + Dice, half lesion slices, "
                                "same steps) and compare every cell with it scan by scan.", lambda on: ["floor=true"],
                     kind="flag"),
    ),
))


def _losses() -> list[str]:
    from strokesynth.losses import LOSSES

    return LOSSES.names()
