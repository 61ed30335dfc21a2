"""Text labelling: the text-backend protocol and its backends (CLIP + SAM, VoxTell,
Medical-SAM3)."""
