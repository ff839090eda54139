#!/usr/bin/env python3
"""What each GLASS branch knows on unseen sources: a deep-supervised fold model (trained with
``--aux-weight``, so it has a head on the global embedding alone and one on the pooled crops)
scored on its fold's held-out files through all three heads.

    .venv/bin/python docs/experiments/branch_scores.py runs/cv/v3-g-e8-ds --fold 2 [--baseline runs/cv/v3-b-e8]

Prints AUROC of the fused head, the global-only head, the crops-only head, and (with
``--baseline``) the baseline fold model's stored scores and the mean of the baseline's and the
crops-only head's P(AI), on the held-out files as stored (the ``native`` condition of the
fold's heldout.json, the same files every run of the fold is judged on).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="a glass cv folder whose fold model has auxiliary heads")
    ap.add_argument("--fold", type=int, default=2)
    ap.add_argument("--baseline", type=Path, help="a glass cv folder of the baseline on the same folds")
    args = ap.parse_args()

    import torch

    from glass_cli.io.image import LoadError
    from glass_cli.metrics import auroc
    from glass_cli.models import checkpoint
    from glass_cli.preprocess.prepare import prepare_file
    from glass_cli.preprocess.views import collate

    torch.set_num_threads(2)
    fold = args.run / f"fold-{args.fold}"
    model, config = checkpoint.load(fold / "last.safetensors")
    if not config.aux_heads:
        raise SystemExit(f"{fold}: this model has no auxiliary heads (train it with --aux-weight)")
    model.eval()
    files = [f for f in json.loads((fold / "heldout.json").read_text())["files"] if f["p_ai"].get("native") is not None]
    heads = {"fused": [], "global only": [], "crops only": []}
    labels, kept = [], []
    for i in range(0, len(files), 16):
        chunk, views = [], []
        for f in files[i:i + 16]:
            try:
                views.append(prepare_file(f["path"], config).views)
                chunk.append(f)
            except LoadError:
                continue
        g, c = collate(views)
        with torch.inference_mode():
            logits, _, (aux_g, aux_l) = model(torch.from_numpy(g), torch.from_numpy(c), with_aux=True)
        for name, out in zip(heads, (logits, aux_g, aux_l)):
            heads[name] += torch.softmax(out.float(), 1)[:, 1].tolist()
        labels += [f["label"] for f in chunk]
        kept += chunk
        print(f"\r{len(kept)}/{len(files)}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    stored = [f["p_ai"]["native"] for f in kept]
    print(f"{fold}: {len(kept)} held-out files ({sum(labels)} AI, {len(labels) - sum(labels)} real) as stored")
    print(f"  fused head, as scored here: {auroc(labels, heads['fused']):.4f} (heldout.json: {auroc(labels, stored):.4f})")
    for name in ("global only", "crops only"):
        print(f"  {name} head: {auroc(labels, heads[name]):.4f}")
    if args.baseline:
        base = {f["path"]: f["p_ai"]["native"] for f in json.loads((args.baseline / f"fold-{args.fold}" / "heldout.json").read_text())["files"]}
        b = [base[f["path"]] for f in kept]
        print(f"  baseline fold model: {auroc(labels, b):.4f}")
        for name in ("global only", "crops only", "fused"):
            mixed = list((np.asarray(b) + np.asarray(heads[name])) / 2)
            print(f"  mean of baseline and {name}: {auroc(labels, mixed):.4f}")


if __name__ == "__main__":
    main()
