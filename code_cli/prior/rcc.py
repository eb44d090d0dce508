"""Read Qt binary resource files (.rcc), the bundles GCompris ships its images in.

The format is Qt's own (qtbase src/corelib/io/qresource.cpp and
src/tools/rcc/rcc.cpp), all integers big-endian:

    header   "qres", version (u32), tree offset, data offset, names offset (u32 each),
             and from version 3 on a u32 of flags
    tree     one fixed-size node per file or directory, node 0 the root:
             name offset (u32), flags (u16), then
               directory: child count (u32), index of the first child node (u32)
               file:      territory (u16), language (u16), data offset (u32)
             and from version 2 on the last-modified time in ms (u64)
    names    at names offset + name offset: length in UTF-16 units (u16), hash (u32), UTF-16BE text
    data     at data offset + data offset: length (u32), then the bytes; a zlib-compressed
             entry starts with its uncompressed length (u32) before the zlib stream

Only reading is supported; zstd-compressed entries (flag 4) raise, as no bundle
used here has them and the standard library cannot inflate them.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

MAGIC = b"qres"
COMPRESSED, DIRECTORY, COMPRESSED_ZSTD = 1, 2, 4


class RccError(ValueError):
    """The bytes are not a readable Qt resource file."""


def _u16(buf: bytes, at: int) -> int:
    return struct.unpack_from(">H", buf, at)[0]


def _u32(buf: bytes, at: int) -> int:
    return struct.unpack_from(">I", buf, at)[0]


def read_rcc(source: bytes | Path) -> dict[str, bytes]:
    """Every file in the bundle as {path without the leading ":/": bytes}."""
    return dict(iter_rcc(source))


def iter_rcc(source: bytes | Path) -> Iterator[tuple[str, bytes]]:
    buf = source.read_bytes() if isinstance(source, Path) else source
    if len(buf) < 20 or buf[:4] != MAGIC:
        raise RccError("not a Qt resource file (no 'qres' magic)")
    version, tree, data, names = struct.unpack_from(">IIII", buf, 4)
    if version not in (1, 2, 3):
        raise RccError(f"unsupported rcc format version {version}")
    node_size = 14 if version == 1 else 22
    try:
        yield from _walk(buf, tree, data, names, node_size, 0, "", depth=0)
    except struct.error:
        raise RccError("truncated Qt resource file") from None


def _name(buf: bytes, names: int, offset: int) -> str:
    at = names + offset
    length = _u16(buf, at)
    raw = buf[at + 6 : at + 6 + 2 * length]
    if len(raw) != 2 * length:
        raise RccError("truncated name table")
    return raw.decode("utf-16-be")


def _walk(buf: bytes, tree: int, data: int, names: int, node_size: int, index: int, prefix: str, depth: int):
    # A well-formed tree is shallow; the bound keeps a corrupt, cyclic one from recursing forever.
    if depth > 64:
        raise RccError("resource tree nested deeper than 64 levels (corrupt file?)")
    at = tree + index * node_size
    flags = _u16(buf, at + 4)
    if not flags & DIRECTORY:
        raise RccError(f"tree node {index} should be a directory")
    count, first = _u32(buf, at + 6), _u32(buf, at + 10)
    for child in range(first, first + count):
        node = tree + child * node_size
        name = _name(buf, names, _u32(buf, node))
        child_flags = _u16(buf, node + 4)
        path = f"{prefix}{name}"
        if child_flags & DIRECTORY:
            yield from _walk(buf, tree, data, names, node_size, child, path + "/", depth + 1)
        else:
            yield path, _payload(buf, data + _u32(buf, node + 10), child_flags, path)


def _payload(buf: bytes, at: int, flags: int, path: str) -> bytes:
    size = _u32(buf, at)
    blob = buf[at + 4 : at + 4 + size]
    if len(blob) != size:
        raise RccError(f"{path}: data runs past the end of the file")
    if flags & COMPRESSED_ZSTD:
        raise RccError(f"{path}: zstd-compressed entry; only uncompressed and zlib entries are supported")
    if flags & COMPRESSED:
        expected = _u32(blob, 0)
        try:
            blob = zlib.decompress(blob[4:])
        except zlib.error as e:
            raise RccError(f"{path}: bad zlib data ({e})") from None
        if len(blob) != expected:
            raise RccError(f"{path}: inflated to {len(blob)} bytes, header says {expected}")
    return blob
