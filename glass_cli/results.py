"""What a scan says about a file: the verdicts, how P(AI) becomes one (``Decision``), and the
result record (``ScanResult``) that every runner produces and every output reads.

This module sits below both the scan (``glass_cli.scan``) and its outputs
(``glass_cli.outputs``), so neither imports the other to learn the vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from PIL import Image

from glass_cli.errors import ScanError
from glass_cli.io.evidence import Finding

VERDICT_AI = "ai"
VERDICT_REAL = "real"
VERDICT_UNCERTAIN = "uncertain"
VERDICT_ERROR = "error"


def band_around(threshold: float, width: float) -> tuple[float, float]:
    """The uncertain band threshold - width to threshold + width, kept within [0, 1]."""
    return max(0.0, threshold - width), min(1.0, threshold + width)


@dataclass(frozen=True)
class Decision:
    """How P(AI) becomes a verdict: 'ai' at or above ``threshold``; with an uncertain band
    (low, high), scores with low <= P(AI) < high are 'uncertain' instead.

    Verdicts follow the scores (real below uncertain below AI) because the band must hold the
    threshold: low <= threshold <= high. A band that leaves it out would call a file real
    while a lower-scored one is uncertain, so it is refused."""

    threshold: float = 0.5
    uncertain: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.threshold <= 1.0:
            raise ScanError(f"--threshold must lie between 0 and 1, got {self.threshold}")
        if self.uncertain is not None:
            low, high = self.uncertain
            if not 0.0 <= low < high <= 1.0:
                raise ScanError(f"--uncertain needs 0 <= LOW < HIGH <= 1, got {low:g}:{high:g}")
            if not low <= self.threshold <= high:
                raise ScanError(f"--uncertain {low:g}:{high:g} leaves out the threshold {self.threshold:g}, so verdicts would "
                                "not follow the scores; give a band that holds it, or --uncertain WIDTH for the threshold "
                                "plus or minus WIDTH")

    def verdict(self, p_ai: float) -> str:
        if self.uncertain is not None and self.uncertain[0] <= p_ai < self.uncertain[1]:
            return VERDICT_UNCERTAIN
        return VERDICT_AI if p_ai >= self.threshold else VERDICT_REAL


@dataclass
class CropScore:
    box: tuple[int, int, int, int]
    """(left, top, right, bottom) in the oriented image's pixels."""
    weight: float
    """Attention weight; the K weights of a file sum to 1."""


@dataclass
class Explanation:
    """Pictures kept for a file when asked (for --save-crops and --report); not serialised."""

    preview: Image.Image
    """The image downscaled to at most ``scan.step.PREVIEW_SIDE`` on its long side."""
    scale: float
    """preview size / original size."""
    crops: list[Image.Image] = field(default_factory=list)
    """The native-resolution crops, in the order of ScanResult.crops."""


@dataclass
class ScanResult:
    path: str
    verdict: str
    p_ai: float | None = None
    threshold: float | None = None
    width: int | None = None
    height: int | None = None
    bytes: int | None = None
    mtime_ns: int | None = None
    """The file's modification time when it was read (``os.stat().st_mtime_ns``)."""
    sha256: str | None = None
    format: str | None = None
    sampling: str | None = None
    """'stratified' or 'fallback' (see preprocess.sampling); None for the baseline and errors."""
    crops: list[CropScore] = field(default_factory=list)
    evidence: list[Finding] = field(default_factory=list)
    error: str | None = None
    model_id: str | None = None
    engine: str | None = None
    """Which engine scored it: torch or onnx (the same model_id under either)."""
    index: int = -1
    """Position of the file in the walk order."""
    explanation: Explanation | None = None
    cached: bool = False
    """Answered from a result cache (``scan.cache``) rather than scored now; not serialised."""
    resumed: bool = False
    """Taken from the records of an earlier run of the scan (``scan.resume``); not serialised."""

    @property
    def flagged(self) -> bool:
        return self.verdict == VERDICT_AI

    def ranked_crops(self) -> list[CropScore]:
        """The crops from the most attended down (rank 1 first): the order of the table, the
        records, the overlay and the report."""
        return sorted(self.crops, key=lambda c: c.weight, reverse=True)

    def top_crops(self, n: int = 2) -> list[CropScore]:
        return self.ranked_crops()[:n]

    def decide(self, decision: Decision) -> None:
        """The verdict of a P(AI) already on the result (a cached answer), by ``decision``."""
        if self.p_ai is not None:
            self.threshold, self.verdict = decision.threshold, decision.verdict(self.p_ai)

    def score(self, p_ai: float, attention, boxes, decision: Decision) -> None:
        """Put the engine's output on the result: P(AI), threshold, verdict and, for GLASS, the
        attention weight of each crop box."""
        self.p_ai, self.threshold, self.verdict = p_ai, decision.threshold, decision.verdict(p_ai)
        if attention is not None and boxes is not None:
            self.crops = [CropScore(box, float(w)) for box, w in zip(boxes, attention)]
