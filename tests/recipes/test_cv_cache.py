"""A data set too large for the in-memory cache is cached on disk in the run folder."""

from __future__ import annotations

from types import SimpleNamespace

from strokesynth.recipes.cv import with_cache_for_large_cases
from strokesynth.systems.segmenter import TrainConfig


def _cases(n: int, shape: tuple[int, int, int]) -> list:
    return [SimpleNamespace(reference=SimpleNamespace(spatial_shape=shape)) for _ in range(n)]


def test_large_cases_get_a_disk_cache_in_the_run_folder(tmp_path):
    cfg = TrainConfig()
    big = _cases(20, (512, 512, 80))  # 5 channels x 84 MB: the LRU of 8 cases would thrash
    out, note = with_cache_for_large_cases(cfg, big, tmp_path / "run")
    assert out.data.cache_dir == str((tmp_path / "run" / "cache").resolve()) and "400 MB" in note  # MiB
    assert cfg.data.cache_dir == ""  # the given config is not changed
    # small cases, few cases, or a cache the user named: left as they are
    assert with_cache_for_large_cases(cfg, _cases(20, (96, 96, 8)), tmp_path / "run")[1] == ""
    assert with_cache_for_large_cases(cfg, _cases(8, (512, 512, 80)), tmp_path / "run")[1] == ""
    named = with_cache_for_large_cases(cfg, big, tmp_path / "run")[0]
    assert with_cache_for_large_cases(named, big, tmp_path / "other")[0].data.cache_dir == named.data.cache_dir


def test_predict_never_caches_new_cases_in_the_models_run_folder(tmp_path):
    """A run trained with an on-disk cache (inside its folder) predicts with none: new cases are read
    once each, and nothing is written into the model's folder (which predict refuses as an output)."""
    from strokesynth.cli import _run_settings
    from strokesynth.config import replaced

    cfg = replaced(TrainConfig(), {"data.cache_dir": str(tmp_path / "run" / "cache")})
    run = _run_settings(cfg, "cpu", "none")
    assert run.data.cache_dir == "" and run.run.device == "cpu"
    assert cfg.data.cache_dir.endswith("cache")  # the loaded config is not changed
