"""The one preprocessing step: RGB image -> global view, K native-resolution crops, boxes.

Training, ``glass scan`` with the torch engine and the ONNX engine all call ``build_views``,
so the model sees identical inputs wherever it runs. It works in numpy and Pillow only (no
torch), so the ONNX path does not need torch at all.

- Global view: the whole image resized to S x S (aspect ratio not kept, as in the paper),
  with the global backbone's resampling filter and normalisation.
- Local crops: S x S windows cut at native resolution where ``sampling.sample_crops`` puts
  them, normalised for the local backbone. Any part of a window outside the image is 0 after
  normalisation (the backbone's mean colour), so padding carries no colour signal. With more
  than one scale (``ModelConfig.crop_scales``), scale m adds K windows of m*S native pixels,
  placed the same way on a grid of m*S cells and box-filtered down to S x S. With texture-aware
  placement (``ModelConfig.placement``) each window is the most textured of a few candidates
  in its cell (``texture_scores``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from glass_cli.config import ModelConfig, Normalization
from glass_cli.preprocess.sampling import CropPlan, sample_crops

_RESAMPLE = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
    "hamming": Image.Resampling.HAMMING,
}


def scale_image(
    image: Image.Image,
    factor: float,
    *,
    resample: Image.Resampling = Image.Resampling.BICUBIC,
    reducing_gap: float = 3.0,
    cap: int | None = None,
) -> Image.Image:
    """``image`` resized by ``factor`` (each side rounded, at least 1 and, with ``cap``, at
    most ``cap`` pixels): the one resize of augmentation, eval's perturbations and previews."""
    w = max(1, round(image.width * factor))
    h = max(1, round(image.height * factor))
    if cap is not None:
        w, h = min(cap, w), min(cap, h)
    return image.resize((w, h), resample, reducing_gap=reducing_gap)


@dataclass
class Views:
    global_view: np.ndarray
    """float32 [3, S, S]"""
    crops: np.ndarray | None
    """float32 [K, 3, S, S]; None for the baseline, which looks at the global view only."""
    plan: CropPlan | None
    image_size: tuple[int, int]
    """(width, height) of the image the views came from."""


PIXEL_MODES = ("RGB", "RGBX")
"""Picture modes the views are cut from: RGB, or RGBX (the same pixels plus a padding byte,
the layout a JPEG is decoded to when its buffer is shared with Pillow, ``io.image``)."""


def normalize(pixels: np.ndarray, norm: Normalization) -> np.ndarray:
    """uint8 [H, W, 3] (or [H, W, 4], the fourth channel ignored) -> float32 [3, H, W],
    (x / 255 - mean) / std."""
    pixels = pixels[..., :3]
    mean = np.asarray(norm.mean, dtype=np.float32) * 255.0
    inv_std = 1.0 / (np.asarray(norm.std, dtype=np.float32) * 255.0)
    out = (pixels.astype(np.float32) - mean) * inv_std
    return np.ascontiguousarray(out.transpose(2, 0, 1))


def resize_view(image: Image.Image, size: int, norm: Normalization) -> np.ndarray:
    resample = _RESAMPLE.get(norm.interpolation, Image.Resampling.BICUBIC)
    # reducing_gap: shrink by an integer factor first (box filter), then resample the last
    # 3x or less; about 3x faster on camera files and visually identical. Deterministic, and
    # the only resize train and scan use, so both see the same pixels.
    resized = image.resize((size, size), resample, reducing_gap=3.0) if image.size != (size, size) else image
    return normalize(np.asarray(resized), norm)


