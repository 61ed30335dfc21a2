"""Batching prompts: clicks padded with label -1 (SAM's "not a point"), boxes as SAM or SAM2 take
them."""

from __future__ import annotations

import numpy as np
import torch

Prompt = tuple[np.ndarray, np.ndarray, "np.ndarray | None"]  # points (n, 2) y/x, labels (n,), box


def batch_prompts(prompts: list[Prompt], scales: list[float], *, box_as_points: bool):
    """Model-pixel (x, y) coords (B, N, 2), labels (B, N) and boxes (B, 4) or None.

    With ``box_as_points`` (SAM2) a box becomes two corner points labelled 2 and 3, as
    SAM2's predictor passes it; otherwise (SAM) boxes are returned as x0, y0, x1, y1.
    Every prompt in a batch must have a box or none must.
    """
    rows, boxes = [], []
    for (points_yx, labels, box), scale in zip(prompts, scales, strict=True):
        coords, labs = (points_yx[:, ::-1] * scale).tolist(), labels.tolist()
        if box is not None:
            y0, x0, y1, x1 = (float(v) * scale for v in box)
            if box_as_points:
                coords, labs = [[x0, y0], [x1, y1], *coords], [2, 3, *labs]
            else:
                boxes.append([x0, y0, x1, y1])
        rows.append((coords, labs))
    n = max(1, max(len(labs) for _, labs in rows))
    xy = torch.zeros(len(rows), n, 2)
    lab = torch.full((len(rows), n), -1, dtype=torch.int64)
    for i, (coords, labs) in enumerate(rows):
        if labs:
            xy[i, : len(labs)] = torch.tensor(coords, dtype=torch.float32)
            lab[i, : len(labs)] = torch.tensor(labs)
    return xy, lab, (torch.tensor(boxes, dtype=torch.float32) if boxes else None)


def add_clicks(prompts: list[Prompt], clicks: list, scales: list[float]) -> list[Prompt]:
    """Append one correction click per prompt (model-pixel (y, x), label), or nothing for None."""
    out = []
    for (points, labels, box), click, scale in zip(prompts, clicks, scales, strict=True):
        if click is not None:
            (cy, cx), label = click
            points = np.vstack([points.reshape(-1, 2), [[cy / scale, cx / scale]]])
            labels = np.append(labels, label)
        out.append((points, labels, box))
    return out
