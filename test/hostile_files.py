"""
Files a hostile client points the node at (shared by the unit and DDS tests).

An EXIF-rotated JPEG, a PNG that declares a huge size in few bytes, a FIFO, a sparse file.
"""

import os
import struct
import zlib

import cv2
import numpy as np


def exif_jpeg(bgr: np.ndarray, orientation: int = 6) -> bytes:
    """Return ``bgr`` as a JPEG whose EXIF says ``orientation`` (6: rotate 90° on display)."""
    ok, buf = cv2.imencode('.jpg', bgr)
    assert ok
    data = buf.tobytes()
    tiff = b'MM\x00*' + struct.pack('>I', 8) + struct.pack('>H', 1) + \
        struct.pack('>HHIHH', 0x0112, 3, 1, orientation, 0) + struct.pack('>I', 0)
    body = b'Exif\x00\x00' + tiff
    app1 = b'\xff\xe1' + struct.pack('>H', len(body) + 2) + body
    return data[:2] + app1 + data[2:]


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return (struct.pack('>I', len(payload)) + kind + payload
            + struct.pack('>I', zlib.crc32(kind + payload) & 0xFFFFFFFF))


def huge_png(path: str, width: int, height: int) -> int:
    """
    Write a valid grey PNG of ``width``×``height`` black pixels, streamed; return its size.

    Rows of zeros compress ~1000:1, so 10000×10000 (100 Mpx, ~300 MB once decoded to BGR)
    is a file of about 100 KB.
    """
    compressor = zlib.compressobj(9)
    row = b'\x00' * (width + 1)   # filter byte + one grey byte per pixel
    parts = []
    for _ in range(height):
        parts.append(compressor.compress(row))
    parts.append(compressor.flush())
    with open(path, 'wb') as out:
        out.write(b'\x89PNG\r\n\x1a\n')
        out.write(_chunk(b'IHDR', struct.pack('>IIBBBBB', width, height, 8, 0, 0, 0, 0)))
        out.write(_chunk(b'IDAT', b''.join(parts)))
        out.write(_chunk(b'IEND', b''))
    return os.path.getsize(path)


def sparse_file(path: str, size: int) -> str:
    """Create a sparse file declaring ``size`` bytes (no disk used); return its path."""
    with open(path, 'wb') as out:
        out.truncate(size)
    return path


def fifo(path: str) -> str:
    """Create a FIFO (reading it blocks until a writer appears); return its path."""
    os.mkfifo(path)
    return path
