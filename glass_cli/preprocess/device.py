"""The views of ``views.build_views``, built with torch on the tensor's device (a GPU).

``glass scan --decode gpu`` decodes JPEGs on the GPU and cuts the views there, so the
pixels never come back to the host. For the model to see the same inputs as on the CPU,
this module reproduces Pillow's arithmetic rather than approximating it with torch's own
resize:

- ``reduce``: Pillow's box reduction (``Image.reduce``): per block, the sum plus half the
  block's pixel count, times a 24-bit fixed-point reciprocal computed in single precision,
  shifted down; partial blocks at the right and bottom edge divide by their own count.
- ``resample``: Pillow's two-pass convolution (``Image.resize``, 8 bits per channel): the
  filter weights of each output pixel normalised in double precision, turned into 22-bit
  fixed point, an integer dot product rounded by adding half and shifting, clipped to
  0..255 after each pass; the passes run in Pillow's order (vertical first when the height
  shrinks more than twice as much as the width). The integer products are summed in
  float64, exact for every possible input (sums stay far below 2**53).
- ``resize_like_pillow``: ``Image.resize(..., reducing_gap=3.0)``: the integer-factor
  reduction, then the resample of the rest from a fractional box, as Pillow does it.

So on the same decoded pixels, ``device_views`` equals ``views.build_views`` exactly
(tests/test_device_views.py checks it on the CPU, for many sizes and both crop scales). On
a GPU the decoder itself (nvJPEG) may differ from libjpeg-turbo by a level here and there;
that difference is measured, not hidden (bench/gpu_decode.py).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from glass_cli.config import ModelConfig, Normalization
from glass_cli.preprocess.views import Views, plan_crops, texture_scores, window_energy

PRECISION_BITS = 22
"""Pillow's fixed-point precision for 8-bit resampling (32 - 8 - 2)."""
BICUBIC_SUPPORT = 2.0
REDUCING_GAP = 3.0
"""The same gap ``views.resize_view`` passes to Pillow."""


def _bicubic(x: np.ndarray) -> np.ndarray:
    a = -0.5
    x = np.abs(x)
    near = ((a + 2.0) * x - (a + 3.0)) * x * x + 1
    far = (((x - 5) * x + 8) * x - 4) * a
    return np.where(x < 1.0, near, np.where(x < 2.0, far, 0.0))


@lru_cache(maxsize=256)
def _weights(in_size: int, in0: float, in1: float, out_size: int) -> np.ndarray:
    """Pillow's fixed-point bicubic weights as a dense [out_size, in_size] float64 matrix
    (whole numbers); ``in0``/``in1`` are the box edges, single precision as in Pillow."""
    in0_f, in1_f = np.float32(in0), np.float32(in1)
    scale = float(np.float32(in1_f - in0_f)) / out_size
    filterscale = max(scale, 1.0)
    support = BICUBIC_SUPPORT * filterscale
    ksize = int(np.ceil(support)) * 2 + 1
    inv = 1.0 / filterscale
    centers = float(in0_f) + (np.arange(out_size) + 0.5) * scale
    xmin = np.maximum(np.trunc(centers - support + 0.5).astype(np.int64), 0)
    xmax = np.minimum(np.trunc(centers + support + 0.5).astype(np.int64), in_size) - xmin
    taps = np.arange(ksize)
    valid = taps[None, :] < xmax[:, None]
    w = np.where(valid, _bicubic((taps[None, :] + xmin[:, None] - centers[:, None] + 0.5) * inv), 0.0)
    total = np.zeros(out_size)
    for j in range(ksize):  # in tap order, as Pillow sums them
        total = total + w[:, j]
    w = np.where(total[:, None] != 0.0, w / np.where(total == 0.0, 1.0, total)[:, None], w)
    scaled = w * float(1 << PRECISION_BITS)
    fixed = np.trunc(np.where(w < 0, scaled - 0.5, scaled + 0.5))
    dense = np.zeros((out_size, in_size))
    rows = np.repeat(np.arange(out_size), ksize)
    cols = (xmin[:, None] + taps[None, :]).ravel()
    keep = valid.ravel()
    dense[rows[keep], cols[keep]] = fixed.ravel()[keep]
    return dense


def _pass(x, weights: np.ndarray, dim: int):
    """One 8-bit resampling pass along ``dim`` (-1: width, -2: height) of float64 pixels."""
    import torch

    k = torch.from_numpy(weights).to(x.device)
    half = float(1 << (PRECISION_BITS - 1))
    if dim == -1:
        acc = torch.matmul(x, k.T)
    else:
        acc = torch.matmul(k, x)
    return torch.clamp(torch.floor((acc + half) / float(1 << PRECISION_BITS)), 0, 255)


def resample(x, width: int, height: int, box: tuple[float, float, float, float]):
    """Pillow's bicubic ``im.resize((width, height), BICUBIC, box)`` of float64 [C, H, W]
    pixels (whole numbers 0..255); returns float64 [C, height, width]."""
    in_h, in_w = x.shape[-2:]
    need_h = width != in_w or box[0] != 0 or box[2] != width
    need_v = height != in_h or box[1] != 0 or box[3] != height
    horizontal_first = not (in_h - height > 0 and in_h - height > (in_w - width) * 2)
    passes = []
    if need_h:
        passes.append((_weights(in_w, box[0], box[2], width), -1))
    if need_v:
        passes.insert(0 if not horizontal_first else len(passes), (_weights(in_h, box[1], box[3], height), -2))
    for weights, dim in passes:
        x = _pass(x, weights, dim)
    return x


