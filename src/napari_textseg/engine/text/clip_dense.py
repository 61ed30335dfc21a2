"""Dense CLIP features on slices, training-free (MaskCLIP, methods.md section 5).

CLIP's image tower pools everything into one vector. MaskCLIP keeps a vector per patch
instead: in the last transformer block it skips the query-key attention, takes each
patch's value embedding through the attention's output projection, then through
``ln_post`` and ``visual.proj`` into the joint text-image space. The cosine between
those vectors and a text embedding is a coarse similarity map for that text.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from napari_textseg.core.errors import InputError
from napari_textseg.models.device import autocast

__all__ = ["DenseClip"]


class DenseClip:
    """Per-patch CLIP embeddings of model-ready slices (values 0-255).

    Parameters
    ----------
    model
        An open_clip ``CLIP`` model with a ViT image tower.
    resolution
        Side of the square the slice is resized to; the positional embedding is
        interpolated when it differs from the model's own size. Default: the model's.
    batch
        Slices per forward pass.
    """

    def __init__(self, model: torch.nn.Module, *, resolution: int | None = None, batch: int = 8):
        from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
        from open_clip.transformer import VisionTransformer

        visual = getattr(model, "visual", None)
        if not isinstance(visual, VisionTransformer) or visual.attn_pool is not None:
            raise InputError(
                "dense CLIP maps need an open_clip model with a plain ViT image tower "
                f"(got {type(visual).__name__}); pick a ViT-B-16 or ViT-L-14 CLIP"
            )
        self.model = model
        self.visual = visual
        self.device = next(model.parameters()).device
        native = visual.image_size
        self.native = int(native[0] if isinstance(native, tuple) else native)
        self.resolution = int(resolution or self.native)
        patch = visual.patch_size
        self.patch = int(patch[0] if isinstance(patch, tuple) else patch)
        if self.resolution % self.patch:
            raise ValueError(
                f"resolution {self.resolution} is not a multiple of the patch size {self.patch}"
            )
        self.grid = self.resolution // self.patch
        cfg = getattr(visual, "preprocess_cfg", {}) or {}
        self._mean = torch.tensor(cfg.get("mean", OPENAI_DATASET_MEAN), device=self.device).view(
            1, 3, 1, 1
        )
        self._std = torch.tensor(cfg.get("std", OPENAI_DATASET_STD), device=self.device).view(
            1, 3, 1, 1
        )
        self.batch = batch

    @property
    def logit_scale(self) -> float:
        """CLIP's learnt temperature (``exp(logit_scale)``), capped at 100 as in training."""
        scale = getattr(self.model, "logit_scale", None)
        return (
            float(min(100.0, torch.exp(scale.detach().float()).item()))
            if scale is not None
            else 100.0
        )

    def _positional(self) -> torch.Tensor:
        pos = self.visual.positional_embedding
        if self.grid == self.native // self.patch:
            return pos
        cls, grid = pos[:1], pos[1:]
        side = int(round(grid.shape[0] ** 0.5))
        grid = grid.reshape(1, side, side, -1).permute(0, 3, 1, 2)
        grid = F.interpolate(
            grid.float(), size=(self.grid, self.grid), mode="bicubic", align_corners=False
        )
        return torch.cat(
            [cls, grid.permute(0, 2, 3, 1).reshape(self.grid * self.grid, -1).to(pos.dtype)]
        )

    def _images(self, slices: np.ndarray) -> torch.Tensor:
        x = torch.as_tensor(np.ascontiguousarray(slices, dtype=np.float32), device=self.device)
        x = F.interpolate(
            x[:, None],
            size=(self.resolution, self.resolution),
            mode="bilinear",
            align_corners=False,
        )
        x = (x / 255.0).expand(-1, 3, -1, -1)  # grey slice -> RGB, as SAM frames are fed
        return (x - self._mean) / self._std

    def _tokens(self, images: torch.Tensor) -> torch.Tensor:
        visual = self.visual
        x = visual.conv1(images.to(visual.conv1.weight.dtype))
        x = x.flatten(2).transpose(1, 2)
        cls = visual.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + self._positional().to(x.dtype)
        x = visual.ln_pre(x)
        blocks = visual.transformer.resblocks
        batch_first = getattr(visual.transformer, "batch_first", True)
        x = x if batch_first else x.transpose(0, 1)
        for block in blocks[:-1]:
            x = block(x)
        x = x if batch_first else x.transpose(0, 1)
        last = blocks[-1]
        attn = last.attn
        width = attn.embed_dim
        value = F.linear(
            last.ln_1(x), attn.in_proj_weight[2 * width :], attn.in_proj_bias[2 * width :]
        )
        x = attn.out_proj(value)[:, 1:]  # the value path only; the class token is dropped
        x = visual.ln_post(x)
        if visual.proj is not None:
            x = x @ visual.proj
        return x

    def embed(self, slices: np.ndarray) -> torch.Tensor:
        """(N, grid, grid, D) L2-normalised float32 patch embeddings on the CPU."""
        slices = np.asarray(slices)
        if slices.ndim == 2:
            slices = slices[None]
        out = []
        with torch.inference_mode(), autocast(self.device):
            for start in range(0, len(slices), self.batch):
                tokens = self._tokens(self._images(slices[start : start + self.batch]))
                out.append(F.normalize(tokens.float(), dim=-1).cpu())
        return torch.cat(out).reshape(len(slices), self.grid, self.grid, -1)

    def probabilities(self, embeddings: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        """Softmax over ``classes`` (K, D) of every patch: (N, K, grid, grid)."""
        logits = self.logit_scale * embeddings @ classes.T.to(embeddings.dtype)
        return logits.softmax(dim=-1).permute(0, 3, 1, 2)
