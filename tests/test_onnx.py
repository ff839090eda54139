"""The ONNX path end to end: `glass export --onnx` (glass_cli.export), the file it writes,
OnnxEngine, and `glass scan --engine onnx` against the torch engine. One module, so that each
export (seconds) is made once and shared by the tests that read it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from glass_cli import __version__
from glass_cli.cli import app
from glass_cli.config import ModelConfig
from glass_cli.inference import export, onnxfile
from glass_cli.inference.engines import EngineError, OnnxEngine, cuda_gpus, engine_kind, open_engine
from glass_cli.io.digest import file_sha256
from glass_cli.models import checkpoint, new_model

runner = CliRunner(env={"COLUMNS": "200", "GLASS_WEIGHTS": ""})
TINY = dict(num_crops=3, crop_size=32)


def glass_export(*args):
    return runner.invoke(app, ["export", *map(str, args)])


def scan(*args):
    """`glass scan ARGS` judging images of any size: the tiny test models look at 32 px views."""
    return runner.invoke(app, ["scan", *map(str, args), "--min-side", "1"])


def noise_image(width: int, height: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), "RGB")


def dims(value_info) -> list:
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Tiny GLASS and baseline checkpoints and their exports, made through the CLI:
    GLASS with the default output name (run in an empty folder), the baseline with -o and
    --opset 19. Keys: glass, base (checkpoints), glass.onnx, base.onnx, and the CLI results."""
    folder = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    model, config = new_model("glass", "test_efficientnet", "test_resnet", **TINY)
    glass = checkpoint.save(model.eval(), config, folder / "tiny-glass")
    torch.manual_seed(1)
    model, config = new_model("baseline", "test_efficientnet", **TINY)
    base = checkpoint.save(model.eval(), config, folder / "tiny-baseline")
    out_dir = tmp_path_factory.mktemp("export")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(out_dir)
        glass_result = glass_export("--onnx", "--weights", glass)
    base_onnx = out_dir / "sub" / "base.onnx"
    base_result = glass_export("--onnx", "--model", base, "-o", base_onnx, "--opset", "19")
    return {
        "glass": glass, "glass.onnx": out_dir / "tiny-glass.onnx", "glass.result": glass_result,
        "base": base, "base.onnx": base_onnx, "base.result": base_result, "out_dir": out_dir,
    }


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Generated images: stratified and fallback crop sampling, several formats and modes."""
    d = tmp_path_factory.mktemp("photos")
    noise_image(640, 480, 1).save(d / "wide.jpg", quality=90)
    noise_image(300, 500, 2).save(d / "tall.png")
    noise_image(100, 80, 3).convert("L").save(d / "grey.png")
    noise_image(20, 12, 4).save(d / "small.webp")
    noise_image(256, 256, 5).save(d / "square.bmp")
    (d / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    return d


# ---------------------------------------------------------------------------- export

CHECK_LINE = re.compile(
    r"onnx\.checker passed; ORT vs torch on (\d) inputs \((B x K|B): ([\dx ]+)\): "
    r"max \|diff\| (\S+) \(limit (\S+)\)"
)


def error_line(result) -> str:
    """The error line of a failed export: the last on stderr, after the steps it began."""
    *steps, line = result.stderr.strip().splitlines()
    assert all(s.startswith("export step ") for s in steps), steps
    return line


def test_cli_export_writes_one_verified_self_contained_file(models):
    result, out = models["glass.result"], models["glass.onnx"]
    assert result.exit_code == 0, result.output
    # one file: no .data sidecar, no temp files
    assert sorted(p.name for p in models["out_dir"].iterdir()) == ["sub", "tiny-glass.onnx"]
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and result.stderr.splitlines() == [  # dynamo's chatter is hidden, the steps are shown
        f"export step {i}/5: {name}" for i, name in enumerate(export.STEPS, 1)
    ]
    size = f"{out.stat().st_size / 1e6:.1f}"
    assert lines[0] == f"wrote tiny-glass.onnx: glass test_efficientnet+test_resnet K=3 S=32, fp32, opset 18, {size} MB"
    m = CHECK_LINE.fullmatch(lines[1])
    assert m, lines[1]
    assert m.group(1, 2, 3, 5) == ("3", "B x K", "1x3 3x3 2x5", "1e-04")
    assert float(m.group(4)) <= 1e-4

    model = onnx.load(str(out))
    onnx.checker.check_model(model, full_check=True)
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [18]
    assert [(i.name, dims(i)) for i in model.graph.input] == [
        ("global", ["batch", 3, 32, 32]),
        ("crops", ["batch", "num_crops", 3, 32, 32]),
    ]
    assert [(o.name, dims(o)) for o in model.graph.output] == [("p_ai", ["batch"]), ("attention", ["batch", "num_crops"])]
    assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer)


def test_metadata_round_trip(models):
    out, tiny_glass = models["glass.onnx"], models["glass"]
    meta = onnxfile.read_metadata(out)
    config = checkpoint.read_config(tiny_glass)
    assert ModelConfig.from_json(meta["glass_config"]) == config == onnxfile.read_config(out)
    assert meta["glass_format"] == "glass-onnx/1" and meta["glass_version"] == __version__
    assert meta["glass_model"] == "glass test_efficientnet+test_resnet K=3 S=32"
    assert meta["precision"] == "fp32" and meta["classes"] == "real,ai" and meta["threshold"] == "0.5"
    assert meta["source_sha256"] == file_sha256(tiny_glass)
    assert meta["exporter"] == f"torch {torch.__version__} (dynamo)"
    # what the ONNX engine reads back is what the checkpoint said
    engine = OnnxEngine(out, device="cpu")
    assert engine.config == config and engine.config.local_norm.mean == (0.5, 0.5, 0.5)


@pytest.mark.heavy
def test_fp16_export_of_an_in_memory_model(tmp_path):
    torch.manual_seed(2)
    model, config = new_model("glass", "test_efficientnet", "test_resnet", **TINY)
    model.train()
    out = tmp_path / "half.onnx"
    report = export.export((model, config), out, fp16=True)
    assert model.training and next(model.parameters()).dtype == torch.float32  # caller's model untouched
    assert (report.precision, report.tolerance, report.opset) == ("fp16", 1e-2, 18)
    assert report.path == out and report.nbytes == out.stat().st_size and report.passed
    assert 0 < report.max_diff <= 1e-2  # half precision differs, but within the limit
    assert [(c.batch, c.crops) for c in report.checks] == [(1, 3), (3, 3), (2, 5)]

    graph = onnx.load(str(out)).graph
    kinds = {t.data_type for t in graph.initializer if len(t.dims) >= 2}
    assert kinds == {onnx.TensorProto.FLOAT16}  # every weight matrix / conv kernel in half
    assert [i.type.tensor_type.elem_type for i in graph.input] == [onnx.TensorProto.FLOAT] * 2  # fp32 I/O
    meta = onnxfile.read_metadata(out)
    assert meta["precision"] == "fp16" and "source_sha256" not in meta

    # and in the engine, against the fp32 torch model, on a K the export never saw
    rng = np.random.default_rng(5)
    g = rng.standard_normal((2, 3, 32, 32), dtype=np.float32)
    c = rng.standard_normal((2, 4, 3, 32, 32), dtype=np.float32)
    model.eval()
    with torch.inference_mode():
        logits, attn = model(torch.from_numpy(g), torch.from_numpy(c))
    pred = OnnxEngine(out, device="cpu").predict(g, c)
    assert np.abs(pred.p_ai - torch.softmax(logits, 1)[:, 1].numpy()).max() <= 1e-2
    assert np.abs(pred.attention - attn.numpy()).max() <= 1e-2


def test_cli_baseline_export_has_the_global_input_only(models):
    out, result = models["base.onnx"], models["base.result"]
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"wrote {out}: baseline test_efficientnet S=32, fp32, opset 19, ")
    m = CHECK_LINE.fullmatch(lines[1])
    assert m and m.group(1, 2, 3) == ("2", "B", "1 3") and float(m.group(4)) <= 1e-4
    model = onnx.load(str(out))
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [19]
    assert [(i.name, dims(i)) for i in model.graph.input] == [("global", ["batch", 3, 32, 32])]
    assert [(o.name, dims(o)) for o in model.graph.output] == [("p_ai", ["batch"])]
    assert OnnxEngine(out, device="cpu").predict(np.zeros((4, 3, 32, 32), np.float32), None).attention is None


def test_parity_failure_exits_4_and_writes_nothing(tmp_path, models, monkeypatch):
    monkeypatch.setitem(export.TOLERANCES, "fp16", 1e-12)  # fp16 cannot match fp32 this closely
    out = tmp_path / "out" / "strict.onnx"
    result = glass_export("--onnx", "--weights", models["base"], "--fp16", "-o", out)
    assert result.exit_code == 4 and result.stdout == ""
    line = error_line(result)
    assert re.fullmatch(
        rf"glass: error: {re.escape(str(out))}: ONNX Runtime disagrees with torch: max \|diff\| \S+ exceeds "
        r"1e-12 \(fp16\); nothing written",
        line,
    ), line
    assert not out.parent.exists() or list(out.parent.iterdir()) == []


def test_bad_inputs_are_one_line_errors(tmp_path, models):
    tiny_glass = models["glass"]
    missing = tmp_path / "missing.safetensors"
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"this is not safetensors")
    out = tmp_path / "x.onnx"
    folder = tmp_path / "folder.onnx"
    folder.mkdir()
    cases = [
        (["--weights", tiny_glass, "-o", out], "name the export format: --onnx (the only one so far)"),
        (["--onnx", "--weights", missing, "-o", out], f"{missing}: no such checkpoint (shipped models: default, baseline, glass)"),
        (["--onnx", "--weights", garbage, "-o", out], None),
        (["--onnx", "--weights", tiny_glass, "-o", tmp_path / "x.safetensors"],
         f"{tmp_path / 'x.safetensors'}: the output file name must end in .onnx"),
        (["--onnx", "--weights", tiny_glass, "-o", out, "--opset", "17"],
         "opset 17 is not supported: the exporter needs opset 18 or newer"),
        (["--onnx", "--weights", tiny_glass, "-o", folder], f"{folder}: is a folder; give a file name ending in .onnx"),
        (["--onnx", "--weights", tiny_glass, "-o", garbage / "sub" / "x.onnx"],
         f"{garbage / 'sub' / 'x.onnx'}: cannot write there: {garbage} is not a folder"),
    ]
    for args, message in cases:
        result = glass_export(*args)
        assert result.exit_code == 2 and result.stdout == "", (args, result.output)
        line = error_line(result)
        assert "\n" not in line and "Traceback" not in result.stderr
        if message is None:
            assert line.startswith(f"glass: error: {garbage}: not a readable safetensors file"), line
        else:
            assert line == f"glass: error: {message}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder.onnx", "garbage.safetensors"]


def test_without_weights_says_how_to_get_them(monkeypatch):
    monkeypatch.setattr("glass_cli.models.checkpoint.default_weights", lambda engine="auto": None)
    result = glass_export("--onnx")
    assert result.exit_code == 2
    assert result.stderr.strip().startswith("glass: error: no model weights:") and "--weights" in result.stderr


def test_default_output_names():
    assert export.default_output("runs/a/best.safetensors") == export.default_output("runs/a/best")
    assert str(export.default_output("runs/a/best.safetensors")) == "best.onnx"
    assert str(export.default_output("m.v2.json", fp16=True)) == "m.v2.fp16.onnx"


def scan_json(tmp_path, name, *args):
    out = tmp_path / f"{name}.json"
    result = scan(*args, "--json", out)
    assert out.is_file(), result.output
    return result, json.loads(out.read_text())


# ---------------------------------------------------------------------------- engine and scan


@pytest.mark.parametrize("arch", ["glass", "base"])
def test_onnx_scan_gives_torch_scores_and_verdicts(tmp_path, models, photos, arch):
    t_result, t_doc = scan_json(tmp_path, "torch", photos, "--weights", models[arch], "--batch-size", "2", "--precision", "fp32")
    o_result, o_doc = scan_json(tmp_path, "onnx", photos, "--model", models[f"{arch}.onnx"], "--batch-size", "2")
    assert o_result.exit_code == t_result.exit_code and o_result.exit_code in (1, 3)
    assert o_doc["device"] == "cpu via onnxruntime CPUExecutionProvider" and t_doc["device"] == "cpu"
    assert o_doc["model"]["config"] == t_doc["model"]["config"]
    assert o_doc["model"]["format"] == "onnx" and o_doc["model"]["precision"] == "fp32"
    assert o_doc["summary"] == t_doc["summary"]
    assert (o_doc["summary"]["scanned"], o_doc["summary"]["errors"]) == (5, 1)  # the broken file has no verdict
    assert len(o_doc["files"]) == len(t_doc["files"]) == 6
    for o, t in zip(o_doc["files"], t_doc["files"]):
        assert (o["path"], o["verdict"], o["sampling"], o["error"]) == (t["path"], t["verdict"], t["sampling"], t["error"])
        if t["verdict"] == "error":
            assert o["p_ai"] is None
            continue
        assert abs(o["p_ai"] - t["p_ai"]) <= 1e-4
        o_crops, t_crops = ({tuple(c["box"]): c["weight"] for c in rec["crops"]} for rec in (o, t))  # ranks may swap on ties
        assert o_crops.keys() == t_crops.keys() and all(abs(o_crops[b] - t_crops[b]) <= 1e-4 for b in o_crops)
        assert [c["rank"] for c in o["crops"]] == list(range(1, len(o["crops"]) + 1))
        assert len(o["crops"]) == (3 if arch == "glass" else 0)
    assert "device: cpu via onnxruntime CPUExecutionProvider" in o_result.stdout


def test_verdicts_agree_at_a_threshold_between_scores(tmp_path, models, photos):
    """Pick a threshold in the middle of the torch scores: both engines flag the same files."""
    _, t_doc = scan_json(tmp_path, "t", photos, "--weights", models["glass"])
    scores = sorted(f["p_ai"] for f in t_doc["files"] if f["p_ai"] is not None)
    middle = round((scores[1] + scores[2]) / 2, 9)
    assert min(abs(s - middle) for s in scores) > 1e-5  # a margin well above the engines' 1e-4 bound on noise
    runs = [scan(photos, flag, models[key], "--threshold", f"{middle:.9f}", "--json", tmp_path / f"{key}.j")
            for flag, key in (("--weights", "glass"), ("--model", "glass.onnx"))]
    assert runs[0].exit_code == runs[1].exit_code == 1
    docs = [json.loads((tmp_path / f"{key}.j").read_text()) for key in ("glass", "glass.onnx")]
    assert [f["verdict"] for f in docs[0]["files"]] == [f["verdict"] for f in docs[1]["files"]]
    assert docs[0]["summary"] == docs[1]["summary"] and docs[0]["summary"]["flagged"] == 3


@pytest.fixture(scope="module")
def glass_pair(models):
    """(OnnxEngine, torch model) for the same tiny GLASS checkpoint."""
    return OnnxEngine(models["glass.onnx"], device="cpu"), checkpoint.load(models["glass"])[0]


@pytest.mark.parametrize("batch,k", [(1, 1), (4, 3), (2, 6)])
def test_dynamic_batch_and_k_match_torch(glass_pair, batch, k):
    """The export saw K=3 and B=2; any B and K run, with torch's numbers."""
    engine, model = glass_pair
    rng = np.random.default_rng(batch * 10 + k)
    g = rng.standard_normal((batch, 3, 32, 32), dtype=np.float32)
    c = rng.standard_normal((batch, k, 3, 32, 32), dtype=np.float32)
    with torch.inference_mode():
        logits, attn = model(torch.from_numpy(g), torch.from_numpy(c))
    pred = engine.predict(g, c)
    assert pred.p_ai.shape == (batch,) and pred.attention.shape == (batch, k)
    assert pred.p_ai.dtype == np.float64 and pred.attention.dtype == np.float64
    assert np.abs(pred.p_ai - torch.softmax(logits, 1)[:, 1].numpy()).max() <= 1e-4
    assert np.abs(pred.attention - attn.numpy()).max() <= 1e-4
    assert np.allclose(pred.attention.sum(axis=1), 1.0, atol=1e-5)


