"""Click-prompted segmentation: prompts, slice backends, memory-bank propagation, sessions."""
