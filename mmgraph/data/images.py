"""Loading node images from the references stored in ``data[node_type].image``.

A reference is a file path (relative paths are joined to ``root``, usually
``data.meta["image_root"]``), the encoded bytes of an image, or a procedural
``"synthetic:..."`` string drawn by :func:`mmgraph.data.synthetic.render_image`.

Decompression-bomb policy (Pillow's global settings are left untouched):

- PNGs larger than :data:`STREAM_PIXELS` are, when ``max_side`` is given, decoded in horizontal
  strips and box-reduced strip by strip, so even a 21k x 30k clip-art PNG needs tens of MB, not
  GB. Non-interlaced 8-bit PNGs only (others are decoded whole, as below); up to
  :data:`MAX_PIXELS` pixels.
- JPEGs are decoded at a reduced DCT scale (``Image.draft``) when ``max_side`` is given.
- Everything else is decoded whole and must stay within Pillow's decompression-bomb limit
  (``2 * Image.MAX_IMAGE_PIXELS``); larger images raise :class:`~mmgraph.errors.DataError`.
"""
from __future__ import annotations

import io
import os
import struct
import warnings
import zlib
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np
from PIL import ExifTags, Image, ImageOps

from mmgraph.errors import DataError

__all__ = ["load_image", "STREAM_PIXELS", "MAX_PIXELS"]

ImageRef = Union[str, os.PathLike, bytes, bytearray, memoryview]

#: PNGs with more pixels than this are decoded strip by strip when ``max_side`` is given.
STREAM_PIXELS = 32_000_000
#: Hard limit for strip decoding: beyond it even a streamed decode takes minutes of CPU.
MAX_PIXELS = 1_000_000_000
#: Approximate size of one strip of raw scanlines (peak memory is a small multiple of it).
STRIP_BYTES = 8 << 20

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}   # colour type -> samples per pixel


def load_image(ref: ImageRef, root: str | os.PathLike | None = None,
               max_side: int | None = None) -> Image.Image:
    """Load one node image as an RGB :class:`PIL.Image.Image`.

    Transparent pixels are composited on white; EXIF orientation is applied.

    Args:
        ref: a file path (``str`` or ``PathLike``), encoded image bytes, or a
            ``"synthetic:..."`` reference.
        root: folder that relative paths are relative to (default: the working directory).
        max_side: if given, the image is shrunk (aspect kept) so that its longer side is at most
            this many pixels, decoding at reduced size where the format allows. Synthetic
            references are rendered at exactly ``max_side`` pixels (64 when not given).

    Raises:
        DataError: the file is missing, unreadable, corrupt or too large, or the reference is
            of an unknown kind.
    """
    if max_side is not None and (isinstance(max_side, bool) or int(max_side) < 1):
        raise DataError(f"max_side must be a positive number of pixels; got {max_side!r}")
    if isinstance(ref, str) and ref.startswith("synthetic:"):
        from mmgraph.data.synthetic import render_image
        return render_image(ref, size=int(max_side) if max_side else 64)
    if isinstance(ref, (bytes, bytearray, memoryview)):
        blob = bytes(ref)
        return _decode(io.BytesIO(blob), f"<{len(blob)} bytes of image data>", max_side)
    if isinstance(ref, (str, os.PathLike)):
        path = Path(ref)
        if root is not None and not path.is_absolute():
            path = Path(root) / path
        if not path.is_file():
            raise DataError(f"image file not found: {path}")
        try:
            fp = open(path, "rb")
        except OSError as exc:
            raise DataError(f"cannot read image file {path}: {exc.strerror or exc}") from None
        with fp:
            return _decode(fp, str(path), max_side)
    raise DataError(f"unsupported image reference of type {type(ref).__name__}; expected a path, "
                    f"bytes or a 'synthetic:...' string")