def test_engine_reads_config_and_reports_provider(models):
    engine = OnnxEngine(models["glass.onnx"], device="auto", threads=1)
    assert engine.config == checkpoint.read_config(models["glass"])
    assert engine.session.get_session_options().intra_op_num_threads == 1
    if not cuda_gpus():
        assert engine.device == "cpu via onnxruntime CPUExecutionProvider"
    default = OnnxEngine(models["glass.onnx"], device="cpu")
    assert default.session.get_session_options().intra_op_num_threads == len(os.sched_getaffinity(0))
    with pytest.raises(EngineError, match="this GLASS model needs crops, got none"):
        default.predict(np.zeros((1, 3, 32, 32), np.float32), None)


def test_engine_choice_by_suffix_and_flag(models):
    assert engine_kind("m.onnx") == "onnx" and engine_kind("m.ONNX") == "onnx"
    assert engine_kind("m.safetensors") == "torch" and engine_kind("m") == "torch"
    assert isinstance(open_engine(models["glass.onnx"], "auto", "cpu"), OnnxEngine)
    with pytest.raises(EngineError, match="unknown engine 'tflite'"):
        engine_kind("m.onnx", "tflite")


def test_scan_errors_are_one_line(tmp_path, models, photos):
    not_onnx = tmp_path / "text.onnx"
    not_onnx.write_text("hello")
    foreign = tmp_path / "foreign.onnx"  # a valid ONNX model that glass did not make
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", ["x"], ["y"])],
        "g",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])],
    )
    onnx.save(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 18)], ir_version=10), foreign)
    missing = tmp_path / "missing.onnx"
    cases = [
        (["--model", missing], f"{missing}: no such ONNX model (shipped models: default, baseline, glass)"),
        (["--model", foreign],
         f"{foreign}: not a glass ONNX export (no glass_config in its metadata; make one with glass export --onnx)"),
        (["--model", models["glass.onnx"], "--engine", "torch"],
         f"{models['glass.onnx']}: an ONNX model runs with --engine onnx (or auto), not torch"),
        (["--weights", models["glass"], "--engine", "onnx"],
         f"{models['glass']}: --engine onnx needs a .onnx model; make one with: glass export --onnx --weights {models['glass']}"),
    ]
    for args, message in cases:
        result = scan(photos, *args)
        assert result.exit_code == 2 and result.stdout == "", (args, result.output)
        assert result.stderr.strip() == f"glass: error: {message}"
    result = scan(photos, "--model", not_onnx)
    assert result.exit_code == 2 and result.stdout == ""
    line = result.stderr.strip()
    assert line.startswith(f"glass: error: {not_onnx}: not a readable ONNX model (") and "\n" not in line


