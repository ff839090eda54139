"""scan's terminal output at 80 columns (a pipe, a log, a narrow terminal): one line per
file, names relative to the scanned folder and never broken, exact lines."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from glass_cli.cli import app

from .conftest import noise_image

narrow = CliRunner(env={"COLUMNS": "80", "GLASS_WEIGHTS": ""})
LONG = "sd-samples__Alpha-VLLM_Lumina-Next-SFT-diffusers__a_very_long_prompt_name_indeed.png"


def test_eighty_columns_one_line_per_file(tmp_path, tiny_glass):
    d = tmp_path / "deep" / "mixed"
    (d / "sub").mkdir(parents=True)
    noise_image(640, 480, 1).save(d / "wide.jpg", quality=90)
    noise_image(96, 96, 2).save(d / "sub" / LONG)
    (d / "broken.jpg").write_bytes(b"\xff\xd8 not really")
    out = tmp_path / "scan.json"
    result = narrow.invoke(app, ["scan", str(d), "--weights", str(tiny_glass), "--threshold", "0", "--all",
                                 "--min-side", "1", "--precision", "fp32", "--json", str(out)])
    assert result.exit_code == 1, result.output
    recs = {r["path"]: r for r in json.loads(out.read_text())["files"]}
    assert str(d / "wide.jpg") in recs  # records keep the full path
    wide, long = recs[str(d / "wide.jpg")], recs[str(d / "sub" / LONG)]
    rows = sorted([(wide["p_ai"], "wide.jpg", "640x480"), (long["p_ai"], "…" + f"sub/{LONG}"[-(80 - 27 - 14 - 1):], "96x96")],
                  key=lambda row: -row[0])
    name_w = 80 - 27 - 14
    expected = [
        "Scanned files",
        f"P(AI)  verdict    size     {'file':{name_w}}  evidence",
        *(f"{p:5.3f}  AI         {size:7}  {name:{name_w}}  -" for p, name, size in rows),
        "(crops: in the records and --report, or at 110+ columns)",
        "Not scanned",
        "file        reason",
        "broken.jpg  not an image, or a format glass cannot read",
        "2 scanned, 2 flagged as AI (P(AI) >= 0), 0 real, 1 not scanned",
        "model: glass test_efficientnet+test_resnet K=3 S=32 (" + wide["model_id"] + ")",
        "device: cpu",
    ]
    assert result.stdout.splitlines() == expected
    assert max(map(len, result.stdout.splitlines())) <= 80


def test_evidence_too_long_for_its_column_stands_whole_on_its_own_line(tmp_path, tiny_glass):
    from PIL import Image

    d = tmp_path / "photos"
    d.mkdir()
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "FUJIFILM", "FinePix2650 Zoom Camera"  # 45 characters of evidence, 41 of column
    noise_image(200, 150, 3).save(d / "camera.jpg", quality=90, exif=exif)
    result = narrow.invoke(app, ["scan", str(d), "--weights", str(tiny_glass), "--threshold", "0", "--min-side", "1"])
    lines = result.stdout.splitlines()
    row = next(i for i, line in enumerate(lines) if "camera.jpg" in line)
    assert lines[row].endswith("camera.jpg") and not lines[row].endswith(" ")
    assert lines[row + 1] == "       evidence: EXIF camera: FUJIFILM FinePix2650 Zoom Camera"
    summary = next(line for line in lines if " scanned, " in line)
    assert summary == "1 scanned, 1 flagged as AI (P(AI) >= 0), 0 real, 0 not scanned"  # one line, never broken


def test_eval_says_why_it_lists_no_group_instead_of_printing_an_empty_table(tmp_path, tiny_glass):
    rows = ["path,label,generator,family"]
    for i, (label, generator) in enumerate([("real", "camera-a"), ("real", "camera-b"), ("fake", "sdxl"), ("fake", "flux")]):
        noise_image(64, 64, seed=i).save(tmp_path / f"{i}.png")
        rows.append(f"{tmp_path / f'{i}.png'},{label},{generator},{generator}")
    (tmp_path / "manifest.csv").write_text("\n".join(rows) + "\n")
    result = narrow.invoke(app, ["eval", str(tmp_path / "manifest.csv"), "--weights", str(tiny_glass)])
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    assert "By generator (AUROC" not in text and "By family (AUROC" not in text
    assert "By generator: 4 group(s), each of fewer than 5 images (--min-group 1 lists them; --json has every group)" in text


def test_cv_and_tune_help_say_what_the_folds_hold_out():
    wide = CliRunner(env={"COLUMNS": "300"})
    cv = " ".join(wide.invoke(app, ["cv", "--help"]).stdout.split())
    tune = " ".join(wide.invoke(app, ["tune", "--help"]).stdout.split())
    assert "Each fold holds out whole sources" in cv and "leave-family-out" not in cv
    assert "a leave-source-out cross-validation per trial" in tune and "leave-family-out" not in tune
