"""A JPEG's EXIF orientation as TensorFlow ops, so that a SavedModel turns a phone photo the
way OpenCV's decoder does for `pack` and `classify` (tag 0x0112 of the first image directory
of the APP1 "Exif" segment; 1 when there is none or it is out of range)."""

import tensorflow as tf

_APP1 = b"\xff\xe1"
_EXIF_HEADER = "Exif\x00\x00"
_ORIENTATION_TAG = 0x0112
_MAX_ENTRIES = 256  # a first image directory holds a few dozen entries
_SEARCHED = 1 << 16  # APP1 segments are at most 64 KiB and come before the image data


def exif_orientation(data: tf.Tensor) -> tf.Tensor:
    """The EXIF orientation (int32, 1–8) of one encoded JPEG; 1 without a readable tag."""
    parts = tf.strings.split(tf.strings.substr(data, 0, _SEARCHED), sep=_EXIF_HEADER, maxsplit=1)
    found = tf.size(parts) == 2
    # The header must open an APP1 segment (marker, then a 2-byte length): not stray bytes.
    before = parts[0]
    in_app1 = tf.equal(tf.strings.substr(before, tf.strings.length(before) - 4, 2), _APP1)
    return tf.cond(
        tf.logical_and(found, in_app1),
        lambda: _tiff_orientation(tf.io.decode_raw(parts[-1], tf.uint8)),
        lambda: tf.constant(1, tf.int32),
    )


def _tiff_orientation(tiff: tf.Tensor) -> tf.Tensor:
    """Orientation from the TIFF structure of an EXIF block (bytes, either byte order)."""
    length = tf.size(tiff)
    padded = tf.cast(tf.concat([tiff, tf.zeros(8, tf.uint8)], 0), tf.int32)
    little = tf.equal(padded[0], ord("I"))

    def number(offsets: tf.Tensor, width: int) -> tf.Tensor:
        """Unsigned integers of `width` bytes at `offsets` (clipped; the caller checks)."""
        offsets = tf.clip_by_value(offsets, 0, length)
        digits = [tf.gather(padded, offsets + i) for i in range(width)]
        big_endian = little_endian = tf.zeros_like(offsets)
        for first, last in zip(digits, digits[::-1], strict=True):
            big_endian, little_endian = big_endian * 256 + first, little_endian * 256 + last
        return tf.where(little, little_endian, big_endian)

    directory = number(tf.constant(4), 4)
    count = tf.minimum(number(directory, 2), _MAX_ENTRIES)
    entries = directory + 2 + 12 * tf.range(count)
    tags = number(entries, 2)
    values = number(entries + 8, 2)  # a SHORT value sits in the entry's first two bytes
    matches = tf.logical_and(tags == _ORIENTATION_TAG, entries + 10 <= length)
    orientation = tf.reduce_max(tf.where(matches, values, 0))  # 0: no tag
    valid = tf.logical_and(orientation >= 1, orientation <= 8)
    return tf.where(valid, orientation, 1)


def swaps_sides(orientation: tf.Tensor) -> tf.Tensor:
    """Whether the oriented image is the stored one turned a quarter (orientations 5–8)."""
    return orientation >= 5


def apply_orientation(image: tf.Tensor, orientation: tf.Tensor) -> tf.Tensor:
    """(H, W, C) turned as OpenCV's ExifTransform turns it: 5–8 transpose first, then the
    flips of 2–4 and 6–8 (horizontal, both, vertical)."""
    transposed = tf.cond(
        swaps_sides(orientation), lambda: tf.transpose(image, [1, 0, 2]), lambda: image
    )
    flip = tf.where(swaps_sides(orientation), orientation - 4, orientation)  # 2, 3, 4 or 1
    return tf.switch_case(
        flip - 1,
        [
            lambda: transposed,
            lambda: tf.reverse(transposed, axis=[1]),
            lambda: tf.reverse(transposed, axis=[0, 1]),
            lambda: tf.reverse(transposed, axis=[0]),
        ],
    )
