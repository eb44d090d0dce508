"""Printed pages rendered from real English text: the training data of code-prior-doc and the
clean references of the document benchmark.

A page is drawn with PIL from a font file, a text source and a seeded `PageStyle`: font size
chosen by x-height (8 to 20 px), one or two columns, headings, line spacing, ink colour, paper
tint and a faint paper grain. Nothing is downloaded: fonts come from matplotlib's bundled set and
Debian's font packages, text from the licence texts every Debian system carries.

Fonts and texts are split once, by name, into those the prior trains on and those held out for
evaluation (`TRAIN_FONTS` / `HELDOUT_FONTS`, `TRAIN_TEXTS` / `HELDOUT_TEXTS`), so a benchmark on
held-out fonts and text measures what the prior learned about print, not what it memorised.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from code_cli.errors import InputError

DEBIAN_FONTS = Path("/usr/share/fonts/truetype")
LICENCES = Path("/usr/share/common-licenses")


@dataclass(frozen=True)
class Font:
    family: str
    style: str  # regular, bold, italic, bold-italic
    file: str  # "mpl:DejaVuSans.ttf" (matplotlib's bundled fonts) or a path under DEBIAN_FONTS
    package: str  # where it comes from, for the model card and the error that says what to install

    def path(self) -> Path:
        if self.file.startswith("mpl:"):
            import matplotlib

            return Path(matplotlib.get_data_path()) / "fonts" / "ttf" / self.file[4:]
        return DEBIAN_FONTS / self.file


def _family(family: str, package: str, files: dict[str, str]) -> tuple[Font, ...]:
    return tuple(Font(family, style, file, package) for style, file in files.items())


MPL = "matplotlib (bundled fonts)"
NOTO = "Debian fonts-noto-core"
FREE = "Debian fonts-freefont-ttf"
CROSEXTRA_CARLITO = "Debian fonts-crosextra-carlito"
CROSEXTRA_CALADEA = "Debian fonts-crosextra-caladea"

TRAIN_FONTS: tuple[Font, ...] = (
    *_family("DejaVu Sans", MPL, {"regular": "mpl:DejaVuSans.ttf", "bold": "mpl:DejaVuSans-Bold.ttf",
                                  "italic": "mpl:DejaVuSans-Oblique.ttf"}),
    *_family("DejaVu Serif", MPL, {"regular": "mpl:DejaVuSerif.ttf", "bold": "mpl:DejaVuSerif-Bold.ttf",
                                   "italic": "mpl:DejaVuSerif-Italic.ttf"}),
    *_family("DejaVu Sans Mono", MPL, {"regular": "mpl:DejaVuSansMono.ttf", "bold": "mpl:DejaVuSansMono-Bold.ttf"}),
    *_family("STIX", MPL, {"regular": "mpl:STIXGeneral.ttf", "bold": "mpl:STIXGeneralBol.ttf",
                           "italic": "mpl:STIXGeneralItalic.ttf"}),
    *_family("Computer Modern Roman", MPL, {"regular": "mpl:cmr10.ttf"}),
    *_family("Computer Modern Sans", MPL, {"regular": "mpl:cmss10.ttf"}),
    *_family("Computer Modern Typewriter", MPL, {"regular": "mpl:cmtt10.ttf"}),
    *_family("Noto Sans", NOTO, {"regular": "noto/NotoSans-Regular.ttf", "bold": "noto/NotoSans-Bold.ttf",
                                 "italic": "noto/NotoSans-Italic.ttf"}),
    *_family("Noto Serif", NOTO, {"regular": "noto/NotoSerif-Regular.ttf", "bold": "noto/NotoSerif-Bold.ttf",
                                  "italic": "noto/NotoSerif-Italic.ttf"}),
    *_family("Noto Serif Display", NOTO, {"regular": "noto/NotoSerifDisplay-Regular.ttf"}),
    *_family("FreeSans", FREE, {"regular": "freefont/FreeSans.ttf", "bold": "freefont/FreeSansBold.ttf",
                                "italic": "freefont/FreeSansOblique.ttf"}),
    *_family("FreeSerif", FREE, {"regular": "freefont/FreeSerif.ttf", "bold": "freefont/FreeSerifBold.ttf",
                                 "italic": "freefont/FreeSerifItalic.ttf"}),
    *_family("Carlito", CROSEXTRA_CARLITO, {"regular": "crosextra/Carlito-Regular.ttf",
                                            "bold": "crosextra/Carlito-Bold.ttf",
                                            "italic": "crosextra/Carlito-Italic.ttf"}),
)

# Never trained on: one serif, one sans, one monospace family from the allowed packages (the
# benchmark's fonts). An outside evaluation may use fonts from other packages altogether.
HELDOUT_FONTS: tuple[Font, ...] = (
    *_family("Caladea", CROSEXTRA_CALADEA, {"regular": "crosextra/Caladea-Regular.ttf",
                                            "bold": "crosextra/Caladea-Bold.ttf"}),
    *_family("Noto Sans Display", NOTO, {"regular": "noto/NotoSansDisplay-Regular.ttf",
                                         "bold": "noto/NotoSansDisplay-Bold.ttf"}),
    *_family("FreeMono", FREE, {"regular": "freefont/FreeMono.ttf", "bold": "freefont/FreeMonoBold.ttf"}),
)

# Licence texts under /usr/share/common-licenses (Debian's base-files): real English prose in
# the register of documents. The held-out two share no paragraph with the training ones.
TRAIN_TEXTS = ("GPL-2", "GPL-3", "LGPL-2.1", "Apache-2.0", "GFDL-1.3", "MPL-2.0", "Artistic", "BSD")
HELDOUT_TEXTS = ("CC0-1.0", "MPL-1.1")


def check_fonts(fonts: tuple[Font, ...]) -> None:
    missing = sorted({f.package for f in fonts if not f.path().is_file()})
    if missing:
        raise InputError(f"fonts missing: install {', '.join(missing)} (apt-get install fonts-noto-core ...)")


@cache
def words(name: str) -> tuple[str, ...]:
    """The words of one licence text, in order, with its ASCII punctuation; rules and
    separator lines dropped."""
    path = LICENCES / name
    if not path.is_file():
        raise InputError(f"{path}: licence text missing (Debian base-files provides it)")
    text = path.read_text(encoding="utf-8", errors="replace")
    text = re.sub(r"[-=_*]{3,}", " ", text)
    return tuple(w for w in text.split() if w.isascii() and any(c.isalnum() for c in w))


@dataclass(frozen=True)
class PageStyle:
    font: Font
    x_height: float  # px, the lower-case height that sets the font size
    line_spacing: float  # baseline to baseline, in font sizes
    columns: int
    ink: tuple[int, int, int]
    paper: tuple[int, int, int]
    grain: float  # std of the paper texture, 0..255 scale
    heading_every: int  # a heading after this many paragraphs (0: none)
    margin: int


INKS = ((18, 18, 20), (30, 30, 34), (10, 22, 70), (55, 40, 30), (60, 60, 62), (0, 0, 0))
PAPERS = ((255, 255, 255), (250, 248, 240), (244, 240, 226), (238, 238, 236), (252, 250, 245), (236, 232, 218))


def random_style(
    rng: np.random.Generator, fonts: tuple[Font, ...], x_height: tuple[float, float] = (8, 20)
) -> PageStyle:
    ink = np.array(INKS[rng.integers(len(INKS))]) + rng.integers(-8, 9, 3)
    paper = np.array(PAPERS[rng.integers(len(PAPERS))]) - rng.integers(0, 6, 3)
    return PageStyle(
        font=fonts[rng.integers(len(fonts))],
        x_height=float(rng.uniform(*x_height)),
        line_spacing=float(rng.uniform(1.1, 1.7)),
        columns=int(rng.choice([1, 1, 1, 2])),
        ink=tuple(int(v) for v in np.clip(ink, 0, 255)),
        paper=tuple(int(v) for v in np.clip(paper, 0, 255)),
        grain=float(rng.choice([0.0, rng.uniform(0.5, 3.0)])),
        heading_every=int(rng.choice([0, 2, 3, 5])),
        margin=int(rng.integers(4, 40)),
    )


@cache
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


def font_for(font: Font, x_height: float) -> ImageFont.FreeTypeFont:
    """The font at the pixel size whose lower-case 'x' is `x_height` px tall."""
    probe = _font(str(font.path()), 100)
    left, top, right, bottom = probe.getbbox("x")
    size = max(4, round(100 * x_height / max(bottom - top, 1)))
    return _font(str(font.path()), size)


def _wrap(draw: ImageDraw.ImageDraw, words_: list[str], font, width: int) -> list[str]:
    lines, line = [], ""
    for w in words_:
        trial = f"{line} {w}" if line else w
        if draw.textlength(trial, font=font) <= width or not line:
            line = trial
        else:
            lines.append(line)
            line = w
    if line:
        lines.append(line)
    return lines


def render_page(
    size: tuple[int, int],
    style: PageStyle,
    text: tuple[str, ...],
    start: int,
    rng: np.random.Generator,
    bold_font: Font | None = None,
) -> tuple[Image.Image, str]:
    """Draw a (width, height) page of `text` from word `start`; return the RGB page and the text
    drawn on it, line by line (the OCR reference), columns read left to right."""
    w, h = size
    page = Image.new("RGB", (w, h), style.paper)
    draw = ImageDraw.Draw(page)
    body = font_for(style.font, style.x_height)
    head = font_for(bold_font or style.font, style.x_height * rng.uniform(1.2, 1.6))
    gap = max(8, round(style.x_height * 2))
    columns, margin = style.columns, min(style.margin, w // 16, h // 16)
    col_w = (w - 2 * margin - gap * (columns - 1)) // columns
    if col_w < 12 * style.x_height and columns > 1:  # too narrow for two: one column
        columns, col_w = 1, w - 2 * margin
    if col_w < 4 * style.x_height:
        raise ValueError(f"page {w} px wide is too narrow for text at x-height {style.x_height}")
    i, reference = start, []
    paragraphs = 0
    for c in range(columns):
        x0 = margin + c * (col_w + gap)
        y = margin
        while True:
            is_head = style.heading_every and paragraphs % style.heading_every == 0 and rng.random() < 0.7
            font = head if is_head else body
            n = int(rng.integers(2, 6)) if is_head else int(rng.integers(20, 90))
            chunk = [text[(i + k) % len(text)] for k in range(n)]
            if is_head:
                chunk = [t.strip(".,;:") for t in chunk]
            lines = _wrap(draw, chunk, font, col_w)
            step = round(font.size * style.line_spacing)
            ascent, descent = font.getmetrics()
            drawn = 0
            for line in lines:
                if y + ascent + descent > h - margin:
                    break
                draw.text((x0, y), line, font=font, fill=style.ink)
                reference.append(line)
                y += step
                drawn += 1
            i += sum(len(s.split()) for s in lines[:drawn])
            if drawn < len(lines):
                break
            paragraphs += 1
            y += round(step * rng.uniform(0.3, 0.9))
    if style.grain:
        page = add_grain(page, style.grain, rng)
    return page, "\n".join(reference)


def add_grain(page: Image.Image, std: float, rng: np.random.Generator) -> Image.Image:
    """Faint paper texture: white noise blurred to fibre scale, the same on all channels."""
    w, h = page.size
    fibre = Image.fromarray(np.uint8(np.clip(128 + rng.normal(0, 40, (h, w)), 0, 255)))
    fibre = np.asarray(fibre.filter(ImageFilter.GaussianBlur(1.2)), np.float32) - 128
    fibre *= std / max(float(fibre.std()), 1e-6)
    out = np.asarray(page, np.float32) + fibre[..., None]
    return Image.fromarray(np.uint8(np.clip(np.round(out), 0, 255)))


def sample_page(
    size: tuple[int, int],
    rng: np.random.Generator,
    fonts: tuple[Font, ...] = TRAIN_FONTS,
    texts: tuple[str, ...] = TRAIN_TEXTS,
    x_height: tuple[float, float] = (8, 20),
) -> tuple[Image.Image, str, PageStyle]:
    """One random page: style, text and starting word drawn from `rng`."""
    style = random_style(rng, fonts, x_height)
    text = words(texts[rng.integers(len(texts))])
    bold = [f for f in fonts if f.family == style.font.family and f.style == "bold"]
    page, ref = render_page(size, style, text, int(rng.integers(len(text))), rng, bold[0] if bold else None)
    return page, ref, style


def training_pages(n: int, size: tuple[int, int], seed: int) -> list[Image.Image]:
    """`n` random pages from the training fonts and texts, reproducible for a seed."""
    check_fonts(TRAIN_FONTS)
    rng = np.random.default_rng(seed)
    return [sample_page(size, rng)[0] for _ in range(n)]
