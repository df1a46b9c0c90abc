import io
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import mmgraph.data.images as images
from mmgraph.data.images import load_image
from mmgraph.data.synthetic import render_image
from mmgraph.errors import DataError

REF = "synthetic:shape=hexagon;hue=0.55;texture=checker;size=0.7;x=0.5;y=0.5;rot=10;bg=0.3"


def pattern(w: int, h: int) -> np.ndarray:
    """An RGBA picture with gradients, noise and a transparent band (varied PNG filters)."""
    yy, xx = np.mgrid[0:h, 0:w]
    arr = np.stack([xx * 255 // w, yy * 255 // h, (xx + yy) % 256,
                    np.where((yy // 30) % 3 == 0, 0, 255)], -1).astype(np.uint8)
    arr[::7, ::5, :3] = np.random.default_rng(0).integers(0, 256, size=arr[::7, ::5, :3].shape)
    return arr


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def test_path_bytes_and_root(tmp_path):
    img = Image.fromarray(pattern(90, 60), "RGBA")
    img.save(tmp_path / "a.png")
    by_path = load_image(tmp_path / "a.png")
    by_str = load_image(str(tmp_path / "a.png"))
    by_root = load_image("a.png", root=tmp_path)
    by_bytes = load_image(png_bytes(img))
    assert by_path.mode == "RGB" and by_path.size == (90, 60)
    for other in (by_str, by_root, by_bytes):
        assert np.array_equal(np.asarray(other), np.asarray(by_path))
    arr = np.asarray(by_path)
    assert (arr[:30] == 255).all()  # transparent rows composited on white
    assert np.array_equal(arr[40, 1], pattern(90, 60)[40, 1, :3])


def test_max_side_keeps_aspect(tmp_path):
    Image.fromarray(pattern(300, 120)[..., :3]).save(tmp_path / "b.jpg", quality=90)
    small = load_image(tmp_path / "b.jpg", max_side=50)
    assert small.size == (50, 20) and small.mode == "RGB"
    assert load_image(tmp_path / "b.jpg", max_side=1000).size == (300, 120)  # never enlarged
    with pytest.raises(DataError, match="max_side"):
        load_image(tmp_path / "b.jpg", max_side=0)


def test_exif_orientation(tmp_path):
    img = Image.fromarray(pattern(80, 40)[..., :3])
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 degrees when displayed
    img.save(tmp_path / "rot.jpg", exif=exif)
    assert load_image(tmp_path / "rot.jpg").size == (40, 80)
    assert load_image(tmp_path / "rot.jpg", max_side=20).size == (10, 20)


def test_synthetic_refs():
    assert np.array_equal(np.asarray(load_image(REF)), np.asarray(render_image(REF, 64)))
    assert load_image(REF, max_side=32).size == (32, 32)
    with pytest.raises(DataError, match="shape"):
        load_image("synthetic:shape=blob;hue=0.1;texture=solid")


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="not found") as err:
        load_image("nope.png", root=tmp_path)
    assert str(tmp_path / "nope.png") in str(err.value)


@pytest.mark.parametrize("content", [b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\0" * 40])
def test_corrupt_file(tmp_path, content):
    (tmp_path / "bad.png").write_bytes(content)
    with pytest.raises(DataError, match="cannot decode") as err:
        load_image(tmp_path / "bad.png")
    assert "bad.png" in str(err.value) and "\n" not in str(err.value)


def test_truncated_png(tmp_path):
    blob = png_bytes(Image.fromarray(pattern(120, 80), "RGBA"))
    (tmp_path / "cut.png").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataError, match="cut.png"):
        load_image(tmp_path / "cut.png")
    with pytest.raises(DataError, match="bytes of image data"):
        load_image(blob[: len(blob) // 2])


def test_unsupported_reference():
    with pytest.raises(DataError, match="unsupported image reference"):
        load_image(12345)


def test_decompression_bomb_policy(tmp_path, monkeypatch):
    Image.fromarray(pattern(100, 100)[..., :3]).save(tmp_path / "big.bmp")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Pillow's limit, restored afterwards
    with pytest.raises(DataError, match="too large") as err:
        load_image(tmp_path / "big.bmp")
    assert "big.bmp" in str(err.value)


@pytest.mark.parametrize("mode", ["RGBA", "RGB", "L", "LA", "P"])
def test_png_strips_match_whole_decode(monkeypatch, mode):
    img = Image.fromarray(pattern(733, 517), "RGBA")
    img = img.convert("RGB").quantize(64) if mode == "P" else img.convert(mode)
    blob = png_bytes(img)
    k = 733 // 100
    expected = images._fit(images._to_rgb(Image.open(io.BytesIO(blob))).reduce(k), 100, (733, 517))
    # Force the strip decoder with strips of a few rows, so most strips start mid-image.
    monkeypatch.setattr(images, "STREAM_PIXELS", 0)
    monkeypatch.setattr(images, "STRIP_BYTES", 40_000)  # 7-row strips for RGBA (k = 7)
    streamed = load_image(blob, max_side=100)
    assert streamed.size == expected.size == (100, 71)
    assert np.array_equal(np.asarray(streamed), np.asarray(expected))


def test_png_strip_limits(tmp_path, monkeypatch):
    blob = png_bytes(Image.fromarray(pattern(200, 100), "RGBA"))
    monkeypatch.setattr(images, "STREAM_PIXELS", 0)
    monkeypatch.setattr(images, "MAX_PIXELS", 10_000)
    with pytest.raises(DataError, match="over the limit"):
        load_image(blob, max_side=50)
    monkeypatch.setattr(images, "MAX_PIXELS", 10**9)
    # 16-bit PNGs are not streamable: they fall back to a whole decode.
    deep = np.asarray(Image.fromarray(pattern(200, 100), "RGBA").convert("L")).astype(np.uint16)
    Image.fromarray(deep * 257).save(tmp_path / "deep.png")
    loaded = load_image(tmp_path / "deep.png")
    assert np.array_equal(np.asarray(loaded)[..., 0], deep)  # rescaled, not clipped to 255
    assert load_image(tmp_path / "deep.png", max_side=50).size == (50, 25)
    (tmp_path / "cut.png").write_bytes(blob[: len(blob) * 2 // 3])
    with pytest.raises(DataError, match="cut.png"):
        load_image(tmp_path / "cut.png", max_side=50)


def write_huge_png(path: Path, w: int, h: int) -> None:
    """A ``w`` x ``h`` grey PNG, left half white, right half black, written without a w*h buffer.

    The first row is stored plainly and every later row with the "Up" filter (all zeros), so
    decoding a strip is only right if the row above each strip is carried over.
    """
    comp = zlib.compressobj(1)
    first = b"\x00" + b"\xff" * (w // 2) + b"\x00" * (w - w // 2)
    parts = [comp.compress(first)]
    block = (b"\x02" + b"\x00" * w) * 1000
    for start in range(1, h, 1000):
        parts.append(comp.compress(block[: (min(start + 1000, h) - start) * (w + 1)]))
    parts.append(comp.flush())

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b""))


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM from /proc")
def test_huge_png_decodes_in_bounded_memory(tmp_path):
    # 14000 x 14000 = 196M pixels: over Pillow's decompression-bomb limit, 196 MB decoded.
    path = tmp_path / "huge.png"
    write_huge_png(path, 14000, 14000)
    with pytest.raises(DataError, match="too large"):
        load_image(path)  # without max_side Pillow's limit applies
    # The module is loaded on its own so that torch stays out of the measured process. The
    # peak is read from VmHWM: ru_maxrss would start from this (large) process's RSS after fork.
    script = textwrap.dedent(f"""
        import importlib.util, numpy as np
        def peak_mib():
            status = open("/proc/self/status").read()
            return int(status.split("VmHWM:")[1].split()[0]) // 1024
        spec = importlib.util.spec_from_file_location("images", {images.__file__!r})
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        before = peak_mib()
        img = np.asarray(module.load_image({str(path)!r}, max_side=64))
        print(img.shape, int(img[:, :28].min()), int(img[:, 36:].max()), peak_mib() - before)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120, cwd=Path(__file__).resolve().parents[2])
    assert out.returncode == 0, out.stderr[-2000:]
    shape, white_min, black_max, grown_mib = out.stdout.strip().rsplit(" ", 3)
    assert shape == "(64, 64, 3)"
    assert int(white_min) == 255 and int(black_max) == 0  # every strip reconstructed
    assert int(grown_mib) < 150                            # a whole decode needs >= 187 MiB
