"""Tests for `imgclf.data.imaging`: decoding every common format to (H, W, 3) RGB uint8, and
resizing.

Fixtures are tiny images written in each test with Pillow (a test-only dependency) or OpenCV.
Notes on OpenCV 5 behaviour that these tests pin down:

- Truncated JPEG and PNG files (even a JPEG missing only its EOI marker) are rejected: imdecode
  returns None, so `read_image` raises ImageError rather than returning a partly grey image.
- Pillow's CMYK JPEGs (Adobe, inverted) decode to RGB = (255 - C)(255 - K) / 255 within 1 level.
- OpenCV reads 8-bit TIFFs through libtiff's RGBA interface, which premultiplies alpha;
  `read_image` undoes that so an RGBA TIFF composites like an RGBA PNG.
- IMREAD_REDUCED_COLOR_N yields ceil(side / N) and applies EXIF orientation after reducing.
"""

import math
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from imgclf.data.imaging import (
    INTERPOLATIONS,
    ImageError,
    centre_crop_box,
    jpeg_reduction,
    load_resized,
    read_image,
    resize_aspect_aware,
)

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)
MAGENTA, YELLOW, WHITE = (255, 0, 255), (255, 255, 0), (255, 255, 255)
EXIF_ORIENTATION = 0x0112


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def save_pil(image: Image.Image, path: Path, **params: object) -> Path:
    """Save a Pillow image (format from the suffix) and return the path."""
    image.save(path, **params)
    return path


def write_cv2(array: np.ndarray, path: Path) -> Path:
    """Write an array with OpenCV (BGR(A) channel order); works for non-ASCII paths too."""
    ok, encoded = cv2.imencode(path.suffix, array)
    assert ok
    encoded.tofile(path)
    return path


def rgb_image(array: np.ndarray) -> Image.Image:
    return Image.fromarray(np.ascontiguousarray(array, dtype=np.uint8), "RGB")


def flat(height: int, width: int, colour: tuple[int, ...]) -> np.ndarray:
    """An (H, W, C) uint8 array filled with one colour."""
    return np.full((height, width, len(colour)), colour, dtype=np.uint8)


def random_rgb(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def photo_like(height: int, width: int, seed: int = 0, cells: int = 10) -> np.ndarray:
    """A photograph-like RGB image: `cells` smooth blobs per column, gradients and fine noise.

    The blob size scales with the image, so content is equally smooth at any resolution.
    """
    rng = np.random.default_rng(seed)
    grid = (cells, max(2, round(cells * width / height)), 3)
    coarse = rng.normal(128, 60, grid).astype(np.float32)
    smooth = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    smooth[:, :, 0] += 40 * xx / width
    smooth[:, :, 2] -= 40 * yy / height
    smooth += rng.normal(0, 4, smooth.shape).astype(np.float32)
    return np.clip(smooth, 0, 255).astype(np.uint8)


def mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.abs(a.astype(np.int32) - b.astype(np.int32)).mean())


def max_abs_diff(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.abs(np.asarray(a, np.int32) - np.asarray(b, np.int32)).max())


def over_white(colour: tuple[int, int, int], alpha: int) -> np.ndarray:
    """Exact straight-alpha composite of `colour` over white, rounded to nearest."""
    c = np.array(colour, dtype=np.float64)
    return np.rint((c * alpha + 255 * (255 - alpha)) / 255)


def assert_rgb8(image: np.ndarray, height: int, width: int) -> None:
    assert image.dtype == np.uint8
    assert image.shape == (height, width, 3)
    assert image.flags.c_contiguous


def book_aspect_aware(image: np.ndarray, side: int, inter: int = cv2.INTER_AREA) -> np.ndarray:
    """The book's AspectAwarePreprocessor (ch. 2) for a square `side` target, as a reference."""
    height, width = image.shape[:2]
    d_w = d_h = 0
    if width < height:  # imutils.resize(width=side)
        image = cv2.resize(image, (side, int(height * side / float(width))), interpolation=inter)
        d_h = int((image.shape[0] - side) / 2.0)
    else:  # imutils.resize(height=side)
        image = cv2.resize(image, (int(width * side / float(height)), side), interpolation=inter)
        d_w = int((image.shape[1] - side) / 2.0)
    height, width = image.shape[:2]
    image = image[d_h : height - d_h, d_w : width - d_w]
    return cv2.resize(image, (side, side), interpolation=inter)


