import numpy as np
import pytest

from strokesynth.data.normalize import Normalization, NormSpec, normalize
from strokesynth.errors import ConfigError


def test_window_maps_brain_window_to_unit_range():
    x = np.array([-1000.0, 0.0, 40.0, 80.0, 1000.0])
    assert np.allclose(normalize(x, NormSpec("window", 0, 80)), [0, 0, 0.5, 1, 1])


def test_percentile_matches_numpy_on_nonzero_voxels():
    rng = np.random.default_rng(0)
    x = np.zeros((20, 20, 4), np.float32)
    x[5:15, 5:15] = rng.gamma(2.0, 20.0, size=(10, 10, 4))
    out = normalize(x, NormSpec("percentile", 1, 99, "nonzero", clip=False))
    lo, hi = np.percentile(x[x != 0], [1, 99])
    assert np.allclose(out, (x - lo) / (hi - lo), atol=1e-5)
    clipped = normalize(x, NormSpec("percentile", 1, 99))
    assert clipped.min() >= 0 and clipped.max() <= 1 and clipped.dtype == np.float32


def test_zscore_and_defaults():
    x = np.arange(1, 101, dtype=np.float32)
    z = normalize(x, NormSpec("zscore"))
    assert z.mean() == pytest.approx(0, abs=1e-5) and z.std() == pytest.approx(1, abs=1e-5)
    norm = Normalization()
    assert norm.spec("ct").method == "window" and norm.spec("dwi").low == 0
    assert norm.spec("unknown_key") == norm.fallback
    assert np.all(normalize(np.zeros(5), NormSpec()) == 0)


def test_bad_spec():
    with pytest.raises(ConfigError):
        NormSpec("window", 10, 5)
    with pytest.raises(ConfigError):
        NormSpec("magic")
