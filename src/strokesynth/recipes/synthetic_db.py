"""A synthetic annotated stroke database (Platscher et al.): healthy label map + GAN lesion -> DWI.

For synthetic subject ``i`` (seeded by ``(seed, i)``): healthy label map ``i mod M`` (of the M
given), a lesion mask from the lesion GAN (drawn again while fewer than 20 voxels fall into
the parenchyma, up to ``retries`` times), the lesion class written into the map, and the
translation model's DWI, slice by slice. Each subject is written as a plain-layout case folder
(``dwi``, ``lesion``, ``anatomy``, ``brain``) with its provenance, one at a time (bounded
memory), into a hidden staging folder beside the destination; a killed run resumes there; the
destination appears only when all ``n`` subjects are written (complete or nothing).

    DEST/
      syn_0001/dwi.nii.gz lesion.nii.gz anatomy.nii.gz brain.nii.gz provenance.json
      ...
      strokesynth.json   synthetic_db.json   (provenance: models, seeds, healthy maps, per subject)

The DWI is stored in [0, 1] (the model's [-1, 1] mapped back; 0 outside the brain), so every
reader and ``train`` use it like a clinical DWI (their normalisation rescales it anyway).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from strokesynth._fs import output_lock, write_json_atomic
from strokesynth.data.case import Case
from strokesynth.data.injection import inject_with_retries
from strokesynth.data.mr_volumes import MRVolume, prepare_mr_case
from strokesynth.data.volume import Volume
from strokesynth.errors import ConfigError, DataError, OutputError
from strokesynth.io.case_files import write_case_volumes
from strokesynth.io.cohort import open_cohort, write_cohort
from strokesynth.io.dataset_meta import DatasetMeta, write_meta

FORMAT = "strokesynth-synthetic-db/1"


def _sha(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def _staging(dest: Path) -> Path:
    return dest.parent / f".{dest.name}.synthetic-staging"


def synthesize_subject(index: int, healthy: MRVolume, gan: Any, translator: Any, table: Any, *, seed: int,
                       retries: int, device: str = "cpu") -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Synthetic subject ``index``: arrays (``dwi`` [0, 1], ``lesion``, ``anatomy``, ``brain``) and its provenance."""
    draws = iter(range(retries))

    def draw() -> np.ndarray:
        return gan.sample(1, seed=int(np.random.SeedSequence([seed, index, next(draws)]).generate_state(1)[0]),
                          device=device)[0].numpy()

    classes, lesion, attempts = inject_with_retries(healthy.classes, draw, table, retries=retries,
                                                    where=f"synthetic subject {index + 1} ({healthy.case_id})")
    from strokesynth.systems.labelmap import translate_volume

    state = torch.get_rng_state()
    torch.manual_seed(int(np.random.SeedSequence([seed, index, 10_000]).generate_state(1)[0]))
    try:
        dwi = translate_volume(translator, classes, table.n_classes, device=device)
    finally:
        torch.set_rng_state(state)
    brain = healthy.brain | lesion
    dwi01 = np.where(brain, (dwi + 1) / 2, 0).astype(np.float32)
    voxel_ml = float(np.prod(healthy.spacing)) / 1000
    info = {"healthy_map": healthy.case_id, "lesion_draws": attempts, "lesion_voxels": int(lesion.sum()),
            "lesion_ml": round(int(lesion.sum()) * voxel_ml, 3)}
    return {"dwi": dwi01, "lesion": lesion.astype(np.uint8), "anatomy": classes, "brain": brain.astype(np.uint8)}, info


def _write_subjects(stage: Path, n: int, healthy: list[MRVolume], gan: Any, translator: Any, table: Any, *,
                    seed: int, retries: int, device: str) -> tuple[list[dict[str, Any]], int]:
    """Subjects 1..n into ``stage`` (those already there are kept): their provenance, and how many were kept."""
    subjects: list[dict[str, Any]] = []
    done = 0
    for i in tqdm(range(n), desc="synthetic subjects", unit="subject", disable=None):
        cid = f"syn_{i + 1:04d}"
        folder = stage / cid
        if (folder / "provenance.json").exists():
            subjects.append(json.loads((folder / "provenance.json").read_text()))
            done += 1
            continue
        v = healthy[i % len(healthy)]
        arrays, info = synthesize_subject(i, v, gan, translator, table, seed=seed, retries=retries, device=device)
        tmp = stage / f".{cid}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        case = Case(cid, cid, {k: Volume(a, v.affine, kind="label" if k != "dwi" else "image")
                               for k, a in arrays.items()})
        write_case_volumes(case, {k: tmp / f"{k}.nii.gz" for k in arrays})
        info = {"case": cid, **info}
        write_json_atomic(tmp / "provenance.json", info)
        os.replace(tmp, folder)
        subjects.append(info)
    return subjects, done