# --------------------------------------------------------------------------------------------
# Colour order
# --------------------------------------------------------------------------------------------

# (suffix, Pillow save params, lossless)
FORMATS = [
    (".png", {}, True),
    (".bmp", {}, True),
    (".tif", {}, True),
    (".tif", {"compression": "tiff_lzw"}, True),
    (".webp", {"lossless": True}, True),
    (".gif", {}, True),
    (".jpg", {"quality": 95}, False),
    (".webp", {"quality": 90}, False),
]


@pytest.mark.parametrize(("suffix", "params", "lossless"), FORMATS)
def test_red_region_decodes_red_in_channel_0(
    tmp_path: Path, suffix: str, params: dict, lossless: bool
) -> None:
    array = np.concatenate([flat(32, 32, RED), flat(32, 32, BLUE)], axis=1)
    path = save_pil(rgb_image(array), tmp_path / f"redblue{suffix}", **params)
    image = read_image(path)
    assert_rgb8(image, 32, 64)
    red, blue = image[8:24, 4:24], image[8:24, 40:60]  # away from the edge (chroma bleed)
    if lossless:
        assert (red == RED).all() and (blue == BLUE).all()
    else:
        assert max_abs_diff(red, flat(16, 20, RED)) <= 10
        assert max_abs_diff(blue, flat(16, 20, BLUE)) <= 10


def test_opencv_written_bgr_file_is_returned_as_rgb(tmp_path: Path) -> None:
    bgr = np.concatenate([flat(4, 4, (0, 0, 255)), flat(4, 4, (255, 0, 0))], axis=1)
    image = read_image(write_cv2(bgr, tmp_path / "cv.png"))
    assert (image[:, :4] == RED).all() and (image[:, 4:] == BLUE).all()


@pytest.mark.parametrize(
    ("suffix", "params"), [(s, p) for s, p, lossless in FORMATS if lossless and s != ".gif"]
)
def test_lossless_formats_round_trip_exactly(tmp_path: Path, suffix: str, params: dict) -> None:
    array = random_rgb(13, 17, seed=1)
    image = read_image(save_pil(rgb_image(array), tmp_path / f"random{suffix}", **params))
    assert_rgb8(image, 13, 17)
    np.testing.assert_array_equal(image, array)


# --------------------------------------------------------------------------------------------
# Formats: grayscale, alpha, palette, 16-bit, CMYK
# --------------------------------------------------------------------------------------------


def test_grayscale_png_is_replicated_to_three_channels(tmp_path: Path) -> None:
    gray = np.arange(256, dtype=np.uint8).reshape(16, 16)
    image = read_image(save_pil(Image.fromarray(gray, "L"), tmp_path / "gray.png"))
    assert_rgb8(image, 16, 16)
    for channel in range(3):
        np.testing.assert_array_equal(image[:, :, channel], gray)


def test_one_bit_png_is_black_and_white(tmp_path: Path) -> None:
    bits = Image.fromarray(np.array([[0, 255, 0], [255, 0, 255]], np.uint8), "L").convert("1")
    image = read_image(save_pil(bits, tmp_path / "bits.png"))
    np.testing.assert_array_equal(image[:, :, 0], [[0, 255, 0], [255, 0, 255]])
    assert (image == image[:, :, :1]).all()


def test_grayscale_jpeg_has_three_identical_channels(tmp_path: Path) -> None:
    gray = np.tile(np.arange(0, 256, 4, dtype=np.uint8), (24, 1))
    path = save_pil(Image.fromarray(gray, "L"), tmp_path / "gray.jpg", quality=95)
    image = read_image(path)
    assert_rgb8(image, 24, 64)
    assert (image == image[:, :, :1]).all()
    assert mean_abs_diff(image[:, :, 0], np.asarray(Image.open(path))) <= 1.0
    assert mean_abs_diff(image[:, :, 0], gray) <= 2.0


# Pixels of a 1-row RGBA image: opaque, transparent (with a non-white stored colour) and partly
# transparent ones; alpha = 128 is the "50%" case.
RGBA_PIXELS = [
    (*RED, 255),
    (12, 34, 56, 255),
    (0, 255, 0, 0),
    (0, 0, 0, 0),
    (0, 0, 255, 128),
    (10, 200, 30, 128),
    (0, 0, 0, 128),
    (200, 100, 50, 1),
    (200, 100, 50, 254),
]


