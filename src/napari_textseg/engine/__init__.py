"""The segmentation engine (no napari, no Qt): prompts, slice backends with cached
embeddings, SAM2 memory-bank propagation, SAM prompt projection, ROI crops and
post-processing."""