def _decode(fp: BinaryIO, name: str, max_side: int | None) -> Image.Image:
    head = fp.read(33)
    fp.seek(0)
    try:
        png = _png_header(head)
        if (png is not None and max_side and png["width"] * png["height"] > STREAM_PIXELS
                and png["depth"] == 8 and png["interlace"] == 0 and png["ctype"] in _PNG_CHANNELS):
            full = (png["width"], png["height"])
            return _fit(_to_rgb(_png_strips(fp, png, name, int(max_side))), max_side, full)
        with warnings.catch_warnings():
            # Images between Pillow's warning and error limits are fine here: JPEGs are
            # decoded reduced below, and the rest are bounded by Pillow's error limit.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(fp)
            full = img.size
            if max_side and img.format == "JPEG":
                img.draft("RGB", (int(max_side), int(max_side)))
            img.load()
        if img.getexif().get(ExifTags.Base.Orientation, 1) in (5, 6, 7, 8):
            full = full[::-1]                            # a quarter turn swaps the sides
        img = ImageOps.exif_transpose(img)
        return _shrink_to_rgb(img, max_side, full)
    except DataError:
        raise
    except Image.DecompressionBombError as exc:
        raise DataError(f"image {name} is too large to decode safely ({exc}); "
                        f"pass max_side or shrink the file") from None
    except (OSError, SyntaxError, ValueError, EOFError, zlib.error, struct.error,
            MemoryError) as exc:
        raise DataError(f"cannot decode image {name}: {exc}") from None


def _fit(img: Image.Image, max_side: int | None, full: tuple[int, int]) -> Image.Image:
    """Shrink to ``max_side`` with the aspect of the ``full``-size original.

    A reduced decode (JPEG draft, PNG strips) rounds each side separately, so its aspect can
    be a pixel off; the target size is therefore computed from the original size.
    """
    scale = max_side / max(full) if max_side else 1.0
    if scale >= 1.0:
        return img
    target = (max(1, round(full[0] * scale)), max(1, round(full[1] * scale)))
    if img.size == target:
        return img
    return img.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)


def _shrink_to_rgb(img: Image.Image, max_side: int | None, full: tuple[int, int]) -> Image.Image:
    """:func:`_fit` then :func:`_to_rgb`: shrinking first makes compositing a large transparent
    image cheap (Pillow resamples RGBA/LA with premultiplied alpha, so the result matches)."""
    if max_side is None or max(full) <= max_side:
        return _to_rgb(img)
    if "transparency" in img.info or img.mode in ("P", "PA"):
        img = img.convert("RGBA")
    if img.mode in ("RGB", "RGBA", "L", "LA"):
        return _to_rgb(_fit(img, max_side, full))
    return _fit(_to_rgb(img), max_side, full)


def _to_rgb(img: Image.Image) -> Image.Image:
    """RGB, compositing any transparency on white (clip art is drawn on a transparent canvas)."""
    if img.mode == "RGB":
        return img
    if img.mode.startswith("I") or img.mode == "F":
        # Pillow clips 16/32-bit and float pixels to 255 when converting: rescale instead.
        arr = np.asarray(img, dtype=np.float64)
        peak = float(arr.max()) if arr.size else 0.0
        if img.mode.startswith("I;16") or peak > 255:
            arr = arr / (257.0 if peak <= 65535 else peak / 255.0)
        elif img.mode == "F" and peak <= 1.0:
            arr = arr * 255.0
        return Image.fromarray(np.clip(arr, 0, 255).round().astype(np.uint8), "L").convert("RGB")
    has_alpha = img.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in img.info
    if not has_alpha:
        return img.convert("RGB")
    rgba = img.convert("RGBA")
    canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    canvas.alpha_composite(rgba)
    return canvas.convert("RGB")


# ----------------------------------------------------------------------------- PNG strips

def _png_header(head: bytes) -> dict | None:
    """The IHDR fields of a PNG, or None if ``head`` does not start a PNG."""
    if len(head) < 33 or not head.startswith(_PNG_SIGNATURE) or head[12:16] != b"IHDR":
        return None
    w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", head[16:29])
    return {"width": w, "height": h, "depth": depth, "ctype": ctype, "interlace": interlace,
            "ihdr": head[16:29]}