@pytest.mark.parametrize(
    ("suffix", "params"),
    [
        (".png", {}),
        (".webp", {"lossless": True}),
        (".tif", {}),
        (".tif", {"compression": "tiff_lzw"}),
    ],
)
def test_rgba_is_composited_on_white(tmp_path: Path, suffix: str, params: dict) -> None:
    rgba = Image.new("RGBA", (len(RGBA_PIXELS), 1))
    rgba.putdata(RGBA_PIXELS)
    image = read_image(save_pil(rgba, tmp_path / f"alpha{suffix}", **params))
    assert_rgb8(image, 1, len(RGBA_PIXELS))
    for x, (*colour, alpha) in enumerate(RGBA_PIXELS):
        got = image[0, x]
        if alpha == 255:
            assert tuple(got) == tuple(colour), (x, got)
        elif alpha == 0:
            assert tuple(got) == WHITE, (x, got)
        else:
            assert max_abs_diff(got, over_white(tuple(colour), alpha)) <= 1, (x, got, alpha)


def test_gray_alpha_png_is_composited_on_white(tmp_path: Path) -> None:
    pixels = [(100, 255), (100, 0), (100, 128), (0, 128)]
    la = Image.new("LA", (len(pixels), 1))
    la.putdata(pixels)
    image = read_image(save_pil(la, tmp_path / "la.png"))
    assert_rgb8(image, 1, 4)
    expected = [over_white((v, v, v), a) for v, a in pixels]
    assert max_abs_diff(image[0], expected) <= 1
    assert tuple(image[0, 0]) == (100, 100, 100) and tuple(image[0, 1]) == WHITE


def _palette_image(indices: list[int]) -> Image.Image:
    palette = [*RED, *GREEN, *BLUE, 10, 20, 30, 250, 128, 3]
    image = Image.new("P", (len(indices), 1))
    image.putpalette(palette)
    image.putdata(indices)
    return image


def test_palette_png_colours_come_out_exactly(tmp_path: Path) -> None:
    image = read_image(save_pil(_palette_image([0, 1, 2, 3, 4, 0]), tmp_path / "p.png"))
    assert_rgb8(image, 1, 6)
    expected = [RED, GREEN, BLUE, (10, 20, 30), (250, 128, 3), RED]
    np.testing.assert_array_equal(image[0], expected)


def test_palette_png_transparency_is_composited_on_white(tmp_path: Path) -> None:
    # tRNS alpha per palette index: 0 -> opaque red, 1 -> transparent green, 2 -> half blue.
    path = save_pil(
        _palette_image([0, 1, 2]), tmp_path / "p.png", transparency=bytes([255, 0, 128])
    )
    image = read_image(path)
    assert tuple(image[0, 0]) == RED
    assert tuple(image[0, 1]) == WHITE
    assert max_abs_diff(image[0, 2], over_white(BLUE, 128)) <= 1


def test_gif_palette_colours_come_out_exactly(tmp_path: Path) -> None:
    array = np.array([[RED, GREEN], [BLUE, (10, 20, 30)]], dtype=np.uint8).repeat(3, axis=0)
    image = read_image(save_pil(rgb_image(array), tmp_path / "p.gif"))
    np.testing.assert_array_equal(image, array)


def rescale16(values: np.ndarray) -> np.ndarray:
    """The documented 16 -> 8 bit mapping: round(v * 255 / 65535)."""
    return np.rint(values.astype(np.float64) * 255 / 65535).astype(np.uint8)


def test_16bit_grayscale_png_maps_every_value_by_rounding(tmp_path: Path) -> None:
    values = np.arange(65536, dtype=np.uint16).reshape(256, 256)  # every possible value
    path = save_pil(Image.fromarray(values), tmp_path / "gray16.png")
    assert cv2.imread(str(path), cv2.IMREAD_UNCHANGED).dtype == np.uint16  # really 16-bit
    image = read_image(path)
    assert_rgb8(image, 256, 256)
    for channel in range(3):
        np.testing.assert_array_equal(image[:, :, channel], rescale16(values))
    flat_values = image[:, :, 0].ravel()
    # 128 -> 0.498 and 129 -> 0.502: rounding, not truncation and not `v >> 8`.
    assert (
        flat_values[[0, 128, 129, 257, 32767, 32768, 32896, 65535]]
        == [0, 0, 1, 1, 127, 128, 128, 255]
    ).all()


