import json
import subprocess
import sys

from strokesynth.cli import cli

from conftest import run_cli

run = run_cli


def test_every_command_has_help(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for name, command in cli.commands.items():
        assert name in out
        code, text, _ = run(capsys, name, "--help")
        assert code == 0 and "Usage:" in text
        subs = getattr(command, "commands", {})
        for sub_name, sub in [(name, command), *((f"{name} {k}", v) for k, v in subs.items())]:
            if sub is not command:
                code, text, _ = run(capsys, *sub_name.split(), "--help")
                assert code == 0 and "Usage:" in text
            for param in sub.params:
                if param.param_type_name == "option":
                    assert param.help, f"{sub_name} {param.name} has no help"


def test_demo_check_split_convert(capsys, tmp_path):
    code, out, err = run(capsys, "demo", "--out", str(tmp_path / "demo"), "--subjects", "3", "--size", "48",
                          "--gan-epochs", "2", "--seg-epochs", "3")
    assert code == 0, err
    summary = json.loads((tmp_path / "demo/summary.json").read_text())
    assert summary["cases"] >= 4 and summary["fold0_train_slices"] > 0  # 3 stroke + 1 healthy subjects
    assert 0 < summary["train_lesion_fraction"] < 0.5
    assert summary["phantom"]["healthy_subjects"] == 1
    assert 0.7 < summary["perfusion"]["cbv_ratio_normal"] < 1.3
    report_md = (tmp_path / "demo/perfusion_accuracy.md").read_text()
    assert "## Per scan" in report_md and "| osvd | 0 |" in report_md
    for name in ("config.yaml", "splits.json", "check.json", "figures/sample.png", "run.log",
                 "perfusion_accuracy.json", "data/groundtruth/phantom.json"):
        assert (tmp_path / "demo" / name).exists(), name
    data = tmp_path / "demo/data"
    code, out, _ = run(capsys, "check", str(data), "--json", str(tmp_path / "check.json"))
    assert code == 0 and "no problems found" in out and "isles2018" in out
    report = json.loads((tmp_path / "check.json").read_text())
    assert report["ok"] and report["n_subjects"] == 4
    code, out, _ = run(capsys, "split", str(data), "--out", str(tmp_path / "s.json"), "--folds", "3")
    assert code == 0 and (tmp_path / "s.json").exists()
    code, out, _ = run(capsys, "convert", str(data), str(tmp_path / "nn"), "--to", "nnunet", "--folds", "2")
    assert code == 0 and (tmp_path / "nn/dataset.json").exists() and (tmp_path / "nn/splits_final.json").exists()
    assert "channels: 0000 ct, 0001 cbf, 0002 cbv, 0003 mtt, 0004 tmax" in out and "left out dwi" in out
    code, out, _ = run(capsys, "check", str(tmp_path / "nn"), "--quick")
    assert code == 0 and "nnunet" in out
    # a second demo into the same folder is refused without --force
    code, _, err = run(capsys, "demo", "--out", str(tmp_path / "demo"), "--subjects", "3", "--size", "48",
                          "--gan-epochs", "2", "--seg-epochs", "3")
    assert code == 2 and "--force" in err


def test_console_script_entry_point(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "strokesynth.cli", "check", str(tmp_path)], capture_output=True, text=True
    )
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
