"""One self-contained HTML page per scan: thumbnails with the crop boxes shaded by
attention, score, verdict and provenance evidence per file, sortable by score.

No external resources: thumbnails are embedded as data URIs, styles and the small sorting
script are inline, so the page can be mailed or archived with a case file. Crop boxes are
SVG rectangles in the image's own pixel coordinates, so they stay exact at any zoom.
"""

from __future__ import annotations

import base64
import html
from datetime import datetime, timezone

from glass_cli import __version__
from glass_cli.io import atomic
from glass_cli.outputs.pictures import box_groups, crop_label, rank_tag, ranked, thumbnail_jpeg
from glass_cli.outputs.records import counts, display_path, format_box, summary_line
from glass_cli.outputs.tables import FALLBACK_NOTE
from glass_cli.results import VERDICT_ERROR, ScanResult

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em;margin:0 0 .2em}
.meta{color:#555;margin-bottom:1em}
table.files{border-collapse:collapse;width:100%}
table.files th,table.files td{border-bottom:1px solid #ddd;padding:.5em;vertical-align:top;text-align:left}
table.files th button{font:inherit;font-weight:bold;border:0;background:none;cursor:pointer;padding:0}
svg.thumb{max-width:360px;max-height:360px;background:#eee}
svg.thumb rect{fill:var(--box);stroke:var(--box)}
svg.thumb text{fill:#fff;font-weight:bold;font-family:system-ui,sans-serif}
svg.thumb .tag{fill:var(--box);fill-opacity:.9;stroke:none}
svg.thumb.v-ai{--box:#dc1e1e}svg.thumb.v-uncertain{--box:#e69600}svg.thumb.v-real{--box:#1e78dc}
ol.crops{margin:.3em 0 0 1.2em;padding:0;font-size:.9em}
.note{color:#555;font-size:.85em}
.v-ai{color:#b00;font-weight:bold}.v-uncertain{color:#a60;font-weight:bold}.v-real{color:#070}.v-error{color:#555}
.score{font-variant-numeric:tabular-nums;font-size:1.2em}
.path{word-break:break-all;font-family:ui-monospace,monospace}
.ev-ai{font-weight:bold;color:#b00}
details pre{white-space:pre-wrap;max-height:20em;overflow:auto;background:#f6f6f6;padding:.4em}
"""

_JS = """
function sortBy(dir){
  const body=document.querySelector('table.files tbody');
  const rows=[...body.rows];
  rows.sort((a,b)=>{const x=parseFloat(a.dataset.score),y=parseFloat(b.dataset.score);
    return dir==='asc'?x-y:y-x;});
  rows.forEach(r=>body.appendChild(r));
  document.body.dataset.sort=dir;
}
document.getElementById('sort-score').addEventListener('click',()=>{
  sortBy(document.body.dataset.sort==='desc'?'asc':'desc');});
const m=location.hash.match(/sort=(asc|desc)/);
sortBy(m?m[1]:'desc');
"""


def _svg(result: ScanResult) -> str:
    """The thumbnail with every crop box in the verdict's colour, numbered by rank (1 = most
    attention), filled lightly in proportion to its weight."""
    w, h = result.width, result.height
    uri = "data:image/jpeg;base64," + base64.b64encode(thumbnail_jpeg(result)).decode("ascii")
    groups = box_groups(result)  # crops on one box (a picture smaller than the grid) are drawn once
    top = groups[0][1].weight if groups else 1.0
    stroke = max(2, round(max(w, h) / 250))
    tag = max(12, round(max(w, h) / 18))  # label height in image pixels: readable at 360 px
    shapes = []
    for ranks, c in reversed(groups):  # the most attended crop last, on top
        x, y = c.box[0], c.box[1]
        label = rank_tag(ranks)
        shapes.append(
            f'<rect x="{x}" y="{y}" width="{c.box[2] - x}" height="{c.box[3] - y}" '
            f'fill-opacity="{0.3 * c.weight / (top or 1.0):.3f}" stroke-width="{stroke}" data-rank="{label}" '
            f'data-weight="{c.weight:.4f}"><title>crop {label}: {format_box(c.box)} attention {c.weight:.3f}</title></rect>'
            f'<rect class="tag" x="{x}" y="{y}" width="{tag * max(1, len(label)) * 0.6 + tag * 0.4:.0f}" height="{tag}"/>'
            f'<text x="{x + tag * 0.25:.0f}" y="{y + tag * 0.8:.0f}" font-size="{tag * 0.8:.0f}">{label}</text>'
        )
    side = 360 / max(w, h)
    return (
        f'<svg class="thumb v-{result.verdict}" viewBox="0 0 {w} {h}" width="{max(1, round(w * side))}" '
        f'height="{max(1, round(h * side))}"><image href="{uri}" x="0" y="0" width="{w}" height="{h}" '
        f'preserveAspectRatio="none"/>{"".join(shapes)}</svg>'
    )


def _crop_list(result: ScanResult, crop_size: int | None) -> str:
    items = "".join(
        f"<li>weight {c.weight:.3f}, {format_box(c.box)}, {html.escape(crop_label(c, crop_size))}</li>" for _, c in ranked(result)
    )
    note = f'<div class="note">{html.escape(FALLBACK_NOTE)}</div>' if result.sampling == "fallback" else ""
    return f'<ol class="crops">{items}</ol>{note}' if items else note


def _evidence(result: ScanResult) -> str:
    if not result.evidence:
        return "<span class=ev-none>none found</span>"
    items = []
    for f in result.evidence:
        cls = ' class="ev-ai"' if f.ai else ""
        short = f.value if len(f.value) <= 60 else f.value[:57] + "..."
        items.append(
            f"<details{cls} data-source=\"{html.escape(f.source)}\"><summary>{html.escape(f.source)} "
            f"{html.escape(f.key)}: {html.escape(short)}{' (declares AI)' if f.ai else ''}</summary>"
            f"<pre>{html.escape(f.value)}</pre></details>"
        )
    return "".join(items)


def _row(result: ScanResult, crop_size: int | None = None) -> str:
    path = html.escape(display_path(result.path))
    if result.verdict == VERDICT_ERROR:
        return (
            f'<tr class="file" data-score="-1" data-verdict="error"><td></td><td class="path">{path}</td>'
            f'<td class="score">-</td><td class="v-error">not scanned: {html.escape(result.error or "")}</td>'
            f"<td>{_evidence(result)}</td></tr>"
        )
    picture = _svg(result) if result.explanation is not None else ""
    crops = _crop_list(result, crop_size)
    return (
        f'<tr class="file" data-score="{result.p_ai:.6f}" data-verdict="{result.verdict}"><td>{picture}</td>'
        f'<td><div class="path">{path}</div><small>{result.width}x{result.height}, {result.format}, '
        f"sampling {result.sampling or '-'}</small>{crops}</td>"
        f'<td class="score">{result.p_ai:.3f}</td><td class="v-{result.verdict}">{result.verdict}</td>'
        f"<td>{_evidence(result)}</td></tr>"
    )


class HtmlReport:
    """Collects one row per result as the scan runs (keeping only the row's HTML, with its
    small embedded thumbnail, not the images), then writes the page."""

    def __init__(self, *, model: str, threshold: float, uncertain=None, crop_size: int | None = None, crops: bool = True):
        self.model, self.threshold, self.uncertain, self.crop_size = model, threshold, uncertain, crop_size
        self.crops = crops
        """Whether the model looks at crops (GLASS); a resize-only model's page says it has none."""
        self._rows: list[tuple[float, str, str]] = []
        self._results: list[ScanResult] = []

    def add(self, result: ScanResult) -> None:
        score = result.p_ai if result.p_ai is not None else -1.0
        self._rows.append((score, result.path, _row(result, self.crop_size)))
        self._results.append(ScanResult(path=result.path, verdict=result.verdict))  # for the counts only

    def render(self) -> str:
        c = counts(self._results)
        band = f", uncertain band {self.uncertain[0]:g}-{self.uncertain[1]:g}" if self.uncertain else ""
        when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        rows = "\n".join(row for _, _, row in sorted(self._rows, key=lambda t: (-t[0], t[1])))
        picture_heading = ("image (boxes: the crops, numbered by attention rank; red on AI verdicts, blue on real)" if self.crops
                           else "image (the model judged the whole picture, resized: no crops)")
        return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>glass scan report</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_CSS}</style></head>
<body data-sort="desc">
<h1>glass scan report</h1>
<div class="meta" id="summary">{html.escape(summary_line(self._results, self.threshold))}<br>
model {html.escape(self.model)}, threshold {self.threshold:g}{band}; glass {__version__}; {when}</div>
<p class="meta">P(AI) is the model's reading of the pixels. Evidence comes from the file's own metadata
(C2PA, generation parameters, EXIF, XMP) and is shown beside the score, never folded into it.</p>
<table class="files" data-flagged="{c.flagged}" data-files="{len(self._rows)}"><thead><tr>
<th>{picture_heading}</th><th>file</th>
<th><button id="sort-score" type="button">P(AI) &#x21C5;</button></th><th>verdict</th><th>evidence in file</th></tr></thead>
<tbody>
{rows}
</tbody></table>
<script>{_JS}</script>
</body></html>
"""

    def write(self, dest: str) -> None:
        atomic.write_text(dest, self.render())
