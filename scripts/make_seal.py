"""Draw the demo center's seal image (static/img/seal.png) with Pillow and the WQY font.

Run once when the center's name changes: `.venv/bin/python scripts/make_seal.py`. The result
is committed; a real center replaces it with a scan of its own seal.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

FONT = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"
RED = (200, 16, 24, 235)


def star(draw, cx, cy, r):
    points = []
    for i in range(10):
        radius = r if i % 2 == 0 else r * 0.382
        angle = -math.pi / 2 + i * math.pi / 5
        points.append((cx + radius * math.cos(angle), cy + radius * math.sin(angle)))
    draw.polygon(points, fill=RED)


def make(name: str, bottom: str, out: Path, size: int = 480) -> None:
    img = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    c = size / 2
    draw.ellipse((8, 8, size - 8, size - 8), outline=RED, width=14)
    star(draw, c, c, size * 0.16)
    font = ImageFont.truetype(FONT, int(size * 0.085), index=0)
    span = math.radians(250)
    radius = size * 0.36
    for i, ch in enumerate(name):
        angle = -math.pi / 2 - span / 2 + span * (i + 0.5) / len(name)
        glyph = Image.new("RGBA", (int(size * 0.12), int(size * 0.12)), (0, 0, 0, 0))
        ImageDraw.Draw(glyph).text(
            (glyph.width / 2, glyph.height / 2), ch, font=font, fill=RED, anchor="mm"
        )
        glyph = glyph.rotate(-math.degrees(angle) - 90, resample=Image.BICUBIC)
        x = c + radius * math.cos(angle) - glyph.width / 2
        y = c + radius * math.sin(angle) - glyph.height / 2
        img.alpha_composite(glyph, (int(x), int(y)))
    small = ImageFont.truetype(FONT, int(size * 0.07), index=0)
    draw.text((c, c + size * 0.26), bottom, font=small, fill=RED, anchor="mm")
    img.save(out)


if __name__ == "__main__":
    root = Path(__file__).resolve().parent.parent
    center = sys.argv[1] if len(sys.argv) > 1 else "阿拉善盟住房公积金管理中心"
    make(center, "业务专用章", root / "static" / "img" / "seal.png")
    print("written static/img/seal.png")
