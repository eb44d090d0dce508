"""Read EET files (.eet, .edj), the containers Enlightenment keeps its themes and backgrounds in.

The layout is EFL's "EET file format 2" (efl src/lib/eet/eet_lib.c, eet_internal_read2),
all integers big-endian 32-bit:

    header      magic 0x1EE70F42, number of directory entries, number of dictionary entries
    directory   per entry: data offset, stored size, original size, name offset, name size, flags
    dictionary  5 integers per entry (a string table for eet data blobs; not needed to read entries)
    names       NUL-terminated, at the absolute name offset
    data        at the absolute data offset

Flags: bit 0 compressed, bit 1 ciphered, bit 2 alias, bits 3..10 the compression
type (0..9 zlib levels, 10 and 11 LZ4, stored as one raw LZ4 block). An .edj
background stores its images as entries "edje/images/N", plain JPEG files when
built lossy; its LZ4 entries are the theme's own description. Ciphered entries
raise: they need the key they were written with.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

MAGIC = 0x1EE70F42
COMPRESSED, CIPHERED, ALIAS = 1, 2, 4
LZ4_TYPES = (10, 11)
HEADER = struct.Struct(">III")
ENTRY = struct.Struct(">6I")


class EetError(ValueError):
    """The bytes are not a readable EET file, or an entry cannot be decoded."""


@dataclass(frozen=True)
class EetEntry:
    name: str
    offset: int
    stored_size: int
    size: int
    flags: int

    @property
    def compression_type(self) -> int:
        return (self.flags >> 3) & 0xFF


class EetFile:
    """The directory of an EET file; entry data is read on demand."""

    def __init__(self, source: bytes | Path):
        self.buf = source.read_bytes() if isinstance(source, Path) else source
        if len(self.buf) < HEADER.size:
            raise EetError("not an EET file (shorter than its header)")
        magic, n_entries, _n_dictionary = HEADER.unpack_from(self.buf, 0)
        if magic != MAGIC:
            raise EetError(f"not an EET file (magic {magic:#010x}, expected {MAGIC:#010x})")
        if HEADER.size + n_entries * ENTRY.size > len(self.buf):
            raise EetError(f"directory of {n_entries} entries runs past the end of the file")
        self.entries: dict[str, EetEntry] = {}
        for i in range(n_entries):
            offset, stored, size, name_at, name_size, flags = ENTRY.unpack_from(self.buf, HEADER.size + i * ENTRY.size)
            if name_at + name_size > len(self.buf) or offset + stored > len(self.buf):
                raise EetError(f"entry {i} points past the end of the file")
            # name_size counts the terminating NUL.
            name = self.buf[name_at : name_at + name_size].split(b"\0", 1)[0].decode("utf-8")
            self.entries[name] = EetEntry(name, offset, stored, size, flags)

    def names(self) -> list[str]:
        return list(self.entries)

    def read(self, name: str) -> bytes:
        try:
            e = self.entries[name]
        except KeyError:
            raise EetError(f"no entry {name!r}") from None
        if e.flags & CIPHERED:
            raise EetError(f"{name}: ciphered entry; needs the key it was written with")
        blob = self.buf[e.offset : e.offset + e.stored_size]
        if not e.flags & COMPRESSED:
            return blob
        if e.compression_type in LZ4_TYPES:
            data = lz4_block(blob, e.size, name)
        else:
            try:
                data = zlib.decompress(blob)
            except zlib.error as err:
                raise EetError(f"{name}: bad zlib data ({err})") from None
        if len(data) != e.size:
            raise EetError(f"{name}: inflated to {len(data)} bytes, directory says {e.size}")
        return data


def lz4_block(src: bytes, size: int, name: str = "entry") -> bytes:
    """Decode one raw LZ4 block (the LZ4 block format: sequences of a token, literals,
    a 2-byte little-endian match offset and a match of at least 4 bytes)."""
    out = bytearray()
    i, n = 0, len(src)
    try:
        while i < n:
            token = src[i]
            i += 1
            literals, i = _lz4_length(src, i, token >> 4)
            out += src[i : i + literals]
            i += literals
            if i >= n:  # the last sequence is literals only
                break
            offset = src[i] | src[i + 1] << 8
            i += 2
            if offset == 0 or offset > len(out):
                raise EetError(f"{name}: LZ4 match offset {offset} points before the start")
            match, i = _lz4_length(src, i, token & 15)
            match += 4
            start = len(out) - offset
            if offset >= match:
                out += out[start : start + match]
            else:  # the match overlaps what it copies: a repeating run
                for k in range(match):
                    out.append(out[start + k])
    except IndexError:
        raise EetError(f"{name}: truncated LZ4 data") from None
    if len(out) != size:
        raise EetError(f"{name}: LZ4 data decodes to {len(out)} bytes, directory says {size}")
    return bytes(out)


def _lz4_length(src: bytes, i: int, length: int) -> tuple[int, int]:
    """A 4-bit length from the token, extended by following bytes while they are 255."""
    if length == 15:
        while True:
            extra = src[i]
            i += 1
            length += extra
            if extra != 255:
                break
    return length, i
