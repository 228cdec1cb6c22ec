"""Reading the SVG pictures fdg draws (shared by the drawing and tutorial tests)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path


def svg_texts(path: Path) -> list[str]:
    """Every text of an SVG, parsed as XML."""
    root = ET.parse(path).getroot()
    return ["".join(e.itertext()).strip() for e in root.iter("{http://www.w3.org/2000/svg}text")]
