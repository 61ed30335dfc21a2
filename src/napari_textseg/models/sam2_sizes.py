"""Small SAM2 models with the released architecture: Hydra overrides that shrink SAM 2.1's
tiny configuration (the phantom model and the tests build theirs with them)."""

from __future__ import annotations

__all__ = ["small_sam2_overrides"]


def small_sam2_overrides(
    image_size: int,
    *,
    embed: int,
    model: int,
    memory: int,
    stages: tuple[int, int, int, int],
    global_blocks: tuple[int, ...],
    attention_layers: int,
    feedforward: int,
) -> tuple[str, ...]:
    """Hydra overrides that shrink ``sam2.1_hiera_t.yaml`` to a small model.

    ``embed`` is the Hiera width, ``model`` the neck/decoder/memory-attention width,
    ``memory`` the memory-encoder width. The memory attention's RoPE grid follows the
    input size (stride 16).
    """
    grid = image_size // 16
    e, d, m = embed, model, memory
    return (
        f"++model.image_size={image_size}",
        f"++model.image_encoder.trunk.embed_dim={e}",
        "++model.image_encoder.trunk.num_heads=1",
        f"++model.image_encoder.trunk.stages=[{','.join(map(str, stages))}]",
        f"++model.image_encoder.trunk.global_att_blocks=[{','.join(map(str, global_blocks))}]",
        f"++model.image_encoder.neck.backbone_channel_list=[{e * 8},{e * 4},{e * 2},{e}]",
        f"++model.image_encoder.neck.d_model={d}",
        f"++model.image_encoder.neck.position_encoding.num_pos_feats={d}",
        f"++model.memory_attention.d_model={d}",
        f"++model.memory_attention.num_layers={attention_layers}",
        f"++model.memory_attention.layer.d_model={d}",
        f"++model.memory_attention.layer.dim_feedforward={feedforward}",
        f"++model.memory_attention.layer.self_attention.embedding_dim={d}",
        f"++model.memory_attention.layer.self_attention.feat_sizes=[{grid},{grid}]",
        f"++model.memory_attention.layer.cross_attention.embedding_dim={d}",
        f"++model.memory_attention.layer.cross_attention.feat_sizes=[{grid},{grid}]",
        f"++model.memory_attention.layer.cross_attention.kv_in_dim={m}",
        f"++model.memory_encoder.out_dim={m}",
        f"++model.memory_encoder.in_dim={d}",
        f"++model.memory_encoder.position_encoding.num_pos_feats={m}",
        f"++model.memory_encoder.mask_downsampler.embed_dim={d}",
        f"++model.memory_encoder.fuser.layer.dim={d}",
    )
