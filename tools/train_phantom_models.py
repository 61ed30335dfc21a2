"""Train the phantom SAM and SAM2 on synthetic phantoms, save them in the official
formats, and report their held-out Dice through the plugin's pipeline.

    # the shipped SAM (~55-65 min on 2 CPU cores):
    python tools/train_phantom_models.py --only sam --volumes 128 --seed 1 --steps 5900
    python tools/train_phantom_models.py --only sam2 --minutes-sam2 5
    # measure the shipped checkpoints again:
    python tools/train_phantom_models.py --evaluate-only

Checkpoints go to ``src/napari_textseg/data/models`` (``phantom_sam.pth``: a plain
state dict like ``sam_vit_b_01ec64.pth``; ``phantom_sam2.pt``: ``{"model": state_dict}``
like ``sam2.1_hiera_tiny.pt``), with ``training.json`` recording the command, times
and Dice. Training data come from seeds >= 10000; evaluation uses seeds 1-5.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch
from phantom_training.data import TRAIN_SEED_BASE, make_bank
from phantom_training.evaluate import evaluate
from phantom_training.train_sam import train_sam
from phantom_training.train_sam2 import train_sam2

from napari_textseg.models.registry import CARDS, phantom_card, register_card

REPO = Path(__file__).resolve().parents[1]


def _measure(model_id: str, path: Path) -> dict[str, float]:
    return {k: round(v, 3) for k, v in evaluate(model_id, path).items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=("sam", "sam2"))
    parser.add_argument("--minutes-sam", type=float, default=28.0)
    parser.add_argument("--minutes-sam2", type=float, default=17.0)
    parser.add_argument(
        "--volumes", type=int, default=64, help="training phantoms (2/3 CT, 1/3 nuclei)"
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="train each model for this many optimiser steps instead of the minutes "
        "(reproducible: the same run on any machine)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(REPO / "src" / "napari_textseg" / "data" / "models"))
    parser.add_argument(
        "--evaluate-only",
        action="store_true",
        help="train nothing: measure the checkpoints in --out again and update training.json",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    record_file = out / "training.json"
    record = json.loads(record_file.read_text()) if record_file.is_file() else {}

    if args.evaluate_only:
        for family in [args.only] if args.only else ["sam", "sam2"]:
            card = CARDS.get(f"phantom_{family}") or register_card(phantom_card(family))
            if (out / card.filename).is_file() and card.id in record:
                record[card.id]["held_out_dice"] = _measure(card.id, out / card.filename)
        record_file.write_text(json.dumps(record, indent=1) + "\n")
        return 0

    start = time.perf_counter()
    n_ct = args.volumes * 2 // 3
    bank = make_bank(n_ct, args.volumes - n_ct, TRAIN_SEED_BASE)
    print(f"{len(bank)} training phantoms in {time.perf_counter() - start:.0f} s")

    jobs = {"sam": (train_sam, args.minutes_sam), "sam2": (train_sam2, args.minutes_sam2)}
    for family, (train, minutes) in jobs.items():
        if args.only and family != args.only:
            continue
        card = CARDS.get(f"phantom_{family}") or register_card(phantom_card(family))
        t0 = time.perf_counter()
        model = train(card.arch, minutes, bank, steps=args.steps, seed=args.seed)
        seconds = time.perf_counter() - t0
        state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
        path = out / card.filename
        torch.save(state if family == "sam" else {"model": state}, path)
        record[card.id] = {
            "command": "python tools/train_phantom_models.py " + " ".join(argv or sys.argv[1:]),
            "train_minutes": round(seconds / 60, 2),
            "train_steps": args.steps,
            "size_mb": round(path.stat().st_size / 1e6, 2),
            "training_phantoms": len(bank),
            "held_out_dice": _measure(card.id, path),
            "machine": f"{platform.processor() or platform.machine()}, {args.threads} threads",
            "torch": torch.__version__,
        }
        record_file.write_text(json.dumps(record, indent=1) + "\n")
        print(f"{card.id}: {seconds / 60:.1f} min, {path.stat().st_size / 1e6:.1f} MB -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
