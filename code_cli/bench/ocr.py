"""The judge of the document benchmark: Tesseract (Debian's tesseract-ocr), which nobody here
wrote or tuned, reads each page; character and word error rates against the text that was drawn.

CER = Levenshtein distance / reference length, on text whose whitespace is collapsed to single
spaces (line breaks and column order are layout, not reading); WER the same over words.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from dataclasses import dataclass

import numpy as np
from PIL import Image

from code_cli.errors import ConfigError

# psm 3: Tesseract's own page segmentation (columns, headings), as a user would run it.
PSM = 3


def tesseract_path() -> str:
    path = shutil.which("tesseract")
    if path is None:
        raise ConfigError("tesseract not found: the document benchmark needs Debian's tesseract-ocr "
                          "(apt-get install tesseract-ocr)")
    return path


def read_text(image: np.ndarray, psm: int = PSM) -> str:
    """Tesseract's reading of an HWC image (uint8, or float in [0, 1]), English, one thread."""
    if image.dtype != np.uint8:
        image = np.clip(np.round(image * 255), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "PNG")
    done = subprocess.run(
        [tesseract_path(), "stdin", "stdout", "-l", "eng", "--psm", str(psm)],
        input=buf.getvalue(), capture_output=True, check=False, timeout=300,
        env={"OMP_THREAD_LIMIT": "1", "PATH": "/usr/bin:/bin"},
    )
    if done.returncode != 0:
        raise RuntimeError(f"tesseract failed ({done.returncode}): {done.stderr.decode(errors='replace')[:200]}")
    return done.stdout.decode("utf-8", errors="replace")


def normalise(text: str) -> str:
    return " ".join(text.split())


@dataclass(frozen=True)
class OCRScore:
    cer: float
    wer: float
    text: str


def score(reading: str, reference: str) -> OCRScore:
    """CER and WER of `reading` against `reference` (both normalised; rates may exceed 1)."""
    from rapidfuzz.distance import Levenshtein

    hyp, ref = normalise(reading), normalise(reference)
    cer = Levenshtein.distance(hyp, ref) / max(len(ref), 1)
    wer = Levenshtein.distance(hyp.split(), ref.split()) / max(len(ref.split()), 1)
    return OCRScore(cer, wer, hyp)


def ocr_score(image: np.ndarray, reference: str) -> OCRScore:
    return score(read_text(image), reference)
