"""Pack one split's images into HDF5: decode in parallel, resize aspect-aware, write by chunk.

Rows are stored in a seeded random order rather than sorted by path: sorted rows are grouped
by class, and a training pipeline that streams chunk by chunk would then see one class at a
time. The `paths` dataset traces each row back to its file.
"""

import functools
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from imgclf.core.config import PackParams
from imgclf.core.errors import UserError
from imgclf.data.hdf5io import PackWriter
from imgclf.data.imaging import ChangedError, ImageError, jpeg_reduction, load_batch
from imgclf.data.parallel import ordered_map

# Images per task given to a worker thread: large enough to amortise the per-task overhead,
# small enough to keep every core busy to the end of a split.
_TASK_IMAGES = 32


def pack_split(
    splits: pd.DataFrame,
    split: str,
    source: Path,
    out: Path,
    size: tuple[int, int],
    params: PackParams,
    seed: int,
    workers: int,
) -> int:
    """Write the `split` rows of `splits` to `out`; return the number of images."""
    label_names = sorted(splits["label"].unique())
    rows = splits[splits["split"] == split]
    if rows.empty:
        raise UserError(f"split {split!r} has no images in the splits file")
    rows = rows.iloc[np.random.default_rng(seed).permutation(len(rows))]
    label_ids = rows["label"].map({name: index for index, name in enumerate(label_names)})
    tasks = [
        (str(source / path), jpeg_reduction(int(width), int(height), size), md5)
        for path, width, height, md5 in zip(
            rows["path"], rows["width"], rows["height"], rows["md5"], strict=True
        )
    ]
    decode = functools.partial(load_batch, size=size, interpolation=params.interpolation)
    batches = ordered_map(
        decode,
        tasks,
        chunk_size=_TASK_IMAGES,
        workers=workers,
        max_in_flight=max(2 * workers, params.batch_size // _TASK_IMAGES),
        desc=f"pack {split}",
        unit="img",
    )
    attrs = {"split": split, "source": str(source), "interpolation": params.interpolation}
    try:
        with PackWriter(
            out, len(rows), (*size, 3), label_names, params.batch_size, attrs
        ) as writer:
            for block in _rebatch(batches, params.batch_size):
                start = writer.written
                end = start + len(block)
                writer.write(
                    block,
                    label_ids.iloc[start:end].tolist(),
                    rows["path"].iloc[start:end].tolist(),
                )
    except ChangedError as error:
        raise UserError(f"{error}; run `dvc repro` again (index reads the folder anew)") from None
    except ImageError as error:  # the file was fine when indexed
        raise UserError(f"{error} (it decoded when indexed; did it change?)") from None
    return len(rows)


def _rebatch(batches: Iterable[np.ndarray], rows: int) -> Iterator[np.ndarray]:
    """Regroup a stream of image arrays into blocks of exactly `rows` (the last may be short).

    Writing whole HDF5 chunks at once avoids read-modify-write of partly filled chunks.
    """
    held: list[np.ndarray] = []
    count = 0
    for batch in batches:
        held.append(batch)
        count += len(batch)
        if count >= rows:
            block = np.concatenate(held)
            whole = len(block) - len(block) % rows
            for start in range(0, whole, rows):
                yield block[start : start + rows]
            held, count = [block[whole:]], len(block) - whole
    if count:
        yield np.concatenate(held)
