"""The README's Python API example runs as written."""

from __future__ import annotations

import re
from pathlib import Path

from PIL import Image

from tests.conftest import write_image

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_python_api_example_runs_as_written(tmp_path, monkeypatch):
    section = README.read_text().split("## Python API", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    write_image(tmp_path / "photo.png", (24, 20))
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    out = Image.open(tmp_path / "restored.png")
    assert out.size == (24, 20) and out.mode == "RGB"
