import pytest
import yaml

from strokesynth.config import load_config, save_config, to_dict
from strokesynth.data.config import DataConfig
from strokesynth.errors import ConfigError, OutputError
from strokesynth.runs import RunDir


def test_yaml_and_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("modalities: [ct, cbf]\nsize: [128, 128]\naugment:\n  p: 1.0\nnormalization:\n  dwi: {method: window, low: 0, high: 500}\n")
    cfg = load_config(DataConfig, path, ["label=core", "augment.rotate_deg=5", "mode=resample"])
    assert cfg.modalities == ["ct", "cbf"] and cfg.size == (128, 128) and cfg.label == "core"
    assert cfg.augment.p == 1.0 and cfg.augment.rotate_deg == 5.0 and cfg.mode == "resample"
    assert cfg.normalization["dwi"].high == 500 and cfg.normalization["ct"].method == "window"
    save_config(cfg, tmp_path / "out.yaml")
    again = load_config(DataConfig, tmp_path / "out.yaml")
    assert to_dict(again) == to_dict(cfg)
    assert yaml.safe_load((tmp_path / "out.yaml").read_text())["label"] == "core"


@pytest.mark.parametrize(
    "text,override,message",
    [
        ("sizes: [1, 2]\n", None, "unknown key 'sizes'"),
        ("size: [abc, 3]\n", None, "expected an integer"),
        ("mode: stretch\n", None, "must be one of"),
        ("augment: {p: 3}\n", None, "within"),
        ("", "augment.nope=1", "unknown key 'nope'"),
        ("", "label", "key=value"),
        ("[1, 2]\n", None, "mapping"),
        ("a: [\n", None, "not valid YAML"),
    ],
)
def test_config_errors(tmp_path, text, override, message):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(DataConfig, path, [override] if override else [])


def test_bad_override_is_named(tmp_path):
    with pytest.raises(ConfigError) as exc:
        load_config(DataConfig, None, ["size=[64,64]", "augment.nope=1"])
    assert exc.value.one_line().startswith("--set augment.nope=1: unknown key 'nope'")
    with pytest.raises(ConfigError) as exc:
        load_config(DataConfig, None, ["size=[abc,3]"])
    assert exc.value.one_line().startswith("--set size=[abc,3]: expected an integer")


def test_run_dir_never_overwrites_without_force(tmp_path):
    run = RunDir.create(tmp_path / "r")
    run.save_json("metrics/m.json", {"dice": 0.5})
    run.save_table("metrics/epochs.csv", [{"epoch": 0, "loss": 1.0}, {"epoch": 1, "loss": 0.5, "dice": 0.2}])
    assert "epoch,loss,dice" in (tmp_path / "r/metrics/epochs.csv").read_text()
    with pytest.raises(OutputError, match="--force"):
        RunDir.create(tmp_path / "r")
    assert (tmp_path / "r/metrics/m.json").exists()
    RunDir.create(tmp_path / "r", force=True)
    assert not (tmp_path / "r/metrics/m.json").exists()


def test_force_keeps_the_old_result_until_the_new_one_is_complete(tmp_path, plain_dir, capsys, monkeypatch):
    import strokesynth.recipes.cv as cv
    from strokesynth.errors import DataError
    from strokesynth.runs import stale_backups

    from conftest import run_cli

    old = tmp_path / "run"
    old.mkdir()
    (old / "config.yaml").write_text("name: yesterday\n")
    (old / "result.txt").write_text("precious")

    def broken(*args, **kwargs):
        raise DataError("fold_0", "failed half-way through the new run")

    monkeypatch.setattr(cv, "cross_validate", broken)
    code, _, err = run_cli(capsys, "train", "--set", f"data.dataset={plain_dir}", "--set", "data.size=[32,32]",
                           "--set", "run.folds=2", "--out", str(old), "--force")
    assert code == 2 and "failed half-way" in err and "kept the previous result" in err
    assert (old / "result.txt").read_text() == "precious" and sorted(p.name for p in old.iterdir()) == [
        "config.yaml", "result.txt"]
    assert not list(tmp_path.glob(".run.*.backup")) and stale_backups(old) == []
    from strokesynth.runs import finish_replacements

    RunDir.create(old, force=True)
    assert list(tmp_path.glob(".run.*.backup"))  # the old result waits beside the new run
    finish_replacements()  # the command succeeded
    assert not list(tmp_path.glob(".run.*.backup")) and not (old / "result.txt").exists()


def test_failed_command_leaves_no_run_folder(tmp_path, plain_dir, capsys, monkeypatch):
    import strokesynth.recipes.cv as cv
    from strokesynth.errors import DataError

    from conftest import run_cli

    def bad_label(*args, **kwargs):
        raise DataError("lesion.nii.gz", "lesion mask holds values [2] besides 0 and 1")

    monkeypatch.setattr(cv, "cross_validate", bad_label)
    out = tmp_path / "new_run"
    code, _, err = run_cli(capsys, "train", "--set", f"data.dataset={plain_dir}", "--set", "data.size=[32,32]",
                           "--set", "run.folds=2", "--out", str(out))
    assert code == 2 and "besides 0 and 1" in err
    assert not out.exists()  # the corrected re-run is not blocked by a half run
