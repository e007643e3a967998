"""What a model needs to be used on new images (class names, image size, backbone, …),
stored inside the model file itself as an `imgclf.json` entry of its zip (`.keras` and
`.skops` files are both zips), so it travels with the model and cannot drift from it."""

import json
import zipfile
from pathlib import Path
from typing import Any

from imgclf.errors import UserError

ENTRY = "imgclf.json"


def write_metadata(model_path: Path | str, metadata: dict[str, Any]) -> None:
    """Add (or replace) the metadata entry of a saved model file."""
    path = Path(model_path)
    with zipfile.ZipFile(path) as archive:
        if ENTRY in archive.namelist():
            raise UserError(f"{path}: already has {ENTRY}; save the model afresh")
    info = zipfile.ZipInfo(ENTRY, date_time=(1980, 1, 1, 0, 0, 0))  # no timestamp
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr(
            info,
            json.dumps(metadata, indent=2, sort_keys=True),
            compress_type=zipfile.ZIP_DEFLATED,
        )


def read_metadata(model_path: Path | str) -> dict[str, Any]:
    """The metadata a pipeline stage stored with the model."""
    try:
        with zipfile.ZipFile(model_path) as archive:
            return json.loads(archive.read(ENTRY))
    except FileNotFoundError:
        raise UserError(f"{model_path}: file not found") from None
    except (zipfile.BadZipFile, KeyError) as error:
        raise UserError(
            f"{model_path}: not a model written by the imgclf pipeline ({error})"
        ) from None
