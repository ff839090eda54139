"""The attention overlay when crops overlap: a native crop inside a window of twice its size."""

from __future__ import annotations

from PIL import Image

from glass_cli.outputs.pictures import VERDICT_COLOURS, overlay
from glass_cli.results import CropScore, Explanation, ScanResult


def test_a_box_inside_another_keeps_its_outline_and_number():
    grey = (128, 128, 128)
    outer, inner = (10, 10, 190, 190), (20, 100, 110, 190)  # inner shares the outer's bottom edge, ranks below it
    result = ScanResult(
        path="nested.png", verdict="ai", p_ai=0.9, threshold=0.5, width=200, height=200,
        crops=[CropScore(inner, 0.3), CropScore(outer, 0.7)],
        explanation=Explanation(preview=Image.new("RGB", (200, 200), grey), scale=1.0),
    )
    picture = overlay(result)
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
