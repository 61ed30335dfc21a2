"""Model cards: where each official checkpoint comes from, its licence, size and checksum.

Sizes are approximate (as published on the download pages). Checksums are given only
where the authors publish one; other files are checked for completeness by loading them
strictly (every key and shape must match the architecture).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from napari_textseg.models.errors import ModelNotFoundError

__all__ = ["CARDS", "FAMILIES", "ModelCard", "get_card", "register_card"]

FAMILIES = ("sam", "sam2", "clip", "sam3")

_APACHE = ("Apache-2.0", "https://www.apache.org/licenses/LICENSE-2.0")
_SAM_URL = "https://dl.fbaipublicfiles.com/segment_anything"
_SAM2_URL = "https://dl.fbaipublicfiles.com/segment_anything_2/092824"


@dataclass(frozen=True)
class ModelCard:
    """One checkpoint the plugin knows how to fetch and build.

    Attributes
    ----------
    id
        The name users pass as ``--model``.
    family
        ``"sam"``, ``"sam2"``, ``"clip"`` or ``"sam3"``: which loader builds it.
    arch
        Family-specific architecture settings the loader builds the model from.
    filename
        The checkpoint's file name in the cache.
    url, hf_repo
        Where to download it: a direct URL (fetched with pooch) or a Hugging Face
        repository (fetched with huggingface_hub, which resumes broken downloads).
        Neither, for gated weights that must be supplied as a local file.
    known_hash
        ``"md5:..."`` or ``"sha256:..."`` where the authors publish one, else ``None``.
    """

    id: str
    family: str
    title: str
    arch: dict[str, Any]
    filename: str
    license: str
    license_url: str
    homepage: str
    size_mb: float | None = None
    url: str | None = None
    hf_repo: str | None = None
    known_hash: str | None = None
    note: str = ""
    tags: tuple[str, ...] = field(default_factory=tuple)

    @property
    def local_only(self) -> bool:
        """True for gated weights that cannot be downloaded by the plugin."""
        return self.url is None and self.hf_repo is None

    @property
    def source(self) -> str:
        """Where the weights come from, for display."""
        if self.url:
            return self.url
        if self.hf_repo:
            return f"https://huggingface.co/{self.hf_repo} ({self.filename})"
        return f"{self.homepage} (local file only: {self.note})"


_SAM_ARCH = {
    "vit_b": {"encoder_embed_dim": 768, "encoder_depth": 12, "encoder_num_heads": 12,
              "encoder_global_attn_indexes": (2, 5, 8, 11)},
    "vit_l": {"encoder_embed_dim": 1024, "encoder_depth": 24, "encoder_num_heads": 16,
              "encoder_global_attn_indexes": (5, 11, 17, 23)},
    "vit_h": {"encoder_embed_dim": 1280, "encoder_depth": 32, "encoder_num_heads": 16,
              "encoder_global_attn_indexes": (7, 15, 23, 31)},
}


def _sam(variant: str, filename: str, md5: str, size_mb: float) -> ModelCard:
    return ModelCard(
        id=f"sam_{variant}",
        family="sam",
        title=f"Segment Anything ViT-{variant[-1].upper()}",
        arch=_SAM_ARCH[variant],
        filename=filename,
        url=f"{_SAM_URL}/{filename}",
        known_hash=f"md5:{md5}",
        size_mb=size_mb,
        license=_APACHE[0],
        license_url=_APACHE[1],
        homepage="https://github.com/facebookresearch/segment-anything",
        tags=("natural images",),
    )


def _sam2(size: str, short: str, size_mb: float) -> ModelCard:
    return ModelCard(
        id=f"sam2.1_hiera_{size}",
        family="sam2",
        title=f"SAM 2.1 Hiera-{size.replace('_', '+' if size == 'base_plus' else ' ')}",
        arch={"config": f"configs/sam2.1/sam2.1_hiera_{short}.yaml"},
        filename=f"sam2.1_hiera_{size}.pt",
        url=f"{_SAM2_URL}/sam2.1_hiera_{size}.pt",
        size_mb=size_mb,
        license=_APACHE[0],
        license_url=_APACHE[1],
        homepage="https://github.com/facebookresearch/sam2",
        tags=("natural images", "video memory"),
    )


def _clip(model_name: str, hf_repo: str, size_mb: float) -> ModelCard:
    return ModelCard(
        id=f"clip_{model_name.lower().replace('-', '_')}",
        family="clip",
        title=f"OpenAI CLIP {model_name} (open_clip)",
        arch={"model_name": model_name},
        filename="open_clip_pytorch_model.bin",
        hf_repo=hf_repo,
        size_mb=size_mb,
        license="MIT",
        license_url="https://github.com/openai/CLIP/blob/main/LICENSE",
        homepage="https://github.com/mlfoundations/open_clip",
        tags=("text encoder",),
    )


_CARDS: list[ModelCard] = [
    _sam("vit_b", "sam_vit_b_01ec64.pth", "01ec64d29a2fca3f0661936605ae66f8", 375),
    _sam("vit_l", "sam_vit_l_0b3195.pth", "0b3195507c641ddb6910d2bb5adee89c", 1250),
    _sam("vit_h", "sam_vit_h_4b8939.pth", "4b8939a88964f0f4ff5f5b2642c598a6", 2560),
    ModelCard(
        id="medsam_vit_b",
        family="sam",
        title="MedSAM (SAM ViT-B fine-tuned on 1.5M medical image-mask pairs)",
        arch=_SAM_ARCH["vit_b"],
        filename="medsam_vit_b.pth",
        size_mb=375,
        license=_APACHE[0],
        license_url=_APACHE[1],
        homepage="https://github.com/bowang-lab/MedSAM",
        note="the authors publish it only on Google Drive, linked from the MedSAM README",
        tags=("medical",),
    ),
    _sam2("tiny", "t", 156),
    _sam2("small", "s", 184),
    _sam2("base_plus", "b+", 324),
    _sam2("large", "l", 898),
    ModelCard(
        id="medsam2",
        family="sam2",
        title="MedSAM2 (SAM 2.1 Hiera-tiny fine-tuned on 3D CT, MRI, PET; 512 px input)",
        # MedSAM2's own sam2.1_hiera_t512.yaml: the tiny model at 512 px, whose memory
        # attention RoPE grid is then 32 x 32.
        arch={
            "config": "configs/sam2.1/sam2.1_hiera_t.yaml",
            "overrides": (
                "++model.image_size=512",
                "++model.memory_attention.layer.self_attention.feat_sizes=[32,32]",
                "++model.memory_attention.layer.cross_attention.feat_sizes=[32,32]",
            ),
        },
        filename="MedSAM2_latest.pt",
        hf_repo="wanglab/MedSAM2",
        size_mb=156,
        license=_APACHE[0],
        license_url=_APACHE[1],
        homepage="https://github.com/bowang-lab/MedSAM2",
        tags=("medical", "video memory"),
    ),
    _clip("ViT-B-16", "timm/vit_base_patch16_clip_224.openai", 599),
    _clip("ViT-L-14", "timm/vit_large_patch14_clip_224.openai", 1710),
    ModelCard(
        id="sam3",
        family="sam3",
        title="SAM 3 (concept prompts: text and exemplars)",
        arch={},
        filename="sam3.pt",
        size_mb=3450,
        license="SAM License",
        license_url="https://github.com/facebookresearch/sam3/blob/main/LICENSE",
        homepage="https://github.com/facebookresearch/sam3",
        note="gated on Hugging Face (facebook/sam3): request access, download sam3.pt, "
        "then pass it with --checkpoint",
        tags=("natural images", "text"),
    ),
    ModelCard(
        id="medical_sam3",
        family="sam3",
        title="Medical SAM3 (SAM 3 fully fine-tuned on medical images)",
        arch={},
        filename="medical_sam3.pt",
        license="see the model page",
        license_url="https://github.com/facebookresearch/sam3/blob/main/LICENSE",
        homepage="https://github.com/facebookresearch/sam3",
        note="distributed by its authors on request; pass the file with --checkpoint",
        tags=("medical", "text"),
    ),
]

CARDS: dict[str, ModelCard] = {card.id: card for card in _CARDS}


def register_card(card: ModelCard) -> ModelCard:
    """Add a card (for example one describing a locally trained model) to the registry."""
    if card.family not in FAMILIES:
        raise ValueError(f"unknown model family {card.family!r}; known: {', '.join(FAMILIES)}")
    CARDS[card.id] = card
    return card


def get_card(model_id: str) -> ModelCard:
    """The card for ``model_id``, or a :class:`ModelNotFoundError` listing the known ids."""
    try:
        return CARDS[model_id]
    except KeyError:
        raise ModelNotFoundError(
            f"unknown model {model_id!r}; known models: {', '.join(CARDS)} "
            "(or pass a local file with --checkpoint)"
        ) from None