def build_synthetic_db(healthy_cases: list[Case], gan_path: str | os.PathLike, translator_path: str | os.PathLike,
                       n: int, dest: str | os.PathLike, *, seed: int = 0, layout: str = "plain", table: str = "",
                       retries: int = 50, force: bool = False, device: str = "cpu",
                       echo: Callable[[str], Any] = print) -> dict[str, Any]:
    """Write ``n`` synthetic subjects to ``dest`` (see the module docstring); returns the provenance.

    Args:
        healthy_cases: cases with a lesion-free ``anatomy`` label map (a lesion class is refused).
        gan_path, translator_path: checkpoints of a ``lesion_wgan`` and a translation system.
        table: label table of the healthy maps (default: the translation model's).
        layout: ``plain`` (written in place) or any writable layout (``isles22``...).

    Raises:
        DataError: label maps off the lesion GAN's grid, unmapped ids, an injection that never fits.
        OutputError: ``dest`` exists and is not empty (without ``force``).
    """
    from strokesynth.data.label_maps import load_label_table
    from strokesynth.engine.checkpoint import load_system
    from strokesynth.systems.labelmap import _Translation
    from strokesynth.systems.lesion_gan import LesionWGAN

    dest = Path(dest)
    if n < 1:
        raise OutputError(dest, f"need at least one synthetic subject, got n={n}")
    if retries < 1:
        raise ConfigError("retries", f"need at least one lesion draw per subject, got {retries}")
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())) and not force:
        raise OutputError(dest, "output folder exists and is not empty (use --force to replace it)")
    gan, translator = load_system(gan_path), load_system(translator_path)
    if not isinstance(gan, LesionWGAN):
        raise DataError(gan_path, f"holds a {gan.name} system, not lesion_wgan")
    if not isinstance(translator, _Translation):
        raise DataError(translator_path, f"holds a {translator.name} system, not a label map -> DWI translation model")
    for net in (*gan.networks.values(), *translator.networks.values()):
        net.to(device).eval()
    tcfg = translator.config
    lt = load_label_table(table or tcfg.table)
    if lt.classes != tcfg.label_table().classes:
        raise DataError(table, f"label table classes differ from the translation model's ({tcfg.table})")
    if not healthy_cases:
        raise DataError(None, "no healthy label maps given")
    healthy = [prepare_mr_case(c, lt, size=tcfg.size, image=None) for c in healthy_cases]
    for v in healthy:
        if v.lesion.any():
            raise DataError(v.case_id, "a healthy label map holds lesion voxels (give lesion-free maps)")
        if tuple(v.classes.shape) != tuple(gan.config.shape):
            raise DataError(v.case_id, f"label map grid {v.classes.shape} (after pad/crop to {tcfg.size} px) differs "
                                       f"from the lesion GAN's {tuple(gan.config.shape)}")
    provenance = {"format": FORMAT, "n": int(n), "seed": int(seed), "layout": layout, "table": lt.name,
                  "lesion_gan": {"path": str(Path(gan_path).resolve()), "sha256_16": _sha(gan_path)},
                  "translator": {"path": str(Path(translator_path).resolve()), "sha256_16": _sha(translator_path),
                                 "model": tcfg.model},
                  "healthy_maps": [v.case_id for v in healthy], "retries": retries}
    with output_lock(dest):  # one writer per destination
        stage = _staging(dest)
        key = {k: provenance[k] for k in ("n", "seed", "table", "lesion_gan", "translator", "healthy_maps")}
        if stage.exists():
            try:
                old = json.loads((stage / "synthetic_db.json").read_text())
            except (OSError, json.JSONDecodeError):
                old = None
            if old is None or {k: old.get(k) for k in key} != key:
                shutil.rmtree(stage)
        created = not stage.exists()
        stage.mkdir(parents=True, exist_ok=True)
        write_json_atomic(stage / "synthetic_db.json", provenance)
        try:
            subjects, done = _write_subjects(stage, n, healthy, gan, translator, lt, seed=seed, retries=retries,
                                             device=device)
        except DataError:
            if created:  # an injection that never fits: nothing partial (an interrupted run's staging stays)
                shutil.rmtree(stage, ignore_errors=True)
            raise
        if done:
            echo(f"resumed: {done} of {n} subjects were already written")
        provenance["subjects"] = subjects
        write_json_atomic(stage / "synthetic_db.json", provenance)
        if layout == "plain":
            meta = DatasetMeta()
            meta.subjects = {}
            write_meta(stage, meta)
            if dest.exists():
                shutil.rmtree(dest)
            os.replace(stage, dest)
        else:
            cases = open_cohort(stage, layout="plain").cases

            def extra(root: Path) -> None:
                write_json_atomic(root / "synthetic_db.json", provenance)

            write_cohort(cases, dest, layout=layout, force=True, extra=extra)
            shutil.rmtree(stage)
    vols = [s["lesion_ml"] for s in subjects]
    echo(f"{n} synthetic subjects -> {dest} (lesion {np.median(vols):.1f} ml median, "
         f"{np.mean([s['lesion_draws'] for s in subjects]):.2f} draws per subject)")
    return provenance
