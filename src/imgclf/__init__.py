"""imgclf: a reproducible image-classification workbench built as a DVC pipeline."""

__version__ = "0.1.0"