def _chunk(kind: bytes, body: bytes) -> bytes:
    return (struct.pack(">I", len(body)) + kind + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))


def _png_strips(fp: BinaryIO, hdr: dict, name: str, max_side: int) -> Image.Image:
    """Decode a large PNG strip by strip, box-reducing each strip as it is decoded.

    Scanlines are inflated incrementally; each strip is wrapped in a small PNG (stored,
    uncompressed deflate) and unfiltered by Pillow. PNG filters may refer to the row above,
    so every strip but the first is prefixed with the previous strip's last reconstructed row,
    stored unfiltered.
    """
    w, h = hdr["width"], hdr["height"]
    if w * h > MAX_PIXELS:
        raise DataError(f"image {name} has {w}x{h} pixels, over the limit of {MAX_PIXELS:,}")
    row_bytes = w * _PNG_CHANNELS[hdr["ctype"]]
    stride = row_bytes + 1                               # each scanline starts with a filter byte
    # Box factor: close to the final size, but a strip must hold k whole rows; the exact fit
    # is a resize of the (small) box-reduced image afterwards.
    k = max(1, min(max(w, h) // max_side, STRIP_BYTES // stride))
    rows_per_strip = max(1, STRIP_BYTES // stride // k) * k
    out = Image.new("RGB", ((w + k - 1) // k, (h + k - 1) // k))

    fp.seek(8)
    extra = b""                                          # PLTE / tRNS, needed by every strip
    inflater = zlib.decompressobj()
    pending = bytearray()
    prev_row: bytes | None = None
    row = 0

    def strips():
        nonlocal extra
        while True:
            head = fp.read(8)
            if len(head) < 8:
                raise DataError(f"cannot decode image {name}: truncated PNG")
            length, kind = struct.unpack(">I4s", head)
            body = fp.read(length)
            fp.read(4)                                   # CRC: zlib and Pillow catch corruption
            if len(body) < length:
                raise DataError(f"cannot decode image {name}: truncated PNG")
            if kind in (b"PLTE", b"tRNS"):
                extra += _chunk(kind, body)
            elif kind == b"IDAT":
                data = body
                while data:
                    pending.extend(inflater.decompress(data, STRIP_BYTES))
                    data = inflater.unconsumed_tail
                    while len(pending) >= rows_per_strip * stride:
                        yield rows_per_strip * stride
                        del pending[:rows_per_strip * stride]
            elif kind == b"IEND":
                pending.extend(inflater.flush())
                if pending:
                    yield len(pending)
                return

    # Each strip is yielded as a byte count at the head of ``pending``, to avoid copying it.
    for size in strips():
        n = size // stride
        if n * stride != size or row + n > h:
            raise DataError(f"cannot decode image {name}: scanline data does not match its size")
        block = bytearray()
        if prev_row is not None:
            block += b"\x00" + prev_row
        with memoryview(pending) as view:
            block += view[:size]
        rows = n + (prev_row is not None)
        ihdr = struct.pack(">II", w, rows) + hdr["ihdr"][8:]
        idat = zlib.compress(block, 0)
        del block
        png = b"".join([_PNG_SIGNATURE, _chunk(b"IHDR", ihdr), extra, _chunk(b"IDAT", idat),
                        _chunk(b"IEND", b"")])
        del idat
        strip = Image.open(io.BytesIO(png))
        strip.load()
        del png
        last = strip.crop((0, rows - 1, w, rows)).tobytes()
        if len(last) != row_bytes:
            raise DataError(f"image {name}: PNG mode {strip.mode} is not streamable; shrink the file")
        prev_row = last
        if rows != n:
            strip = strip.crop((0, 1, w, rows))
        part = _to_rgb(strip).reduce(k) if k > 1 else _to_rgb(strip)
        out.paste(part, (0, row // k))
        row += n
    if row != h:
        raise DataError(f"cannot decode image {name}: {row} of {h} scanlines present")
    return out