def test_16bit_rgb_png_keeps_channel_order_and_rounds(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    rgb16 = rng.integers(0, 65536, (8, 8, 3), dtype=np.uint16)
    rgb16[0, 0], rgb16[0, 1] = (65535, 0, 32896), (0, 65535, 129)
    path = write_cv2(np.ascontiguousarray(rgb16[:, :, ::-1]), tmp_path / "rgb16.png")
    assert cv2.imread(str(path), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    image = read_image(path)
    assert_rgb8(image, 8, 8)
    np.testing.assert_array_equal(image, rescale16(rgb16))
    assert tuple(image[0, 0]) == (255, 0, 128) and tuple(image[0, 1]) == (0, 255, 1)


def test_16bit_rgba_png_is_composited_on_white(tmp_path: Path) -> None:
    bgra16 = np.array(
        [[[0, 0, 65535, 65535], [0, 65535, 0, 0], [65535, 0, 0, 32896]]], dtype=np.uint16
    )
    image = read_image(write_cv2(bgra16, tmp_path / "rgba16.png"))
    assert_rgb8(image, 1, 3)
    assert tuple(image[0, 0]) == RED
    assert tuple(image[0, 1]) == WHITE
    assert max_abs_diff(image[0, 2], over_white(BLUE, 128)) <= 1


def test_16bit_tiff_is_rescaled(tmp_path: Path) -> None:
    rgb16 = np.random.default_rng(3).integers(0, 65536, (5, 7, 3), dtype=np.uint16)
    image = read_image(write_cv2(np.ascontiguousarray(rgb16[:, :, ::-1]), tmp_path / "a.tif"))
    np.testing.assert_array_equal(image, rescale16(rgb16))


@pytest.mark.parametrize("rgb", [(200, 30, 60), (20, 150, 220), RED, (128, 128, 128), WHITE])
@pytest.mark.parametrize("reduce", [1, 2])
def test_cmyk_jpeg_from_rgb_comes_out_close(
    tmp_path: Path, rgb: tuple[int, int, int], reduce: int
) -> None:
    path = save_pil(
        Image.new("RGB", (32, 24), rgb).convert("CMYK"), tmp_path / "c.jpg", quality=95
    )
    assert Image.open(path).mode == "CMYK"  # the fixture really is a CMYK JPEG
    image = read_image(path, reduce=reduce)
    assert_rgb8(image, 24 // reduce, 32 // reduce)
    # Observed: OpenCV is off by at most 1 level (and never inverted).
    assert mean_abs_diff(image, flat(*image.shape[:2], rgb)) <= 1.5
    assert max_abs_diff(image, flat(*image.shape[:2], rgb)) <= 3


@pytest.mark.parametrize("cmyk", [(0, 100, 200, 60), (30, 30, 30, 200), (10, 200, 50, 128)])
def test_cmyk_jpeg_with_black_uses_multiplicative_conversion(
    tmp_path: Path, cmyk: tuple[int, int, int, int]
) -> None:
    path = save_pil(Image.new("CMYK", (16, 16), cmyk), tmp_path / "k.jpg", quality=95)
    image = read_image(path)
    *colour, black = cmyk
    expected = [(255 - v) * (255 - black) / 255 for v in colour]
    assert max_abs_diff(image, np.broadcast_to(np.rint(expected), image.shape)) <= 2


def test_float_tiff_is_rejected_with_reason(tmp_path: Path) -> None:
    path = write_cv2(np.full((4, 4, 3), 0.5, np.float32), tmp_path / "float.tif")
    with pytest.raises(ImageError, match="pixel type"):
        read_image(path)


# --------------------------------------------------------------------------------------------
# JPEG EXIF orientation
# --------------------------------------------------------------------------------------------


def _oriented_jpeg(path: Path, orientation: int) -> np.ndarray:
    """Write a wide 48x32 JPEG with blocky, distinct corners; return the stored pixels."""
    stored = flat(32, 48, (90, 90, 90))
    stored[:8, :8] = RED  # top-left
    stored[:8, -8:] = GREEN  # top-right
    stored[-8:, :8] = BLUE  # bottom-left
    stored[-8:, -8:] = YELLOW  # bottom-right
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    rgb_image(stored).save(path, quality=95, subsampling=0, exif=exif.tobytes())
    return stored


def test_exif_orientation_6_rotates_clockwise(tmp_path: Path) -> None:
    stored = _oriented_jpeg(tmp_path / "o6.jpg", 6)
    image = read_image(tmp_path / "o6.jpg")
    assert image.shape == (48, 32, 3)  # transposed compared with the stored 32x48
    # 90 degrees clockwise: stored top-left goes to the top-right, bottom-left to the top-left.
    assert max_abs_diff(image[:4, -4:], flat(4, 4, RED)) <= 8
    assert max_abs_diff(image[:4, :4], flat(4, 4, BLUE)) <= 8
    assert max_abs_diff(image[-4:, -4:], flat(4, 4, GREEN)) <= 8
    assert mean_abs_diff(image, np.rot90(stored, k=-1)) <= 2.0


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_matches_pillow_exif_transpose(
    tmp_path: Path, orientation: int
) -> None:
    path = tmp_path / f"o{orientation}.jpg"
    _oriented_jpeg(path, orientation)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
    image = read_image(path)
    assert image.shape == expected.shape
    assert mean_abs_diff(image, expected) <= 2.0


@pytest.mark.parametrize("reduce", [2, 4, 8])
def test_exif_orientation_is_applied_to_reduced_decodes(tmp_path: Path, reduce: int) -> None:
    _oriented_jpeg(tmp_path / "o6.jpg", 6)
    image = read_image(tmp_path / "o6.jpg", reduce=reduce)
    assert image.shape == (math.ceil(48 / reduce), math.ceil(32 / reduce), 3)
    if reduce < 8:  # at 1/8 the 8-pixel corner is a single blended pixel
        assert max_abs_diff(image[0, -1], RED) <= 12


# --------------------------------------------------------------------------------------------
# Errors and file names
# --------------------------------------------------------------------------------------------


def test_empty_file_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(ImageError, match="empty file"):
        read_image(path)


@pytest.mark.parametrize(
    "content",
    [b"hello, this is not an image\n" * 20, b"\xff", b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n"],
    ids=["text", "one-byte", "jpeg-magic-only", "png-signature-only"],
)
def test_garbage_is_rejected(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.jpg"
    path.write_bytes(content)
    with pytest.raises(ImageError, match="not a decodable image"):
        read_image(path)


def test_image_error_is_a_value_error() -> None:
    assert issubclass(ImageError, ValueError)


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
@pytest.mark.parametrize("keep", [0.5, 0.9, "drop-last-2-bytes"])
def test_truncated_file_is_rejected(tmp_path: Path, suffix: str, keep: float | str) -> None:
    # Documented OpenCV 5 behaviour: no partial image, not even for a JPEG missing only EOI.
    full = save_pil(rgb_image(photo_like(64, 64)), tmp_path / f"full{suffix}").read_bytes()
    cut = len(full) - 2 if keep == "drop-last-2-bytes" else int(len(full) * keep)
    path = tmp_path / f"cut{suffix}"
    path.write_bytes(full[:cut])
    with pytest.raises(ImageError, match="not a decodable image"):
        read_image(path)


def test_trailing_bytes_after_the_image_are_ignored(tmp_path: Path) -> None:
    array = random_rgb(8, 8)
    path = save_pil(rgb_image(array), tmp_path / "tail.png")
    path.write_bytes(path.read_bytes() + b"trailing garbage" * 4)
    np.testing.assert_array_equal(read_image(path), array)


def test_header_larger_than_opencv_limit_is_an_image_error(tmp_path: Path) -> None:
    # A valid PNG header claiming 100000 x 100000 pixels: OpenCV raises cv2.error, not None.
    def chunk(tag: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(tag + body).to_bytes(4, "big")
        return len(body).to_bytes(4, "big") + tag + body + crc

    ihdr = (100_000).to_bytes(4, "big") * 2 + bytes([8, 2, 0, 0, 0])
    idat = chunk(b"IDAT", zlib.compress(bytes(10)))  # without image data OpenCV returns None
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + idat + chunk(b"IEND", b"")
    path = tmp_path / "huge.png"
    path.write_bytes(data)
    with pytest.raises(ImageError, match="not a decodable image"):
        read_image(path)


def test_missing_file_says_it_cannot_be_read(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="cannot read file"):
        read_image(tmp_path / "nope.jpg")


def test_directory_says_it_cannot_be_read(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="cannot read file"):
        read_image(tmp_path)


@pytest.mark.parametrize("name", ["čaj 画像.png", "données/ünïcödé.jpg", "space name.webp"])
def test_non_ascii_file_names_decode(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.parent.mkdir(exist_ok=True)
    save_pil(Image.new("RGB", (20, 10), (10, 200, 30)), path, quality=95)
    image = read_image(path)
    assert_rgb8(image, 10, 20)
    assert max_abs_diff(image, flat(10, 20, (10, 200, 30))) <= 3
    assert load_resized(str(path), (8, 8)).shape == (8, 8, 3)  # str paths work too


# --------------------------------------------------------------------------------------------
# JPEG reduced decoding
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("width", "height", "size", "expected"),
    [
        (500, 375, (224, 224), 1),
        (2000, 1500, (224, 224), 4),  # /8 gives 250 x 188: the short side is too small
        (4000, 3000, (224, 224), 8),
        (1500, 2000, (224, 224), 4),  # portrait
        (449, 449, (224, 224), 2),  # ceil(449 / 2) = 225
        (447, 447, (224, 224), 2),  # ceil(447 / 2) = 224, exactly enough
        (446, 446, (224, 224), 1),  # 223 is one short
        (1785, 1785, (224, 224), 8),  # ceil(1785 / 8) = 224
        (1784, 1784, (224, 224), 4),  # 223 at /8, 446 at /4
        (897, 897, (224, 224), 4),  # ceil(897 / 4) = 225
        (100, 100, (224, 224), 1),  # smaller than the target: never reduce
        (224, 224, (224, 224), 1),
        (2400, 800, (100, 300), 8),  # size is (h, w): 300 x 100 at /8
        (800, 2400, (100, 300), 2),  # the same target on the transposed image
        (2400, 800, (300, 100), 2),
        (64, 64, (1, 1), 8),
    ],
)
def test_jpeg_reduction_table(
    width: int, height: int, size: tuple[int, int], expected: int
) -> None:
    assert jpeg_reduction(width, height, size) == expected


def test_jpeg_reduction_is_the_largest_factor_that_keeps_the_target() -> None:
    rng = np.random.default_rng(4)
    for _ in range(500):
        width, height = (int(v) for v in rng.integers(1, 5000, 2))
        size = (int(rng.integers(1, 600)), int(rng.integers(1, 600)))
        factor = jpeg_reduction(width, height, size)
        assert factor in (1, 2, 4, 8)

        def fits(f: int, w: int = width, h: int = height, s: tuple[int, int] = size) -> bool:
            return math.ceil(w / f) >= s[1] and math.ceil(h / f) >= s[0]

        assert factor == 1 or fits(factor)
        assert all(not fits(f) for f in (2, 4, 8) if f > factor)


@pytest.mark.parametrize(
    "width, height", [(33, 17), (225, 449), (7, 1), (1, 1), (9, 9), (100, 64)]
)
@pytest.mark.parametrize("reduce", [2, 4, 8])
def test_reduced_jpeg_decode_is_ceil_of_each_side(
    tmp_path: Path, width: int, height: int, reduce: int
) -> None:
    path = save_pil(Image.new("RGB", (width, height), (40, 80, 120)), tmp_path / "r.jpg")
    image = read_image(path, reduce=reduce)
    assert_rgb8(image, math.ceil(height / reduce), math.ceil(width / reduce))


def test_reduced_grayscale_jpeg_is_still_rgb(tmp_path: Path) -> None:
    path = save_pil(Image.new("L", (9, 5), 77), tmp_path / "g.jpg")
    image = read_image(path, reduce=2)
    assert_rgb8(image, 3, 5)
    assert max_abs_diff(image, flat(3, 5, (77, 77, 77))) <= 2


def test_reduced_jpeg_content_matches_area_downsampling(tmp_path: Path) -> None:
    path = save_pil(rgb_image(photo_like(256, 320, seed=5)), tmp_path / "p.jpg", quality=95)
    full = read_image(path)
    reduced = read_image(path, reduce=4)
    expected = cv2.resize(full, (80, 64), interpolation=cv2.INTER_AREA)
    assert mean_abs_diff(reduced, expected) <= 2.0


@pytest.mark.parametrize(("suffix", "params"), [(".png", {}), (".webp", {"lossless": True})])
def test_reduce_is_ignored_for_non_jpeg(tmp_path: Path, suffix: str, params: dict) -> None:
    array = random_rgb(10, 14)
    path = save_pil(rgb_image(array), tmp_path / f"full{suffix}", **params)
    for reduce in (2, 4, 8):
        np.testing.assert_array_equal(read_image(path, reduce=reduce), array)


def test_unsupported_reduce_factor_decodes_jpeg_at_full_size(tmp_path: Path) -> None:
    path = save_pil(Image.new("RGB", (9, 5), 77), tmp_path / "j.jpg")
    assert read_image(path, reduce=3).shape == (5, 9, 3)


# --------------------------------------------------------------------------------------------
# centre_crop_box and resize_aspect_aware
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("width", "height", "size", "box"),
    [
        (400, 100, (50, 50), (150, 0, 100, 100)),
        (100, 400, (50, 50), (0, 150, 100, 100)),
        (640, 480, (224, 224), (80, 0, 480, 480)),
        (300, 200, (100, 150), (0, 0, 300, 200)),  # already the target's aspect
        (1000, 1000, (100, 200), (0, 250, 1000, 500)),  # non-square target, (h, w)
        (1000, 1000, (200, 100), (250, 0, 500, 1000)),
        (7, 1, (50, 50), (3, 0, 1, 1)),
        (1, 1, (3, 5), (0, 0, 1, 1)),
        (50, 50, (1, 100), (0, 24, 50, 1)),  # a crop side never rounds to 0
    ],
)
def test_centre_crop_box_table(
    width: int, height: int, size: tuple[int, int], box: tuple[int, int, int, int]
) -> None:
    assert centre_crop_box(width, height, size) == box


def test_centre_crop_box_properties() -> None:
    rng = np.random.default_rng(6)
    for _ in range(1000):
        width, height = (int(v) for v in rng.integers(1, 3000, 2))
        target_h, target_w = (int(v) for v in rng.integers(1, 400, 2))
        x, y, w, h = centre_crop_box(width, height, (target_h, target_w))
        assert 1 <= w <= width and 1 <= h <= height
        assert w == width or h == height  # the largest box: one side is kept whole
        assert x == (width - w) // 2 and y == (height - h) // 2  # centred
        # The aspect ratio matches the target to within rounding of the trimmed side.
        if w == width:
            assert abs(h - width * target_h / target_w) <= 0.5 or h == 1
        else:
            assert abs(w - height * target_w / target_h) <= 0.5 or w == 1


def _random_size_cases() -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """(input (h, w), target (h, w)) pairs: random, tiny, 1 x N and non-square."""
    rng = np.random.default_rng(7)
    cases = [((int(a), int(b)), (int(c), int(d))) for a, b, c, d in rng.integers(1, 300, (40, 4))]
    cases += [((1, 1), (5, 5)), ((1, 97), (32, 32)), ((97, 1), (32, 32)), ((1, 50), (1, 7))]
    cases += [((2, 3), (224, 224)), ((480, 640), (1, 1)), ((333, 500), (64, 96))]
    return [*cases, ((500, 333), (96, 64)), ((224, 224), (224, 224))]


@pytest.mark.parametrize("interpolation", sorted(INTERPOLATIONS))
def test_resize_output_is_always_exactly_the_target(interpolation: str) -> None:
    for (height, width), size in _random_size_cases():
        image = random_rgb(height, width, seed=height * 1000 + width)
        resized = resize_aspect_aware(image, size, interpolation)
        assert_rgb8(resized, *size)


def _framed(height: int, width: int, centre: tuple[int, int, int]) -> np.ndarray:
    """Magenta image whose centred largest square is `centre`; the crop must keep only it."""
    image = flat(height, width, MAGENTA)
    side = min(height, width)
    y, x = (height - side) // 2, (width - side) // 2
    image[y : y + side, x : x + side] = centre
    return image


@pytest.mark.parametrize("interpolation", sorted(INTERPOLATIONS))
@pytest.mark.parametrize(("height", "width"), [(100, 400), (400, 100), (100, 401), (333, 100)])
def test_framing_keeps_only_the_centre(interpolation: str, height: int, width: int) -> None:
    resized = resize_aspect_aware(_framed(height, width, GREEN), (50, 50), interpolation)
    np.testing.assert_array_equal(resized, flat(50, 50, GREEN))


@pytest.mark.parametrize("wide", [True, False])
def test_framing_is_not_shifted(wide: bool) -> None:
    # The centre square is split in two colour halves; each must land on its half of the output.
    square = np.concatenate([flat(100, 50, RED), flat(100, 50, BLUE)], axis=1)
    border = flat(100, 150, MAGENTA)
    image = np.concatenate([border, square, border], axis=1)
    if not wide:
        image, square = image.transpose(1, 0, 2), square.transpose(1, 0, 2)
    resized = resize_aspect_aware(np.ascontiguousarray(image), (50, 50))
    expected = cv2.resize(np.ascontiguousarray(square), (50, 50), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(resized, expected)


def test_non_square_target_framing() -> None:
    # 300 x 300 with a centred 300 x 150 (w x h) band; target (h, w) = (40, 80) keeps only it.
    image = flat(300, 300, MAGENTA)
    image[75:225] = YELLOW
    np.testing.assert_array_equal(resize_aspect_aware(image, (40, 80)), flat(40, 80, YELLOW))


@pytest.mark.parametrize("interpolation", sorted(INTERPOLATIONS))
def test_same_size_input_is_returned_unchanged_as_a_copy(interpolation: str) -> None:
    image = random_rgb(37, 53)
    resized = resize_aspect_aware(image, (37, 53), interpolation)
    np.testing.assert_array_equal(resized, image)
    assert not np.shares_memory(resized, image)


def test_exact_crop_is_bit_exact_and_does_not_alias_the_input() -> None:
    image = random_rgb(300, 200)  # tall; the 200 x 200 target is the middle rows
    resized = resize_aspect_aware(image, (200, 200))
    np.testing.assert_array_equal(resized, image[50:250])
    assert resized.flags.c_contiguous and not np.shares_memory(resized, image)


@pytest.mark.parametrize(
    ("height", "width", "side", "tolerance"),
    [
        (310, 410, 256, 3.0),  # the book's Fig 2.4 example
        (500, 300, 224, 3.0),
        (375, 500, 224, 3.0),
        (1000, 667, 128, 3.0),
        (600, 400, 224, 0.5),  # the book's crop lands on whole pixels: the same result
        # The book's int() truncation crops 65 columns here and squeezes them into 64, so it
        # frames ~0.6 output pixels differently; an off-centre or squashed resize gives ~40-60.
        (480, 640, 64, 4.5),
    ],
)
def test_matches_the_books_two_step_algorithm(
    height: int, width: int, side: int, tolerance: float
) -> None:
    image = photo_like(height, width, seed=height + width)
    ours = resize_aspect_aware(image, (side, side))
    book = book_aspect_aware(image, side)
    assert ours.shape == book.shape == (side, side, 3)
    assert mean_abs_diff(ours, book) < tolerance
    squashed = cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA)
    assert mean_abs_diff(squashed, book) > 20  # so the comparison can tell a wrong framing apart


# --------------------------------------------------------------------------------------------
# Interpolations and load_resized
# --------------------------------------------------------------------------------------------


def test_interpolation_names() -> None:
    assert set(INTERPOLATIONS) == {"area", "linear", "cubic"}
    assert len(set(INTERPOLATIONS.values())) == len(INTERPOLATIONS)


@pytest.mark.parametrize("interpolation", sorted(INTERPOLATIONS))
def test_each_interpolation_selects_its_opencv_flag(interpolation: str) -> None:
    image = photo_like(90, 120, seed=8)
    crop = image[:, 15:105]
    expected = cv2.resize(crop, (32, 32), interpolation=INTERPOLATIONS[interpolation])
    np.testing.assert_array_equal(resize_aspect_aware(image, (32, 32), interpolation), expected)
    others = [n for n in INTERPOLATIONS if n != interpolation]
    assert all(
        not np.array_equal(resize_aspect_aware(image, (32, 32), other), expected)
        for other in others
    )


def test_unknown_interpolation_is_rejected() -> None:
    with pytest.raises(KeyError):
        resize_aspect_aware(random_rgb(10, 20), (5, 5), "nearest-ish")


@pytest.mark.parametrize("interpolation", sorted(INTERPOLATIONS))
def test_load_resized_reads_and_resizes(tmp_path: Path, interpolation: str) -> None:
    path = save_pil(rgb_image(_framed(60, 180, GREEN)), tmp_path / "f.png")
    resized = load_resized(path, (24, 24), interpolation)
    np.testing.assert_array_equal(resized, flat(24, 24, GREEN))


def test_load_resized_with_jpeg_reduction_matches_full_decode(tmp_path: Path) -> None:
    width, height, size = 2000, 1500, (224, 224)
    path = save_pil(rgb_image(photo_like(height, width, seed=9)), tmp_path / "big.jpg")
    factor = jpeg_reduction(width, height, size)
    assert factor == 4
    fast = load_resized(path, size, reduce=factor)
    slow = load_resized(path, size)
    assert_rgb8(fast, *size)
    assert mean_abs_diff(fast, slow) < 2.0
