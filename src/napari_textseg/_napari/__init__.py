"""napari adapters: readers, writers, sample data and dock widgets (the only napari/Qt code)."""
