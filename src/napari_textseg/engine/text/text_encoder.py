"""CLIP text embeddings for prompt ensembles, cached per (model, sentence).

An ensemble embedding follows TAGS (methods.md section 1): every sentence embedding is
L2-normalised, the embeddings are averaged, and the average is normalised again.
"""

from __future__ import annotations

import torch

from napari_textseg.core.text_prompts import TextTarget, ensemble
from napari_textseg.models.device import autocast

__all__ = ["TextEncoder"]


class TextEncoder:
    """Encodes sentences with an open_clip model; each sentence is encoded once per model.

    Parameters
    ----------
    model
        An open_clip ``CLIP`` model (``encode_text``).
    model_key
        Names the weights (a card id or checkpoint path): the cache key's first part.
    tokenizer_name
        The open_clip model name whose tokenizer to use (e.g. ``"ViT-B-16"``).
    """

    def __init__(
        self, model: torch.nn.Module, model_key: str, tokenizer_name: str, *, batch: int = 128
    ):
        import open_clip

        self.model = model
        self.model_key = model_key
        self.tokenizer = open_clip.get_tokenizer(tokenizer_name)
        self.batch = batch
        self.device = next(model.parameters()).device
        self._cache: dict[tuple[str, str], torch.Tensor] = {}
        self.encoded = 0  # sentences actually run through the model (the rest came from the cache)

    def encode(self, sentences: list[str]) -> torch.Tensor:
        """(N, D) L2-normalised float32 embeddings on the CPU, in the order given."""
        missing = list(
            dict.fromkeys(s for s in sentences if (self.model_key, s) not in self._cache)
        )
        for start in range(0, len(missing), self.batch):
            chunk = missing[start : start + self.batch]
            tokens = self.tokenizer(chunk).to(self.device)
            with torch.inference_mode(), autocast(self.device):
                features = self.model.encode_text(tokens)
            features = torch.nn.functional.normalize(features.float(), dim=-1).cpu()
            for sentence, vector in zip(chunk, features, strict=True):
                self._cache[(self.model_key, sentence)] = vector
            self.encoded += len(chunk)
        return torch.stack([self._cache[(self.model_key, s)] for s in sentences])

    def ensemble(self, sentences: list[str]) -> torch.Tensor:
        """(D,) normalised mean of the normalised sentence embeddings."""
        return torch.nn.functional.normalize(self.encode(sentences).mean(dim=0), dim=0)

    def target(self, target: TextTarget) -> tuple[torch.Tensor, torch.Tensor]:
        """Foreground and background ensemble embeddings of one target."""
        foreground, background = ensemble(target)
        return self.ensemble(foreground), self.ensemble(background)
