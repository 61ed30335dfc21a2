"""How a phantom model's one-click masks go wrong, next to a classical baseline.

    python tools/phantom_training/click_errors.py --kind nucleus
    python tools/phantom_training/click_errors.py --kind organ --checkpoint /tmp/run/phantom_sam.pth

For each object of the held-out phantoms (seeds 1-3 by default) it clicks the centre
through the plugin's pipeline (``phantom_scores.click_masks``) and reports the mean Dice,
how far the mask's centroid lies from the object's (mean signed and absolute, in pixels),
and the spread of predicted over true area. The baseline thresholds the clicked slice,
blurred by one pixel, halfway between the click's intensity and the slice's background
(its 20th percentile), and keeps the component under the click: what the image alone
supports, with no learning.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
from phantom_training.phantom_scores import click_masks, held_out_cases
from scipy import ndimage

from napari_textseg.core.metrics import dice
from napari_textseg.engine.interactive.session_factory import make_slice_model
from napari_textseg.models.loader import load_model


def half_maximum(image: np.ndarray, click: tuple[int, int]) -> np.ndarray:
    """The component under ``click`` of the slice thresholded halfway to its background."""
    smooth = ndimage.gaussian_filter(image.astype(np.float64), 1.0)
    y, x = click
    inside = np.median(smooth[max(y - 2, 0) : y + 3, max(x - 2, 0) : x + 3])
    background = np.percentile(smooth, 20)
    threshold = (inside + background) / 2
    components, _ = ndimage.label(smooth > threshold if inside > background else smooth < threshold)
    return ndimage.binary_fill_holes(components == components[y, x])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kind", choices=("organ", "lesion", "nucleus"), default="nucleus")
    parser.add_argument("--model", default="phantom_sam")
    parser.add_argument("--checkpoint", default=None, help="default: the shipped one")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    args = parser.parse_args(argv)
    loaded = load_model(args.model, args.checkpoint, device="cpu")
    backend = make_slice_model(loaded.model, loaded.card.family, loaded.device)
    model, baseline, offsets, areas = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for phantom, value, pred, true in click_masks(
            held_out_cases(Path(tmp), args.seeds), backend, args.kind
        ):
            z, y, x = phantom.centre_click(value)
            model.append(dice(pred, true))
            baseline.append(dice(half_maximum(phantom.data[z], (y, x)), true))
            if pred.any():
                offsets.append(
                    np.subtract(ndimage.center_of_mass(pred), ndimage.center_of_mass(true))
                )
                areas.append(pred.sum() / true.sum())
    offsets = np.array(offsets).reshape(-1, 2)
    print(f"{args.kind}: {len(model)} objects, seeds {args.seeds}")
    print(
        f"  {args.model} Dice {np.mean(model):.3f}; half-maximum baseline Dice "
        f"{np.mean(baseline):.3f}"
    )
    print(
        f"  centroid offset (y, x) mean {np.round(offsets.mean(axis=0), 2)} px, "
        f"mean absolute {np.round(np.abs(offsets).mean(axis=0), 2)} px"
    )
    print(
        f"  predicted / true area: mean {np.mean(areas):.2f}, standard deviation "
        f"{np.std(areas):.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
