import json
import subprocess
import sys

import pytest

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


#: the five systems at the smallest budgets that still run every stage (the demo's own budget
#: takes about 15 minutes; this takes about one)
SMOKE = ["--subjects", "3", "--size", "48", "--folds", "2", "--gan-epochs", "1", "--seg-epochs", "2",
         "--set", "pseudo-dwi:system.run.epochs=1", "--set", "pseudo-dwi:system.run.steps_per_epoch=2",
         "--set", "labelmap:phantom.stroke=6", "--set", "labelmap:phantom.healthy=4", "--set", "labelmap:phantom.size=32",
         "--set", "labelmap:phantom.spacing_mm=6.0", "--set", "labelmap:phantom.slices=8",
         "--set", "labelmap:phantom.slice_mm=20.0", "--set", "labelmap:translation.num_downs=5",
         "--set", "labelmap:translation.size=32", "--set", "labelmap:segmenter.data.size=[32,32]",
         "--set", "labelmap:lesion_gan.run.epochs=1", "--set", "labelmap:translation.run.epochs=1",
         "--set", "labelmap:segmenter.run.epochs=1", "--set", "labelmap:segmenter.run.steps_per_epoch=2",
         "--set", "labelmap:n_synthetic=2",
         "--set", "pseudo-healthy:system.run.epochs=1", "--set", "pseudo-healthy:segmentor.run.epochs=1"]


@pytest.mark.usefixtures("full_mask_lesion_gan")
def test_demo_check_split_convert(capsys, tmp_path):
    code, out, err = run(capsys, "demo", "--out", str(tmp_path / "demo"), *SMOKE)
    assert code == 0, err
    summary = json.loads((tmp_path / "demo/summary.json").read_text())
    # every system ran, has rows in the overview and a section in the report
    assert set(summary["seconds_by_stage"]) == {"phantom", "ctmr", "pseudo-dwi", "labelmap", "pseudo-healthy"}
    systems = {r["system"] for r in summary["overview"]}
    assert systems == {"1 segmentation", "2 CT-to-MR cGAN", "3 pseudo-DWI", "baseline", "4 label-map augmentation",
                       "5 pseudo-healthy"}
    for r in summary["overview"]:
        assert r["n"] > 0 and 0 <= r["dice"]["mean"] <= 1, r
    html = (tmp_path / "demo/report.html").read_text()
    for heading in ("Overview", "1-2. FCN and FCN-CGAN", "3. Pseudo-DWI + SLNet", "4. Label-map augmentation",
                    "5. Pseudo-healthy", "Perfusion accuracy"):
        assert heading in html, heading
    for folder in ("ctmr", "pseudo_dwi", "labelmap", "pseudo_healthy"):
        assert (tmp_path / "demo" / folder / "report.html").is_file(), folder
    assert "CBF < 30 % of the healthy median" in (tmp_path / "demo/overview.txt").read_text()
    numbers = json.loads((tmp_path / "demo/readme_numbers.json").read_text())
    from strokesynth.demo import demo_paragraph

    assert "| Dice |" in demo_paragraph(numbers)
    code, text, _ = run(capsys, "report", str(tmp_path / "demo"))
    assert code == 0 and "report.html" in text
    assert summary["cases"] >= 4 and summary["fold0_train_slices"] > 0  # 3 stroke + 1 healthy subjects
    assert 0 < summary["train_lesion_fraction"] < 0.5
    assert summary["phantom"]["healthy_subjects"] == 1
    assert 0.7 < summary["perfusion"]["cbv_ratio_normal"] < 1.3
    assert abs(summary["perfusion"]["tmax_err_slab_s"]) < 2.0  # counted from the slab's earliest artery
    report_md = (tmp_path / "demo/perfusion_accuracy.md").read_text()
    assert "## Per scan" in report_md and "| osvd | 0 |" in report_md and "earliest artery" in report_md
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
    code, _, err = run(capsys, "demo", "--out", str(tmp_path / "demo"), *SMOKE)
    assert code == 2 and "--force" in err


def test_console_script_entry_point(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "strokesynth.cli", "check", str(tmp_path)], capture_output=True, text=True
    )
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr


def test_demo_runs_a_chosen_subset(capsys, tmp_path):
    """``--systems segmentation`` trains FCN alone (no cGAN) and the overview pairs it with the baseline."""
    code, _, err = run(capsys, "demo", "--out", str(tmp_path / "demo"), "--systems", "segmentation", "--subjects", "3",
                       "--size", "48", "--folds", "2", "--seg-epochs", "2")
    assert code == 0, err
    summary = json.loads((tmp_path / "demo/summary.json").read_text())
    assert set(summary["seconds_by_stage"]) == {"phantom", "segmentation"}
    rows = summary["overview"]
    assert [r["method"] for r in rows] == ["FCN: PSPNet + focal loss", "Tmax > 6 s", "CBF < 30 % of the healthy median"]
    assert rows[0]["paired"]["cases"] == rows[0]["n"] == rows[2]["n"] > 0
    assert rows[1]["paired"]["vs"] == rows[2]["method"]  # the second baseline, paired with the reference
    assert not (tmp_path / "demo/ctmr").exists() and (tmp_path / "demo/segmentation/metrics/cases.csv").is_file()
    assert "1. FCN: PSPNet + focal loss" in (tmp_path / "demo/report.html").read_text()
