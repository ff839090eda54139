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
                                 "--min-side", "1", "--json", str(out)])
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