@pytest.mark.skipif(bool(cuda_gpus()), reason="needs a machine without a CUDA GPU")
def test_cuda_requested_without_gpu(models, photos):
    result = scan(photos, "--model", models["glass.onnx"], "--device", "cuda")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.strip() == (
        "glass: error: --device cuda was asked for, but the NVIDIA driver shows no CUDA GPUs on this machine"
    )


def test_onnx_scan_runs_without_torch(models, photos, tmp_path):
    """The ONNX path needs numpy, Pillow and onnxruntime only: torch and timm stay unimported."""
    code = (
        "import sys, json\n"
        "from typer.testing import CliRunner\n"
        "from glass_cli.cli import app\n"
        f"r = CliRunner().invoke(app, ['scan', {str(photos)!r}, '--model', {str(models['glass.onnx'])!r}, '--json', '-', '--min-side', '1'])\n"
        "doc = json.loads(r.stdout)\n"
        "assert r.exit_code in (0, 1, 3) and doc['summary']['scanned'] == 5, r.output\n"
        "loaded = sorted(m for m in ('torch', 'timm', 'torchvision') if m in sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "GLASS_WEIGHTS": ""}, cwd=tmp_path)


def test_json_to_stdout_stays_clean_with_onnx(models, photos):
    result = scan(photos, "--model", models["base.onnx"], "--json", "-")
    doc = json.loads(result.stdout)
    assert doc["device"] == "cpu via onnxruntime CPUExecutionProvider"
    assert Path(doc["model"]["weights"]) == models["base.onnx"]
    assert doc["model"]["sha256"] == file_sha256(models["base.onnx"])


def test_cuda_that_cannot_start_is_refused_or_reported(models, monkeypatch):
    """A GPU the driver shows but ORT cannot use: --device cuda refuses, auto says it ran on the CPU."""
    monkeypatch.setattr("glass_cli.inference.engines.cuda_gpus", lambda: ["Pretend GPU"])
    path = models["base.onnx"]
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers() and not cuda_gpus():
        with pytest.raises(EngineError) as info:
            OnnxEngine(path, device="cuda")
        assert str(info.value) == (
            "--device cuda was asked for, but onnxruntime could not start its CUDA provider and would run on "
            f"CPUExecutionProvider (are the CUDA and cuDNN libraries onnxruntime-gpu {ort.__version__} needs installed?)"
        )
        engine = OnnxEngine(path, device="auto")
        assert engine.device == "cpu via onnxruntime CPUExecutionProvider"
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    with pytest.raises(EngineError, match=r"^--device cuda was asked for, but this onnxruntime \S+ has no CUDA provider"):
        OnnxEngine(path, device="cuda")
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    with pytest.raises(EngineError, match=r"^--device cuda:1 was asked for, but the NVIDIA driver shows 1 CUDA GPU on"):
        OnnxEngine(path, device="cuda:1")
    with pytest.raises(EngineError, match="unknown device 'tpu'"):
        OnnxEngine(path, device="tpu")


@pytest.mark.heavy
def test_an_int8_copy_calibrated_on_labelled_pictures(tmp_path, models, photos, tiny_data):
    out = tmp_path / "tiny.int8.onnx"
    result = glass_export("--onnx", "--int8", "--calibration", tiny_data, "--calibration-images", "12", "--weights",
                          models["glass"], "-o", out)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == (f"wrote {out}: glass test_efficientnet+test_resnet K=3 S=32, int8, "
                                             f"{out.stat().st_size / 1e6:.1f} MB; calibrated on 12 pictures (6 real, 6 AI, 1 sources)")
    meta = onnxfile.read_metadata(out)
    assert meta["precision"] == "int8" and json.loads(meta["int8_calibration"])["images"] == 12
    assert onnxfile.model_id(meta, "x") == onnxfile.model_id(onnxfile.read_metadata(models["glass.onnx"]), "y") + "/int8"
    int8, fp32 = (json.loads(scan(photos, "--model", m, "--json", "-").stdout) for m in (out, models["glass.onnx"]))
    pairs = [(a["p_ai"], b["p_ai"]) for a, b in zip(int8["files"], fp32["files"]) if a["p_ai"] is not None]
    assert pairs and max(abs(a - b) for a, b in pairs) < 0.1  # integer arithmetic on a random tiny model: close, not equal
    assert int8["model"]["id"].endswith("/int8") and int8["model"]["precision"] == "int8"


def test_int8_needs_calibration_pictures(models, tmp_path):
    result = glass_export("--onnx", "--int8", "--weights", models["glass"], "-o", tmp_path / "x.onnx")
    assert result.exit_code == 2
    assert error_line(result) == "glass: error: --int8 needs --calibration DATA (labelled pictures) and an fp32 export (not --fp16)"
