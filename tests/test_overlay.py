"""The attention overlay when crops overlap: a native crop inside a window of twice its size."""

from __future__ import annotations

from PIL import Image

from glass_cli.outputs.pictures import VERDICT_COLOURS, annotated, overlay
from glass_cli.results import CropScore, Explanation, ScanResult


def test_a_box_inside_another_keeps_its_outline_and_number():
    grey = (128, 128, 128)
    outer, inner = (10, 10, 190, 190), (20, 100, 110, 190)  # inner shares the outer's bottom edge, ranks below it
    result = ScanResult(
        path="nested.png", verdict="ai", p_ai=0.9, threshold=0.5, width=200, height=200,
        crops=[CropScore(inner, 0.3), CropScore(outer, 0.7)],
        explanation=Explanation(preview=Image.new("RGB", (200, 200), grey), scale=1.0),
    )
    picture = annotated(result)
    red = VERDICT_COLOURS["ai"]
    assert picture.getpixel((10, 50)) == red  # the outer box's left edge
    assert picture.getpixel((110, 150)) == red  # the inner box's right edge, inside the outer fill
    assert picture.getpixel((60, 101)) == red  # and its top edge
    inside_both, inside_outer = picture.getpixel((60, 150)), picture.getpixel((150, 50))
    assert inside_both != inside_outer != grey  # both fills blend where the boxes overlap
    assert inside_both[0] > inside_outer[0] > grey[0] and inside_both[1] < inside_outer[1] < grey[1]
    label = picture.crop((22, 102, 40, 118))  # the inner box's number tag: white text on the verdict colour
    colours = {c for _, c in label.getcolors(4096)}
    assert red in colours and any(min(c) > 200 for c in colours)  # anti-aliased white glyphs


def test_a_small_picture_is_padded_as_the_model_sees_it_and_its_one_box_drawn_once():
    from glass_cli.config import ModelConfig
    from glass_cli.outputs.pictures import box_groups
    from glass_cli.scan.step import explanation

    picture = Image.new("RGB", (100, 80), (10, 200, 10))
    config = ModelConfig(arch="glass", global_backbone="x", local_backbone="x", num_crops=4, crop_size=224)
    expl = explanation(picture, [(0, 0, 224, 224)] * 4, config)
    mean = tuple(round(255 * m) for m in config.local_norm.mean)
    assert expl.crops[0].size == (224, 224) and expl.crops[0].getpixel((150, 150)) == mean  # not black
    assert expl.crops[0].getpixel((50, 40)) == (10, 200, 10)
    result = ScanResult(path="small.png", verdict="ai", p_ai=0.9, threshold=0.5, width=100, height=80, model_id="sha256:x",
                        crops=[CropScore((0, 0, 224, 224), 0.25) for _ in range(4)], explanation=expl)
    assert [ranks for ranks, _ in box_groups(result)] == [[1, 2, 3, 4]]
    shown = overlay(result, crop_size=224)
    assert shown.width >= 100 + 224  # the crop the model saw beside the picture


def test_on_a_large_photo_the_top_crops_stand_beside_it_at_native_size():
    from glass_cli.config import ModelConfig
    from glass_cli.scan.step import explanation

    picture = Image.new("RGB", (8000, 6000), (90, 90, 200))
    boxes = [(100, 100, 324, 324), (4000, 3000, 4224, 3224), (7000, 5000, 7224, 5224), (10, 5700, 234, 5924)]
    config = ModelConfig(arch="glass", global_backbone="x", local_backbone="x", num_crops=4, crop_size=224)
    result = ScanResult(path="/photos/big.jpg", verdict="real", p_ai=0.12, threshold=0.79, width=8000, height=6000,
                        model_id="sha256:abc", crops=[CropScore(b, w) for b, w in zip(boxes, (0.4, 0.3, 0.2, 0.1))],
                        explanation=explanation(picture, boxes, config))
    shown = overlay(result, crop_size=224)
    assert shown.width >= 1024 + 224 and shown.height > 768  # preview plus a column of 224 px crops, header, legend
    assert VERDICT_COLOURS["real"] in {c for _, c in shown.crop((0, 0, shown.width, 60)).getcolors(1 << 20)}  # header line
