"""Figures of a pseudo-healthy experiment (Xia, Chartsias & Tsaftaris), made from the kept models.

- ``figures/<contrast>_examples.png``: the paper's Fig. 4 analog: held-out pathological slices,
  each row's pseudo-healthy image, the true mask and the proposed models' masks;
- ``figures/<contrast>_cyclegan_failure.png``: the Fig. 2 failure mode (the CycleGAN's
  reconstruction puts a lesion where there was none), when it occurred;
- ``figures/real_<contrast>.png``: the fold-0 models applied to a real case, labelled as such.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from strokesynth.plots import _save, panel_row


def _models(run: Path, contrast: str, fold: int, rows: list[str]) -> dict[str, Any]:
    from strokesynth.recipes.pseudo_healthy import ROW_KEYS, load_kept

    out = {}
    for row in rows:
        path = run / contrast / f"fold_{fold}" / ROW_KEYS[row]
        if (path / "best.pt").exists():
            out[row] = load_kept(path).eval_mode()
    return out


def _grid(images: list[list[tuple[str, np.ndarray, str]]], masks: list[np.ndarray], path: Path, title: str) -> None:
    """Rows of ``(name, image (S, S), colormap)`` panels with the true mask's contour in red."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, cols = len(images), max(len(r) for r in images)
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.3 * rows + 0.5), squeeze=False)
    for r, (panels, mask) in enumerate(zip(images, masks, strict=True)):
        for c in range(cols):
            ax = axes[r, c]
            ax.axis("off")
            if c >= len(panels):
                continue
            name, img, cmap = panels[c]
            ax.imshow(img.T, cmap=cmap, origin="lower", vmin=0, vmax=1)
            if mask.any() and cmap == "gray":
                ax.contour(mask.T, levels=[0.5], colors="red", linewidths=0.6, origin="lower")
            if r == 0:
                ax.set_title(name, fontsize=9)
    fig.suptitle(title, fontsize=10)
    _save(fig, path)


def _panels(models: dict[str, Any], x: np.ndarray, m: np.ndarray, device: str = "cpu") -> list[tuple[str, np.ndarray, str]]:
    import torch

    t = torch.from_numpy(x[None, None].astype(np.float32)).to(device)
    panels = [("input", x, "gray")]
    seg = {}
    for row, model in models.items():
        panels.append((row, model.pseudo_healthy(t)[0, 0].cpu().numpy(), "gray"))
        p = model.pathology(t)
        if p is not None:
            seg[row] = p[0, 0].cpu().numpy()
    panels.append(("true mask", m.astype(float), "viridis"))
    panels += [(f"S: {row.replace('proposed ', '')}", s, "viridis") for row, s in seg.items()]
    return panels


def example_figures(run_path: str | os.PathLike, cfg, banks: dict[str, Any], fold: int) -> list[Path]:
    """Fig. 4 analog (3 held-out slices with the largest lesions) and the CycleGAN failure figure
    per contrast, from the fold's kept models."""
    import json

    run = Path(run_path)
    split = json.loads((run / "splits.json").read_text())
    test_cases = set(split["folds"][fold]["val_cases"]) if "folds" in split else set()
    table = json.loads((run / "ph_table.json").read_text())
    written = []
    for contrast, bank in banks.items():
        models = _models(run, contrast, fold, cfg.rows)
        keep = np.isin(bank.case, list(test_cases)) & bank.lesion
        idx = np.flatnonzero(keep)
        if not idx.size or not models:
            continue
        sizes = bank.masks[idx].reshape(len(idx), -1).sum(1)
        pick = idx[np.argsort(-sizes)[:3]]
        rows = [_panels(models, bank.images[i, 0], bank.masks[i, 0]) for i in pick]
        path = run / "figures" / f"{contrast}_examples.png"
        _grid(rows, [bank.masks[i, 0] for i in pick], path,
              f"{contrast.upper()}: held-out pathological slices (fold {fold}); red: true lesion")
        written.append(path)
        fails = [f for f in table["cyclegan_failures"].get(contrast, []) if f.get("fold") == fold]
        if fails and "CycleGAN" in models:
            import torch

            worst = max(fails, key=lambda f: f["invented_px"])
            i = int(np.flatnonzero((bank.case == worst["case"]) & (bank.z == worst["z"]))[0])
            x = torch.from_numpy(bank.images[i:i + 1])
            g = models["CycleGAN"]
            ph, rec = g.pseudo_healthy(x)[0, 0].numpy(), g.reconstruction(x)[0, 0].numpy()
            path = run / "figures" / f"{contrast}_cyclegan_failure.png"
            panel_row([("input", bank.images[i, 0], (0, 1), "gray", "normalised"),
                       ("CycleGAN pseudo-healthy", ph, (0, 1), "gray", "normalised"),
                       ("reconstruction", rec, (0, 1), "gray", "normalised"),
                       ("reconstruction - input", rec - bank.images[i, 0], (-0.5, 0.5), "RdBu_r", "normalised")],
                      path, label=bank.masks[i, 0],
                      title=f"{worst['case']} z={worst['z']}: the reconstruction invents a {worst['invented_px']} px "
                            "bright blob away from the true lesion (red)")
            written.append(path)
    return written


