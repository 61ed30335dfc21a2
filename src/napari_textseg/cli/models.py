"""The models command: list, download, path, verify."""

from __future__ import annotations

import argparse
import sys

__all__ = ["models"]


def confirm_license_interactively(card) -> bool:
    print(f"{card.id}: {card.title}")
    print(f"licence: {card.license} ({card.license_url})")
    if not sys.stdin.isatty():
        return False
    answer = input("Accept this licence and download? [y/N] ").strip().lower()
    return answer in ("y", "yes")


def models(args: argparse.Namespace) -> int:
    from napari_textseg.models.errors import CheckpointError
    from napari_textseg.models.registry import CARDS, get_card
    from napari_textseg.models.store import cache_dir, cached_path, download

    if args.models_command == "list":
        wide = max(18, *(len(card.license) for card in CARDS.values()))
        print(f"{'id':<22} {'family':<13} {'size':>8}  {'licence':<{wide}} {'cached':<9} source")
        for card in CARDS.values():
            size = f"{card.size_mb:.0f} MB" if card.size_mb else "?"
            try:
                present = cached_path(card).is_file()
            except CheckpointError:  # the package that ships it is missing
                present = False
            cached = (
                ("installed" if present else "missing")
                if card.bundled
                else ("yes" if present else "no")
            )
            print(
                f"{card.id:<22} {card.family:<13} {size:>8}  {card.license:<{wide}} {cached:<9} "
                f"{card.source}"
            )
        return 0
    if args.models_command == "path":
        print(cached_path(get_card(args.model)) if args.model else cache_dir())
        return 0
    if args.models_command == "download":
        card = get_card(args.model)

        def confirm(c) -> bool:
            return True if args.accept_license else confirm_license_interactively(c)

        path = download(card, progressbar=not args.quiet, confirm_license=confirm)
        print(path)
        return 0
    if args.models_command == "verify":
        from napari_textseg.models.loader import load_model

        loaded = load_model(args.model, args.checkpoint, device=args.device)
        n_params = sum(p.numel() for p in loaded.model.parameters())
        print(
            f"{loaded.card.id}: {loaded.checkpoint} loads strictly ({n_params:,} parameters) on "
            f"{loaded.device}"
        )
        return 0
    raise AssertionError(args.models_command)
