"""Shared fixtures: tiny toy cohorts written in each layout, and the real data in ../shared."""

from __future__ import annotations

from pathlib import Path

import pytest

from strokesynth.data.toy import ToyConfig, toy_cohort
from strokesynth.io import write_cohort

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def toy_cases():
    """Five subjects, some with two slabs, 32x32 in-plane."""
    return toy_cohort(ToyConfig(subjects=5, size=32, frames=8, seed=3))


@pytest.fixture
def isles2018_dir(tmp_path, toy_cases):
    return write_cohort(toy_cases, tmp_path / "isles2018", layout="isles2018")


@pytest.fixture
def plain_dir(tmp_path, toy_cases):
    return write_cohort(toy_cases, tmp_path / "plain", layout="plain")


@pytest.fixture
def isles22_dir():
    path = SHARED / "isles22"
    if not path.is_dir():
        pytest.skip(f"real ISLES'22 case not available ({path} absent: fresh clone without ../shared)")
    return path
