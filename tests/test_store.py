"""The model store: cards, cache folder, verified downloads, licences, offline messages.

Downloads are served from a loopback HTTP server started by the test, so the real
pooch code path (progress, checksum, cache) runs without the internet.
"""

import hashlib
import socket

import pytest
import torch

from napari_textseg.models import (
    CARDS,
    CheckpointError,
    LicenseNotAcceptedError,
    ModelNotFoundError,
    OfflineError,
    get_card,
)
from napari_textseg.models.loader import load_model
from napari_textseg.models.store import cache_dir, cached_path, download, resolve_checkpoint
from tiny_models import TINY_SAM_ARCH, save_tiny_sam, tiny_card

REQUIRED = [
    "sam_vit_b",
    "sam_vit_l",
    "sam_vit_h",
    "medsam_vit_b",
    "sam2.1_hiera_tiny",
    "sam2.1_hiera_small",
    "sam2.1_hiera_base_plus",
    "sam2.1_hiera_large",
    "medsam2",
    "clip_vit_b_16",
    "clip_vit_l_14",
    "sam3",
    "medical_sam3",
]


def _card(url, known_hash, model_id="test_served_sam"):
    return tiny_card(
        "sam",
        TINY_SAM_ARCH,
        model_id,
        "tiny_sam.pth",
        url=f"{url}/tiny_sam.pth",
        known_hash=known_hash,
    )


def _sha256(path):
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def test_every_required_card_has_source_licence_and_size():
    for model_id in REQUIRED:
        card = CARDS[model_id]
        assert card.license and card.license_url.startswith("https://")
        assert card.homepage.startswith("https://")
        assert card.size_mb or card.family == "sam3"
    for model_id in ("sam_vit_b", "sam_vit_l", "sam_vit_h"):
        assert CARDS[model_id].known_hash.startswith("md5:")
    assert CARDS["sam3"].local_only  # gated on Hugging Face
    # Medical-SAM3's weights are public on its model page, with a published SHA-256.
    for model_id in ("medical_sam3", "medical_sam3_3d"):
        assert (
            not CARDS[model_id].local_only and CARDS[model_id].hf_repo == "ChongCong/Medical-SAM3"
        )
    assert CARDS["medical_sam3"].known_hash.startswith("sha256:")
    voxtell = CARDS["voxtell_v1.1"]
    assert voxtell.hf_repo == "mrokuss/VoxTell" and voxtell.filename.endswith(
        "fold_0/checkpoint_final.pth"
    )
    assert "voxtell_v1.1/plans.json" in voxtell.extra_files
    assert CARDS["medsam2"].arch["overrides"][0] == "++model.image_size=512"


def test_unknown_model_lists_the_known_ones():
    with pytest.raises(ModelNotFoundError, match="unknown model 'sam9'.*sam_vit_b.*--checkpoint"):
        get_card("sam9")


def test_cache_folder_is_overridable(isolated_model_cache):
    assert cache_dir() == isolated_model_cache
    assert (
        cached_path(CARDS["sam_vit_b"])
        == isolated_model_cache / "sam_vit_b" / "sam_vit_b_01ec64.pth"
    )


def test_download_needs_the_licence_then_verifies_and_caches(served, isolated_model_cache):
    url, folder, state = served
    card = _card(url, _sha256(folder / "tiny_sam.pth"))
    with pytest.raises(LicenseNotAcceptedError, match="Apache-2.0.*accept the licence"):
        download(card)
    assert not cached_path(card).exists()

    asked = []
    path = download(card, progressbar=False, confirm_license=lambda c: asked.append(c.id) or True)
    assert asked == [card.id]
    assert path == cached_path(card) and path.read_bytes() == (folder / "tiny_sam.pth").read_bytes()
    # The licence is asked once; a cached file needs no network at all.
    (folder / "tiny_sam.pth").unlink()
    assert download(card) == path
    loaded = load_model(card.id)
    assert all(torch.equal(loaded.model.state_dict()[k], v) for k, v in state.items())


def test_checksum_mismatch_keeps_nothing(served):
    url, _, _ = served
    card = _card(url, "sha256:" + "0" * 64, model_id="test_bad_hash")
    with pytest.raises(CheckpointError, match="failed its checksum"):
        download(card, progressbar=False, confirm_license=lambda c: True)
    assert not cached_path(card).exists()


def test_offline_names_the_file_and_where_to_put_it():
    with socket.socket() as sock:  # a loopback port with nothing listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    card = _card(f"http://127.0.0.1:{port}", None, model_id="test_offline")
    with pytest.raises(OfflineError) as info:
        download(card, progressbar=False, confirm_license=lambda c: True)
    message = str(info.value)
    assert (
        "tiny_sam.pth" in message
        and str(cached_path(card)) in message
        and "--checkpoint" in message
    )
    assert not cached_path(card).exists()