def cut_crop(image: Image.Image, box: tuple[int, int, int, int], norm: Normalization, factor: int = 1) -> np.ndarray:
    """One crop, zero-padded (after normalisation) where it leaves the image; ``factor`` > 1
    shrinks the window by that integer factor with a box filter (each output pixel is the mean
    of a factor x factor block)."""
    left, top, right, bottom = box
    width, height = image.size
    out = np.zeros((3, (bottom - top) // factor, (right - left) // factor), dtype=np.float32)
    r, b = min(right, width), min(bottom, height)
    if r > left and b > top:
        region = image.crop((left, top, r, b))
        if factor > 1:
            region = region.reduce(factor)
        h, w = min(region.height, out.shape[1]), min(region.width, out.shape[2])
        out[:, :h, :w] = normalize(np.asarray(region), norm)[:, :h, :w]
    return out


def scale_seed(seed: int, index: int) -> int:
    """The placement seed of the ``index``-th crop scale (the first keeps ``seed`` itself)."""
    return seed if index == 0 else (seed + 0x9E3779B97F4A7C15 * index) % (1 << 63)


def texture_scores(boxes, size: tuple[int, int], energy) -> list[float]:
    """The texture of each box: ``energy(left, top, right, bottom)`` of its part inside a
    picture of ``size`` (width, height), 0 when that part is under 2 pixels on a side. The
    numpy path (``build_views``) and the GPU path (``device.device_views``) pass their own
    ``energy``; both compute ``window_energy``'s integer sums, so they place crops alike."""
    width, height = size
    scores = []
    for left, top, right, bottom in boxes:
        r, b = min(right, width), min(bottom, height)
        scores.append(0.0 if r - left < 2 or b - top < 2 else energy(left, top, r, b))
    return scores


def window_energy(dx: int, dy: int, h: int, w: int) -> float:
    """Texture of an h x w window whose grey (the sum of the three channels) has absolute
    neighbour differences summing to ``dx`` across and ``dy`` down: their mean, summed.
    Integer sums and one division, the same number to the last bit on every path."""
    return float(dx + dy) / float(h * w)


def _pillow_energy(image: Image.Image):
    def energy(left: int, top: int, right: int, bottom: int) -> float:
        grey = np.asarray(image.crop((left, top, right, bottom)))[..., :3].astype(np.int32).sum(axis=2)
        dx, dy = int(np.abs(np.diff(grey, axis=1)).sum()), int(np.abs(np.diff(grey, axis=0)).sum())
        return window_energy(dx, dy, bottom - top, right - left)

    return energy


def plan_crops(width: int, height: int, config: ModelConfig, seed: int, texture=None) -> tuple[CropPlan, list[int]]:
    """Every crop window of every scale in one plan, and the scale factor of each box.
    ``texture`` scores candidate boxes under texture-aware placement (``ModelConfig.placement``);
    the view builders pass it, and a plan without it is the uniform one."""
    plans, factors = [], []
    if config.placement != "texture":
        texture = None
    elif texture is None:
        raise ValueError("texture-aware placement needs the pixels (a texture scorer)")
    for i, m in enumerate(config.crop_scales):
        plans.append(sample_crops(width, height, config.num_crops, config.crop_size * m, scale_seed(seed, i), texture))
        factors += [m] * config.num_crops
    if len(plans) == 1:
        return plans[0], factors
    first = plans[0]
    boxes = tuple(b for p in plans for b in p.boxes)
    cells = tuple(c for p in plans for c in p.cells)
    path = "fallback" if any(p.path == "fallback" for p in plans) else "stratified"  # reported as the file's sampling
    return CropPlan(boxes, path, first.grid, cells), factors


def build_views(image: Image.Image, config: ModelConfig, seed: int, crops_from: Image.Image | None = None) -> Views:
    """Prepare one RGB image for the model described by ``config``; crops placed by ``seed``.

    ``crops_from`` (training only, ``TrainConfig.local_native``) cuts the crops from another
    picture of the same image, its native-resolution copy; scan never passes it."""
    if image.mode not in PIXEL_MODES:
        raise ValueError(f"build_views needs an RGB image, got mode {image.mode}")
    s = config.crop_size
    global_view = resize_view(image, s, config.global_norm)
    if not config.uses_crops:
        return Views(global_view, None, None, image.size)
    source = image if crops_from is None else crops_from
    if source.mode not in PIXEL_MODES:
        raise ValueError(f"build_views needs an RGB image, got mode {source.mode}")
    plan, factors = plan_crops(source.width, source.height, config, seed, lambda boxes: texture_scores(boxes, source.size, _pillow_energy(source)))
    crops = np.stack([cut_crop(source, box, config.local_norm, m) for box, m in zip(plan.boxes, factors)])
    return Views(global_view, crops, plan, source.size)


def rgb(image: Image.Image) -> Image.Image:
    """``image`` as a plain RGB picture (a copy only when it is RGBX)."""
    return image if image.mode == "RGB" else image.convert("RGB")


def collate(views: list[Views]) -> tuple[np.ndarray, np.ndarray | None]:
    """Stack views into a batch: global [B, 3, S, S] and crops [B, K, 3, S, S] (or None)."""
    g = np.stack([v.global_view for v in views])
    if views[0].crops is None:
        return g, None
    return g, np.stack([v.crops for v in views])
