"""Licence records as packages write them: Debian's machine-readable copyright files
(DEP-5) and the GCompris per-folder READMEs, which use the same "Key: value" stanzas.

A stanza's "Files:" lists glob patterns relative to where the record lives; the
last stanza whose pattern matches a file is the one that applies (DEP-5's rule).
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

# Licences under which photographs may be used to train weights that are then
# shipped: every one allows use, modification and redistribution of derived
# works, commercially too; the obligations (attribution, share-alike) are met in
# docs/data.md. Anything else, including "all rights reserved", NC and ND terms
# and records that name no licence, is left out.
_ALLOWED = re.compile(r"^(CC0|public domain|CC-BY(-SA)?-[1-4]\.0|L?GPL-[23]|GFDL|BSD|MIT)", re.IGNORECASE)


@dataclass(frozen=True)
class Record:
    patterns: tuple[str, ...]
    licence: str
    copyright: str
    source: str


def normalise(licence: str) -> str:
    """'CC-BY-SA 4.0' -> 'CC-BY-SA-4.0', 'Public Domain' -> 'public domain', as SPDX-like spellings."""
    text = " ".join(licence.split())
    if text.lower() in ("public domain", "public-domain"):
        return "public domain"
    text = re.sub(r"^(L?GPL)v(\d)", r"\1-\2", text)  # GPLv2+ -> GPL-2+
    text = re.sub(r"^CC[- ]BY[- ]SA[- ]", "CC-BY-SA-", text, flags=re.IGNORECASE)
    text = re.sub(r"^CC[- ]BY[- ](?=\d)", "CC-BY-", text, flags=re.IGNORECASE)
    return text


def allowed(licence: str) -> bool:
    return bool(_ALLOWED.match(licence)) and not re.search(r"\bNC\b|\bND\b|-NC-|-ND-", licence)


def parse_stanzas(text: str) -> list[Record]:
    """Stanzas separated by blank lines; continuation lines start with whitespace or,
    in GCompris READMEs, are bare file names after "Files:"."""
    records = []
    for block in re.split(r"\n\s*\n", text):
        fields: dict[str, list[str]] = {}
        key = None
        for line in block.splitlines():
            m = re.match(r"^([A-Za-z-]+):\s*(.*)$", line)
            if m and not line[0].isspace():
                key = m.group(1).lower()
                fields.setdefault(key, []).append(m.group(2).strip())
            elif key is not None and line.strip():
                fields[key].append(line.strip())
        if "files" not in fields or "license" not in fields:
            continue
        patterns = tuple(p for line in fields["files"] for p in line.split())
        records.append(
            Record(
                patterns=patterns,
                licence=normalise(fields["license"][0]),
                copyright=" ".join(x for x in fields.get("copyright", []) if x),
                source=" ".join(fields.get("source", [])),
            )
        )
    return records


def lookup(records: list[Record], path: str) -> Record | None:
    """The record that applies to `path` (slash-separated), matching each pattern
    against as many trailing components of the path as the pattern has. An exact
    file name (no wildcards) also matches by its last component: Debian's records
    name upstream's source tree, which installs files into other folders."""
    parts = path.split("/")
    found = None
    for r in records:
        for pattern in r.patterns:
            if pattern.startswith("debian/"):
                continue
            depth = pattern.count("/") + 1
            exact = not any(c in pattern for c in "*?[")
            if fnmatch.fnmatchcase("/".join(parts[-depth:]), pattern) or (
                exact and pattern.rsplit("/", 1)[-1] == parts[-1]
            ):
                found = r
    return found
