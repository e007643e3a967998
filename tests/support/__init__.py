"""What several test modules share, so that no test module imports another: the repository,
synthetic images, params overrides, tiny packs and Keras models, the import-graph reader, the
pipeline project and the planted-audit folder."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