def _multipliers(counts: np.ndarray) -> np.ndarray:
    """Pillow's per-block reciprocal: (uint32)((float)2**32 / (256 * count))."""
    return (np.float32(4294967296.0) / (np.float32(256) * counts.astype(np.float32))).astype(np.int64)


def reduce(x, fx: int, fy: int):
    """Pillow's ``Image.reduce((fx, fy))`` of integer [C, H, W] pixels -> int64 [C, ceil(H/fy), ceil(W/fx)]."""
    import torch

    c, h, w = x.shape
    if fx == 1 and fy == 1:
        return x.to(torch.int64)
    ho, wo = -(-h // fy), -(-w // fx)
    if (ho * fy, wo * fx) == (h, w):
        padded = x.to(torch.int32)
    else:  # zeros beyond the edge add nothing; the edge blocks divide by their own count below
        padded = torch.zeros((c, ho * fy, wo * fx), dtype=torch.int32, device=x.device)
        padded[:, :h, :w] = x
    sums = padded.reshape(c, ho, fy, wo, fx).sum(dim=(2, 4), dtype=torch.int64)
    rows = np.full(ho, fy)
    rows[-1] = h - (ho - 1) * fy
    cols = np.full(wo, fx)
    cols[-1] = w - (wo - 1) * fx
    counts = rows[:, None] * cols[None, :]
    amend = torch.from_numpy(counts // 2).to(x.device)
    mult = torch.from_numpy(_multipliers(counts)).to(x.device)
    return ((sums + amend) * mult) >> 24


def resize_like_pillow(x, size: int):
    """``Image.resize((size, size), BICUBIC, reducing_gap=3.0)`` of uint8 [C, H, W] pixels,
    float64 [C, size, size] out (whole numbers)."""
    import torch

    h, w = x.shape[-2:]
    if (w, h) == (size, size):
        return x.to(torch.float64)
    box = (0.0, 0.0, float(w), float(h))
    fx = int(w / size / REDUCING_GAP) or 1
    fy = int(h / size / REDUCING_GAP) or 1
    if fx > 1 or fy > 1:
        # Pillow's safe box is the whole picture here: the box is the whole picture and the
        # support is clamped to it.
        x = reduce(x, fx, fy)
        box = (0.0, 0.0, w / fx, h / fy)
    return resample(x.to(torch.float64), size, size, box)


def _normalize(pixels, norm: Normalization):
    """``views.normalize`` in torch: the same float32 constants, the same two operations."""
    import torch

    mean = torch.from_numpy(np.asarray(norm.mean, dtype=np.float32) * 255.0).to(pixels.device).view(3, 1, 1)
    inv_std = torch.from_numpy(1.0 / (np.asarray(norm.std, dtype=np.float32) * 255.0)).to(pixels.device).view(3, 1, 1)
    return (pixels.to(torch.float32) - mean) * inv_std


def _tensor_energy(pixels):
    """``views.texture_scores``' window energy on uint8 [3, H, W] pixels where they lie."""
    import torch

    def energy(left: int, top: int, right: int, bottom: int) -> float:
        grey = pixels[:, top:bottom, left:right].to(torch.int32).sum(dim=0)
        dx, dy = int(grey.diff(dim=1).abs().sum()), int(grey.diff(dim=0).abs().sum())
        return window_energy(dx, dy, bottom - top, right - left)

    return energy


def device_views(pixels, config: ModelConfig, seed: int) -> tuple[object, object | None, Views]:
    """(global view [3, S, S], crops [K, 3, S, S] or None) as float32 tensors on ``pixels``'
    device, and a ``Views`` carrying the plan and size (its arrays left empty), for uint8 RGB
    ``pixels`` [3, H, W] (orientation applied)."""
    import torch

    if pixels.dtype != torch.uint8 or pixels.dim() != 3 or pixels.shape[0] != 3:
        raise ValueError(f"device_views needs uint8 [3, H, W] pixels, got {pixels.dtype} {tuple(pixels.shape)}")
    s = config.crop_size
    height, width = pixels.shape[-2:]
    global_view = _normalize(resize_like_pillow(pixels, s), config.global_norm)
    empty = np.zeros((0,), np.float32)
    if not config.uses_crops:
        return global_view, None, Views(empty, None, None, (width, height))
    plan, factors = plan_crops(width, height, config, seed, lambda boxes: texture_scores(boxes, (width, height), _tensor_energy(pixels)))
    crops = torch.zeros((len(plan.boxes), 3, s, s), dtype=torch.float32, device=pixels.device)
    for i, ((left, top, right, bottom), m) in enumerate(zip(plan.boxes, factors)):
        r, b = min(right, width), min(bottom, height)
        if r <= left or b <= top:
            continue
        region = pixels[:, top:b, left:r]
        if m > 1:
            region = reduce(region, m, m)
        h, w = min(region.shape[1], s), min(region.shape[2], s)
        crops[i, :, :h, :w] = _normalize(region, config.local_norm)[:, :h, :w]
    return global_view, crops, Views(empty, empty, plan, (width, height))
