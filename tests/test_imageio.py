"""The safe image opener: every broken or odd file becomes a named error or a normalized image."""

from __future__ import annotations

import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from detective.casekit.imageio import ImageFolder, ImageReadError, open_image, open_image_info


def digit_like(size: int = 32) -> np.ndarray:
    """A bright square on a dark background: easy to check after conversions."""
    arr = np.zeros((size, size), np.uint8)
    arr[size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = 200
    return arr


def write_huge_png(path: Path, side: int = 10_000) -> None:
    """A valid side x side grayscale PNG (100 MP), written in streamed chunks, never in memory."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    comp = zlib.compressobj(9)
    row = b"\x00" * (side + 1)  # filter byte + pixels
    idat = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


def test_empty_file_is_named(tmp_path: Path) -> None:
    f = tmp_path / "empty.png"
    f.write_bytes(b"")
    with pytest.raises(ImageReadError) as e:
        open_image(f)
    assert e.value.path == str(f) and "empty (0 bytes)" in str(e.value)


def test_not_an_image(tmp_path: Path) -> None:
    f = tmp_path / "notes.jpg"
    f.write_text("these are my notes, not a photo\n")
    with pytest.raises(ImageReadError, match="notes.jpg: not an image file"):
        open_image(f)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ImageReadError, match="cannot read the file"):
        open_image(tmp_path / "gone.png")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_file_is_an_error_not_grey_padding(tmp_path: Path, fmt: str) -> None:
    rng = np.random.default_rng(0)
    f = tmp_path / f"cut.{fmt.lower()}"
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(f, fmt)
    data = f.read_bytes()
    f.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError) as e:
        open_image(f)
    assert str(f) in str(e.value) and "truncated" in e.value.cause.lower()


def test_cmyk_becomes_rgb_and_reports_its_mode(tmp_path: Path) -> None:
    f = tmp_path / "print.jpg"
    Image.fromarray(digit_like()).convert("CMYK").save(f, "JPEG", quality=95)
    image, info = open_image_info(f)
    assert (info.original_mode, info.mode, image.mode) == ("CMYK", "RGB", "RGB")
    arr = np.asarray(image).astype(int)
    assert arr[16, 16].min() > 150 and arr[0, 0].max() < 40  # square bright, background dark


def test_16bit_is_scaled_not_clipped(tmp_path: Path) -> None:
    f = tmp_path / "scan16.png"
    arr = digit_like().astype(np.uint16) * 257  # 200 → 51400 of 65535
    Image.fromarray(arr).save(f)
    image, info = open_image_info(f, mode="L")
    assert info.original_mode.startswith("I")
    out = np.asarray(image)
    # Pillow's convert("L") would clip 51400 to 255 everywhere the square is, and 0 elsewhere:
    # here the square keeps its 8-bit value 200.
    assert out[16, 16] == 200 and out[0, 0] == 0


def test_palette_with_transparency_is_composited(tmp_path: Path) -> None:
    f = tmp_path / "icon.png"
    rgba = np.zeros((32, 32, 4), np.uint8)
    rgba[8:24, 8:24] = (255, 0, 0, 255)  # opaque red square on a fully transparent field
    Image.fromarray(rgba, "RGBA").convert("P").save(f, transparency=0)
    with Image.open(f) as raw:
        assert raw.mode == "P" and "transparency" in raw.info
    image, info = open_image_info(f, background=(0, 0, 0))
    assert info.original_mode == "P" and image.mode == "RGB"
    arr = np.asarray(image)
    assert tuple(arr[16, 16]) == (255, 0, 0) and tuple(arr[0, 0]) == (0, 0, 0)


def test_huge_image_is_refused_from_its_header_in_bounded_memory(tmp_path: Path) -> None:
    f = tmp_path / "huge.png"
    write_huge_png(f)
    assert f.stat().st_size < 1_000_000
    # In a fresh process: peak memory must not grow by anything near the 100 MB a decode needs.
    code = f"""
import resource
from detective.casekit.imageio import ImageReadError, open_image
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    open_image({str(f)!r})
except ImageReadError as e:
    print("ERR", e)
print("GROWTH_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "ERR" in out.stdout and "10000x10000 = 100 megapixels" in out.stdout, out.stdout
    assert "huge.png" in out.stdout
    growth_kb = int(out.stdout.split("GROWTH_KB")[1])
    assert growth_kb < 20_000, growth_kb


def test_image_folder_names_the_bad_file_and_keeps_the_rest(tmp_path: Path) -> None:
    for cls in ("cat", "dog"):
        (tmp_path / cls).mkdir()
        for i in range(3):
            Image.fromarray(digit_like()).save(tmp_path / cls / f"{i}.png")
    (tmp_path / "dog" / "1.png").write_bytes(b"")  # one empty file among six
    (tmp_path / "dog" / "readme.txt").write_text("not an image, skipped by extension")
    data = ImageFolder(tmp_path, transform=np.asarray)
    assert data.classes == ["cat", "dog"] and len(data) == 6
    assert data[0][1] == 0 and data[0][0].shape == (32, 32, 3)
    with pytest.raises(ImageReadError, match=r"dog[/\\]1\.png: the file is empty"):
        data[4]
    assert data[5][1] == 1
    assert data.original_modes == {0: "L", 5: "L"}


def test_original_mode_is_kept_on_request(tmp_path: Path) -> None:
    f = tmp_path / "print.jpg"
    Image.fromarray(digit_like()).convert("CMYK").save(f, "JPEG")
    image, info = open_image_info(f, mode="original")
    assert image.mode == info.mode == info.original_mode == "CMYK"
