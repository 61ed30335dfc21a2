"""The engine (no napari, no Qt), in three parts:

- :mod:`~napari_textseg.engine.interactive`: clicks -> one object (prompts, SAM/SAM2 slice
  backends with cached embeddings, SAM2 memory-bank propagation, ROI crops, clean-up);
- :mod:`~napari_textseg.engine.text`: typed targets -> named masks, behind one text-backend
  protocol (CLIP + SAM, VoxTell, Medical-SAM3);
- :mod:`~napari_textseg.engine.jobs`: whole-volume jobs for the command line and batch.
"""
