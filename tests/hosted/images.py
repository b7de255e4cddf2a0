"""Small image files built byte by byte (no imaging library): real PNGs a browser can draw, and the
first bytes of the other formats, which is all the server reads of them."""

from __future__ import annotations

import struct
import zlib


def png(width: int = 4, height: int = 4, rgb: tuple[int, int, int] = (31, 95, 191)) -> bytes:
    """A valid RGB PNG of one colour."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


def gif(width: int = 1, height: int = 1) -> bytes:
    """A valid one-colour GIF."""
    return (
        b"GIF89a"
        + struct.pack("<HH", width, height)
        + b"\x80\x00\x00\x1f\x5f\xbf\x00\x00\x00"
        + b"\x2c\x00\x00\x00\x00"
        + struct.pack("<HH", width, height)
        + b"\x00\x02\x02\x44\x01\x00\x3b"
    )


def jpeg_head(width: int = 64, height: int = 32) -> bytes:
    """A JPEG's start: SOI, an APP0 (JFIF) segment, then a baseline start-of-frame with the size."""
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof0 = (
        b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, height, width, 3) + b"\x01\x11\x00\x02\x11\x01\x03\x11\x01"
    )
    return b"\xff\xd8" + app0 + sof0 + b"\xff\xd9"


def webp_head(width: int = 48, height: int = 24) -> bytes:
    """A lossless WebP's start: the RIFF header and the VP8L size bits."""
    bits = (width - 1) | ((height - 1) << 14)
    payload = b"VP8L" + struct.pack("<I", 5) + b"\x2f" + struct.pack("<I", bits)
    return b"RIFF" + struct.pack("<I", 4 + len(payload)) + b"WEBP" + payload
