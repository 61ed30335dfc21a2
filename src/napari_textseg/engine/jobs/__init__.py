"""Whole-volume jobs without a GUI: the command line's pipelines and the Dask batch runner."""
