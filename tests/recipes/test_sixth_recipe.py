"""A sixth paper is its own file plus one registration: the CLI, ``recipe list``, ``describe``,
``demo --systems``, ``report`` and the demo's overview table pick it up with no shared edit."""

from __future__ import annotations

import dataclasses
import json

import pytest
import toy_recipe

from strokesynth.cli import main
from strokesynth.config import FrozenConfigError, is_frozen
from strokesynth.recipes.registry import RECIPES


@pytest.fixture
def sixth():
    RECIPES.add(toy_recipe.RECIPE)  # the one line a new paper adds (in recipes/catalog/__init__.py)
    yield toy_recipe.RECIPE
    RECIPES.remove(toy_recipe.RECIPE.name)


def _run(capsys, *args: str) -> tuple[int, str, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_the_cli_lists_describes_and_runs_it(sixth, capsys, tmp_path, isles2018_dir):
    code, out, _ = _run(capsys, "recipe", "list")
    assert code == 0 and "toy-sixth" in out and "two convolutions" in out
    code, out, _ = _run(capsys, "recipe", "toy-sixth", "--help")
    assert code == 0 and "--width" in out and "--resume" in out and "tiny or paper" in out
    code, out, _ = _run(capsys, "describe", "--recipe", "toy-sixth", "--config", "paper")
    assert code == 0 and "core" in out and "refiner" in out and "width 32" in out
    run = tmp_path / "toy"
    code, out, err = _run(capsys, "recipe", "toy-sixth", "--data", str(isles2018_dir), "--width", "3",
                          "--set", "steps=5", "--out", str(run))
    assert code == 0, err
    assert "report:" in out and (run / "report.html").is_file()
    assert "width: 3" in (run / "config.yaml").read_text() and "steps: 5" in (run / "config.yaml").read_text()
    (run / "report.html").unlink()
    code, out, err = _run(capsys, "report", str(run))
    assert code == 0, err
    assert "mean Dice" in (run / "report.html").read_text()
    code, _, err = _run(capsys, "recipe", "toy-sixth", "--data", str(isles2018_dir), "--set", "width=0",
                        "--out", str(tmp_path / "bad"))
    assert code == 2 and "width" in err and not (tmp_path / "bad").exists()


def test_the_demo_runs_it_and_the_overview_pairs_it(sixth, capsys, tmp_path):
    code, out, err = _run(capsys, "demo", "--out", str(tmp_path / "demo"), "--systems", "segmentation,toy",
                          "--subjects", "3", "--size", "48", "--folds", "2", "--seg-epochs", "1")
    assert code == 0, err
    assert "6. A toy sixth paper" in out
    summary = json.loads((tmp_path / "demo" / "summary.json").read_text())
    assert set(summary["seconds_by_stage"]) == {"phantom", "segmentation", "toy"}
    rows = summary["overview"]
    assert [r["system"] for r in rows] == ["1 segmentation", "6 toy", "baseline", "baseline"]  # Tmax > 6 s, CBF
    toy = rows[1]
    assert toy["paired"]["vs"] == rows[3]["method"] and toy["paired"]["cases"] == toy["n"] == rows[3]["n"] > 0
    html = (tmp_path / "demo" / "report.html").read_text()
    assert "6. Toy: Toy table" in html and "toy/report.html" in html
    code, _, err = _run(capsys, "demo", "--out", str(tmp_path / "demo2"), "--systems", "toy",
                        "--set", "toy:width=0")
    assert code == 2 and "width" in err


def test_the_cli_runs_recipes_on_frozen_configs(monkeypatch, tmp_path, isles2018_dir, capsys):
    """The recipe command hands its run the frozen config; a run that changed it in place would fail."""
    seen = {}

    def run(cfg, out, **kwargs):
        seen["frozen"] = is_frozen(cfg)
        with pytest.raises(FrozenConfigError):
            cfg.steps = 1
        return toy_recipe.run_toy(cfg, out, **kwargs)

    recipe = dataclasses.replace(toy_recipe.RECIPE, name="toy-frozen", run=run, demo=None)
    RECIPES.add(recipe)
    try:
        main(["recipe", "toy-frozen", "--data", str(isles2018_dir), "--set", "steps=2", "--out", str(tmp_path / "r")])
    except SystemExit as exc:
        assert not exc.code, capsys.readouterr().err
    finally:
        RECIPES.remove("toy-frozen")
    assert seen == {"frozen": True}