def real_case_figures(run_path: str | os.PathLike, cfg, fold: int, echo: Callable[[str], Any] = print
                      ) -> dict[str, Any]:
    """Apply the fold's kept models to each case of ``cfg.real_case`` (skipped with a note if absent)."""
    import torch

    from strokesynth.data.pathology_slices import prepare_volume
    from strokesynth.errors import StrokesynthError
    from strokesynth.io import open_cohort
    from strokesynth.metrics.pseudo_healthy import identity, slice_dice
    from strokesynth.recipes.pseudo_healthy import contrast_data, load_kept

    run = Path(run_path)
    src = Path(cfg.real_case) if cfg.real_case else None
    if src is None or not src.is_dir():
        note = f"real-data example skipped: {cfg.real_case or '(none)'} not found"
        echo(note)
        return {"note": note, "cases": []}
    cases = open_cohort(src).cases
    results: dict[str, Any] = {"source": str(src), "cases": [], "notes": []}
    for contrast in cfg.contrasts:
        models = _models(run, contrast, fold, cfg.rows)
        fpre = load_kept(run / contrast / f"fold_{fold}" / "f_pre")
        data = contrast_data(cfg.system.data, contrast, cfg.clip_percentiles)
        for case in cases:
            try:
                vol = prepare_volume(case, data)
            except StrokesynthError as exc:
                note = f"{case.id} {contrast}: skipped ({exc.problem})"
                results["notes"].append(note)
                echo(note)
                continue
            les = vol.masks.reshape(len(vol.z), -1).sum(1).astype(np.int64)
            x = torch.from_numpy(vol.images[:, None])
            m = vol.masks[:, None]
            entry: dict[str, Any] = {"case": case.id, "contrast": contrast, "slices": len(vol.z),
                                     "pathological": int((les > 0).sum()), "rows": {}}
            with torch.no_grad():
                judged = fpre.probability(x).numpy() > 0.5
            sel = les > 0
            entry["f_pre_dice"] = float(slice_dice(judged[sel], m[sel]).mean()) if sel.any() else None
            for row, model in models.items():
                ph = model.pseudo_healthy(x).numpy()
                ident, _ = identity(ph[sel], vol.images[sel][:, None], m[sel])
                found = (fpre.probability(torch.from_numpy(ph)).numpy() > 0.5)[sel].reshape(int(sel.sum()), -1).sum(1)
                e = {"identity": float(ident.mean()),
                     "healthiness": float(1 - found.mean() / max(les[sel].mean(), 1e-9))}
                p = model.pathology(x)
                if p is not None:
                    e["s_dice"] = float(slice_dice(p.numpy()[sel] > 0.5, m[sel]).mean())
                entry["rows"][row] = e
            pick = np.argsort(-les)[:2]
            path = run / "figures" / f"real_{contrast}.png"
            _grid([_panels(models, vol.images[i], vol.masks[i]) for i in pick], [vol.masks[i] for i in pick], path,
                  f"REAL DATA: {case.id} {contrast.upper()} (models trained on the phantom only; red: expert mask)")
            entry["figure"] = str(path.relative_to(run))
            results["cases"].append(entry)
            echo(f"real case {case.id} {contrast}: f_pre Dice {entry['f_pre_dice']}; "
                 + "; ".join(f"{r}: identity {v['identity']:.3f}, healthiness {v['healthiness']:.3f}"
                             for r, v in entry["rows"].items()))
            break  # one labelled example per contrast
    return results