def test_offline_hugging_face_download(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(OfflineError, match="MedSAM2_latest.pt.*--checkpoint"):
        download("medsam2", confirm_license=lambda c: True)


def test_gated_weights_are_local_only():
    with pytest.raises(CheckpointError, match="cannot be downloaded.*--checkpoint"):
        download("sam3", confirm_license=lambda c: True)


def test_resolve_explains_what_is_missing(tmp_path):
    with pytest.raises(CheckpointError, match="not downloaded yet.*models download sam_vit_b"):
        resolve_checkpoint("sam_vit_b")
    with pytest.raises(CheckpointError, match="does not exist"):
        resolve_checkpoint("sam_vit_b", tmp_path / "nope.pth")
    save_tiny_sam(tmp_path / "mine.pth")
    with pytest.raises(
        CheckpointError, match="cannot tell which architecture mine.pth is.*--model"
    ):
        resolve_checkpoint(None, tmp_path / "mine.pth")
    card, path = resolve_checkpoint("sam_vit_b", tmp_path / "mine.pth")
    assert card.id == "sam_vit_b" and path == tmp_path / "mine.pth"


@pytest.mark.parametrize(
    "keys, name, expected",
    [
        ({"image_encoder.patch_embed.proj.weight": (768, 3, 16, 16)}, "w.pth", "sam_vit_b"),
        ({"image_encoder.patch_embed.proj.weight": (1280, 3, 16, 16)}, "w.pth", "sam_vit_h"),
        (
            {"image_encoder.patch_embed.proj.weight": (768, 3, 16, 16)},
            "medsam_vit_b.pth",
            "medsam_vit_b",
        ),
        (
            {"image_encoder.trunk.patch_embed.proj.weight": (144, 3, 7, 7)},
            "w.pt",
            "sam2.1_hiera_large",
        ),
        (
            {
                "image_encoder.trunk.patch_embed.proj.weight": (96, 3, 7, 7),
                **{f"image_encoder.trunk.blocks.{i}.w": (1,) for i in range(16)},
            },
            "w.pt",
            "sam2.1_hiera_small",
        ),
        (
            {"image_encoder.trunk.patch_embed.proj.weight": (96, 3, 7, 7)},
            "MedSAM2_latest.pt",
            "medsam2",
        ),
    ],
)
def test_official_architecture_is_recognised_from_the_file(tmp_path, keys, name, expected):
    """--checkpoint alone works for official files: the card is inferred from keys and shapes."""
    state = {k: torch.zeros(shape) for k, shape in keys.items()}
    torch.save({"model": state} if "trunk" in next(iter(keys)) else state, tmp_path / name)
    card, _ = resolve_checkpoint(None, tmp_path / name)
    assert card.id == expected


def test_offline_fails_at_once_without_the_hubs_retries(monkeypatch):
    """huggingface_hub retried for ~24 s without a network before failing."""
    import huggingface_hub

    calls = []
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lambda **kw: calls.append(kw))

    def no_network(address, timeout=None):
        raise OSError("[Errno -2] Name or service not known")

    monkeypatch.setattr(socket, "create_connection", no_network)
    with pytest.raises(OfflineError, match="no network.*clip_vit_b_16"):
        download("clip_vit_b_16", confirm_license=lambda c: True)
    assert calls == []  # never reached the retrying client


def test_messages_name_the_way_the_user_gives_a_file():
    from napari_textseg.models.store import CLI_CLIP_WORDING, Wording

    with pytest.raises(CheckpointError, match="--clip-checkpoint FILE") as info:
        resolve_checkpoint("clip_vit_b_16", wording=CLI_CLIP_WORDING)
    assert "--checkpoint FILE" not in str(info.value).replace("--clip-checkpoint", "")
    panel = Wording(local_file="choose a file in the checkpoint field", download="press Download")
    with pytest.raises(CheckpointError) as info:
        resolve_checkpoint("sam_vit_b", wording=panel)
    assert "press Download" in str(info.value) and "--" not in str(info.value)


def test_behind_a_proxy_the_probe_leaves_the_download_to_try(monkeypatch):
    from napari_textseg.models import store

    def no_direct_route(address, timeout=None):
        raise OSError("direct connections are blocked here")

    monkeypatch.setattr(socket, "create_connection", no_direct_route)
    assert not store._reachable("https://dl.fbaipublicfiles.com/x.pth", hugging_face=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    assert store._reachable("https://dl.fbaipublicfiles.com/x.pth", hugging_face=False)
