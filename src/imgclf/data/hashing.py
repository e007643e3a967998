"""Fingerprints of decoded images, and the duplicate groups they reveal.

`index` records two per file as it decodes it: a pixel hash (XXH3-128 of the decoded pixels
and their shape, so the same picture saved as PNG or TIFF, or under another name, hashes the
same) and a 64-bit perceptual hash (pHash: the signs of the 8x8 lowest frequencies of the
32x32 grey DCT against their median), which stays within a few bits under re-encoding,
resizing and small colour changes. `split` and `audit` group images by them. Both cost
little next to the decode they follow (bench/index_hashing.py): XXH3 runs near memory speed
where MD5 or BLAKE2b would cost as much as decoding a JPEG, and the 32x32 thumbnail is
resampled bilinearly, reading 4 pixels per output instead of every pixel of the image.

Near-duplicate search is multi-index hashing: two 64-bit hashes within Hamming distance d
agree exactly on at least one of d + 1 disjoint bit blocks (pigeonhole), so only images that
share a block value are compared, never all pairs.
"""

from collections.abc import Iterator

import cv2
import numpy as np
import pandas as pd
import xxhash
from scipy.cluster.hierarchy import DisjointSet

HASH_BITS = 64
# pHash input side: 4x the 8x8 kept frequencies, as in imagehash's phash.
_PHASH_SIDE = 32
_PHASH_KEEP = 8
_MIDDLE = _PHASH_KEEP * _PHASH_KEEP // 2
# Candidate pairs compared per NumPy batch: bounds memory whatever the bucket sizes.
_PAIR_BATCH = 1 << 20


def pixel_hash(native: np.ndarray) -> str:
    """XXH3-128 of an image's decoded pixels in OpenCV's BGR order, shape included.

    Grey images are expanded to three channels first: a grey PNG and an RGB copy of it with
    equal channels are the same picture.
    """
    if native.ndim == 2:
        native = cv2.cvtColor(native, cv2.COLOR_GRAY2BGR)
    digest = xxhash.xxh3_128(np.asarray(native.shape, dtype=np.int64).tobytes())
    digest.update(np.ascontiguousarray(native))
    return digest.hexdigest()


def perceptual_hash(native: np.ndarray) -> str:
    """The 64-bit pHash of a grey or BGR uint8 image, as 16 hex digits."""
    side = (_PHASH_SIDE, _PHASH_SIDE)
    small = cv2.resize(native, side, interpolation=cv2.INTER_LINEAR)
    grey = small if small.ndim == 2 else cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
    low = cv2.dct(np.float32(grey))[:_PHASH_KEEP, :_PHASH_KEEP].ravel()
    # The median of 64 values from a sort: np.median's generality costs more than the DCT.
    ordered = np.sort(low)
    median = (ordered[_MIDDLE - 1] + ordered[_MIDDLE]) / 2
    return np.packbits(low > median).tobytes().hex()  # big-endian: the hash's 16 hex digits


def hash_values(hashes: pd.Series | list[str]) -> np.ndarray:
    """uint64 values of 16-hex-digit perceptual hashes."""
    return np.array([int(text, 16) for text in hashes], dtype=np.uint64)


def hamming(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Bitwise Hamming distances between two uint64 arrays, elementwise."""
    return np.bitwise_count(np.bitwise_xor(first, second)).astype(np.int64)


def near_pairs(values: np.ndarray, max_distance: int) -> np.ndarray:
    """(k, 3) int64 rows (i, j, distance), i < j, of every pair of uint64 hashes within
    `max_distance` bits, sorted; exact repeats (distance 0) included."""
    found = [np.empty((0, 3), dtype=np.int64)]
    blocks = np.array_split(np.arange(HASH_BITS), max_distance + 1)
    for block in blocks:
        mask = np.uint64(((1 << len(block)) - 1) << int(block[0]))
        for first, second in _same_key_pairs(values & mask):
            distance = hamming(values[first], values[second])
            close = distance <= max_distance
            found.append(np.column_stack([first[close], second[close], distance[close]]))
    return np.unique(np.concatenate(found), axis=0)  # a pair may share several blocks


def _same_key_pairs(keys: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Batches of index arrays (first, second), first < second, of items with equal keys."""
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    sizes = np.diff(np.r_[starts, len(keys)])
    first_parts, second_parts, pending = [], [], 0
    for start, size in zip(starts[sizes > 1], sizes[sizes > 1], strict=True):
        members = np.sort(order[start : start + size])
        left, right = np.triu_indices(size, k=1)
        first_parts.append(members[left])
        second_parts.append(members[right])
        pending += len(left)
        if pending >= _PAIR_BATCH:
            yield np.concatenate(first_parts), np.concatenate(second_parts)
            first_parts, second_parts, pending = [], [], 0
    if first_parts:
        yield np.concatenate(first_parts), np.concatenate(second_parts)


def duplicate_groups(
    pixel_hashes: pd.Series, perceptual_hashes: pd.Series, max_distance: int | None
) -> np.ndarray:
    """A group id per image: images with the same pixels, or (unless `max_distance` is None)
    chained by perceptual hashes within `max_distance` bits, share one. Ids are the position
    of each group's first member, so they depend only on the input order."""
    count = len(pixel_hashes)
    groups = DisjointSet(range(count))
    first_seen: dict[str, int] = {}
    for position, value in enumerate(pixel_hashes):
        groups.merge(first_seen.setdefault(value, position), position)
    if max_distance is not None:
        for first, second, _ in near_pairs(hash_values(perceptual_hashes), max_distance):
            groups.merge(int(first), int(second))
    roots = pd.Series([groups[position] for position in range(count)])
    return roots.index.to_series().groupby(roots.to_numpy()).transform("min").to_numpy()


def count_groups(groups: np.ndarray) -> int:
    """How many groups hold two images or more."""
    return int((np.unique(groups, return_counts=True)[1] > 1).sum())
