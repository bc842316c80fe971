"""Apply a trained pseudo-healthy model to new cases: a pseudo-healthy image and a pathology map.

For each case ``OUT/<case>/`` receives, on the case's grid and affine:

- ``pseudo_healthy.nii.gz``: the pseudo-healthy image in the input's intensity units (the model
  works on the volume scaled by its 99.5th percentile; the result is scaled back);
- ``pathology_map.nii.gz``: S's lesion probability for the factorisation model, else the
  anomaly map ``|x - pseudo-healthy|`` in the model's [0, 1] units;
- ``overlay.png`` (the slice with the most pathology) and ``OUT/cases.json``.

Every slice is processed (not only the training's middle slices), resampled in-plane to the
pixel size the model was trained at and back.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from strokesynth._fs import atomic_dir, write_json_atomic
from strokesynth.data.pathology_slices import prepare_volume
from strokesynth.data.volume import Volume
from strokesynth.errors import DataError
from strokesynth.io.nifti import write_volume
from strokesynth.plots import panel_row
from strokesynth.systems.pseudo_healthy import PathologyFactorisation, batched

PH_SYSTEMS = ("ph_factorisation", "ph_cgan", "ph_cyclegan")


def pseudo_healthy_checkpoint(path: str | os.PathLike) -> Path | None:
    """The checkpoint of a pseudo-healthy model at ``path`` (a ``best.pt`` or its folder), else ``None``."""
    from strokesynth.engine.checkpoint import load_checkpoint

    p = Path(path)
    if p.is_dir():
        p = p / "best.pt"
    if not p.is_file():
        return None
    try:
        ck = load_checkpoint(p)
    except DataError:
        return None
    return p if ck.get("system") in PH_SYSTEMS else None


def predict_pseudo_healthy(checkpoint: str | os.PathLike, source: str | os.PathLike, out: str | os.PathLike, *,
                           force: bool = False, echo: Callable[[str], Any] = print) -> list[dict[str, Any]]:
    """Write the pseudo-healthy image and pathology map of every case of ``source`` (see the module docstring)."""
    from strokesynth.apps.predict import open_cases
    from strokesynth.engine.checkpoint import load_system

    model = load_system(checkpoint).eval_mode()
    cfg = model.config
    cases = open_cases(Path(source), [cfg.data.modality])
    prepared = [prepare_volume(c, cfg.data, need_mask=False, all_slices=True) for c in cases]  # checks first
    device = cfg.run.device
    results = []
    with atomic_dir(out, force=force) as tmp:
        for case, vol in zip(cases, prepared, strict=True):
            x = vol.images[:, None]
            ph = batched(model.pseudo_healthy, x, device=device)[:, 0]
            if isinstance(model, PathologyFactorisation):
                pmap, kind = batched(model.pathology, x, device=device)[:, 0], "S lesion probability"
            else:
                pmap, kind = np.abs(vol.images - ph), "anomaly |x - pseudo-healthy| (model units)"
            ph_case = vol.to_case_grid(ph) * vol.scale
            map_case = vol.to_case_grid(pmap)
            write_volume(Volume(ph_case.astype(np.float32), vol.affine), tmp / case.id / "pseudo_healthy.nii.gz")
            write_volume(Volume(map_case.astype(np.float32), vol.affine), tmp / case.id / "pathology_map.nii.gz")
            k = int(np.argmax(pmap.reshape(len(pmap), -1).sum(1)))
            panel_row([("input", vol.images[k], (0, 1), "gray", "normalised"),
                       ("pseudo-healthy", ph[k], (0, 1), "gray", "normalised"),
                       ("pathology map", pmap[k], (0, 1), "magma", kind.split(" (")[0])],
                      tmp / case.id / "overlay.png", label=None if vol.masks is None else vol.masks[k],
                      title=f"{case.id} z={int(vol.z[k])} ({cfg.data.modality}, {model.name})")
            results.append({"case": case.id, "modality": cfg.data.modality, "model": model.name,
                            "pathology_map": kind, "slices": int(len(vol.z))})
            echo(f"{case.id}: pseudo-healthy {cfg.data.modality} and pathology map ({kind})")
        write_json_atomic(tmp / "cases.json", results)
    return results
