"""Apply trained segmenters to new cases: mask, probability, core volume and overlay per case."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from strokesynth._fs import atomic_dir, write_json_atomic
from strokesynth.data.config import make_dataset
from strokesynth.data.volume import Volume
from strokesynth.errors import ConfigError, DataError
from strokesynth.io import open_cohort
from strokesynth.io.nifti import write_volume
from strokesynth.plots import panel_row
from strokesynth.systems.segmenter import TrainConfig, predict_case


def predict_cases(models: list[tuple[torch.nn.Module, TrainConfig]], source: str | os.PathLike,
                  out: str | os.PathLike, *, force: bool = False, threshold: float | None = None,
                  echo: Callable[[str], Any] = print) -> list[dict[str, Any]]:
    """Average the lesion probabilities of ``models`` on every case of ``source``; write the results.

    ``source`` is a data set folder (any layout) or a single case folder of one. All models
    must take the same input modalities. For each case ``out/<case>/`` receives ``mask.nii.gz``
    and ``prob.nii.gz`` (with the input's affine) and ``overlay.png``; ``out/volumes.json``
    lists the core volume in ml per case.
    """
    if not models:
        raise ConfigError("models", "no model given")
    mods = models[0][1].data.modalities
    for _, cfg in models[1:]:
        if cfg.data.modalities != mods:
            raise ConfigError("models", f"models take different inputs ({cfg.data.modalities} vs {mods})")
    source = Path(source)
    try:
        cases = open_cohort(source, require=mods).cases
    except DataError as first:  # maybe one case folder of a data set: open the set, keep that case
        try:
            cases = [c for c in open_cohort(source.parent, require=mods).cases
                     if Path(c.meta.get("folder", "")).name == source.name]
        except DataError:
            cases = []
        if not cases:
            raise first from None
    thr = models[0][1].threshold if threshold is None else threshold
    results = []
    with atomic_dir(out, force=force) as tmp:
        for case in cases:
            probs = []
            for model, cfg in models:
                ds = make_dataset([case], cfg.data, seed=cfg.run.seed, with_label=False,
                                  kind="volumes" if cfg.model.volumetric else "slices")
                probs.append(predict_case(model, ds, 0, device=cfg.run.device, amp=cfg.run.amp).array)
            prob = np.mean(probs, axis=0).astype(np.float32)
            mask = prob > thr
            affine = case.affine
            write_volume(Volume(prob, affine), tmp / case.id / "prob.nii.gz")
            write_volume(Volume(mask.astype(np.uint8), affine, kind="label"), tmp / case.id / "mask.nii.gz")
            ml = float(mask.sum()) * float(np.prod(case.spacing)) / 1000.0
            z = int(np.argmax(mask.sum(axis=(0, 1)))) if mask.any() else case.spatial_shape[2] // 2
            ref = case.label.array[..., z] if case.label is not None else None
            panels = [(k.upper(), case[k].array[..., z], tuple(np.percentile(case[k].array[..., z], [1, 99])), "gray")
                      for k in mods[:3]]
            panels.append(("core probability", prob[..., z], (0.0, 1.0), "magma"))
            panel_row(panels, tmp / case.id / "overlay.png", label=mask[..., z],
                      title=f"{case.id} z={z}: predicted core {ml:.1f} ml (red)"
                      + ("" if ref is None else f", reference {float((case.label.array > 0).sum()) * np.prod(case.spacing) / 1000:.1f} ml"))
            results.append({"case": case.id, "core_ml": round(ml, 3), "models": len(models)})
            echo(f"{case.id}: core {ml:.1f} ml")
        write_json_atomic(tmp / "volumes.json", results)
    return results
