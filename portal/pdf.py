"""One layout for every PDF the portal issues: the center's name, a title, Chinese text with
an embedded CJK font subset, the seal image, and a verification QR code where there is one.

    doc = Doc(center_name, "住房公积金缴存使用证明", number="ZM2026...")
    doc.fields([("姓名", "王芳"), ("身份证号码", "...")])
    doc.paragraph("特此证明。")
    doc.qr(url, "扫码核验")
    doc.seal()
    pdf_bytes = doc.output()
"""

from __future__ import annotations

import os
from datetime import date
from io import BytesIO
from pathlib import Path

import segno
from fpdf import FPDF
from fpdf.enums import XPos, YPos

ROOT = Path(__file__).resolve().parent.parent
SEAL = ROOT / "static" / "img" / "seal.png"
FONT_CANDIDATES = (
    ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", 0),
    ("/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc", 2),
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", 2),
)


class FontMissing(RuntimeError):
    pass


def cjk_font() -> tuple[str, int]:
    """The CJK font to embed: ``PORTAL_CJK_FONT`` or the first Debian font installed."""
    configured = os.environ.get("PORTAL_CJK_FONT")
    if configured:
        return configured, int(os.environ.get("PORTAL_CJK_FONT_INDEX", "0"))
    for path, index in FONT_CANDIDATES:
        if os.path.exists(path):
            return path, index
    raise FontMissing("no CJK font found: apt-get install fonts-wqy-microhei")


class _PDF(FPDF):
    def __init__(self, center_name: str, footer_note: str):
        super().__init__(format="A4")
        self.center_name = center_name
        self.footer_note = footer_note

    def footer(self):
        self.set_y(-14)
        self.set_font("cjk", size=8)
        self.set_text_color(110, 110, 110)
        self.cell(0, 5, f"{self.footer_note}    第 {self.page_no()} / {{nb}} 页", align="C")
        self.set_text_color(0, 0, 0)


class Doc:
    """A portal document. Methods add blocks from top to bottom; ``output()`` gives bytes."""

    def __init__(
        self,
        center_name: str,
        title: str,
        *,
        number: str | None = None,
        issued_on: date | None = None,
        footer_note: str = "本文件由系统生成",
    ):
        path, index = cjk_font()
        pdf = _PDF(center_name, footer_note)
        pdf.set_margins(20, 18, 20)
        pdf.set_auto_page_break(True, margin=20)
        pdf.add_font("cjk", "", path, collection_font_number=index)
        pdf.alias_nb_pages()
        pdf.add_page()
        pdf.set_title(title)
        pdf.set_author(center_name)
        pdf.set_creator("hpf-portal")
        self.pdf = pdf
        pdf.set_font("cjk", size=11)
        pdf.set_text_color(160, 20, 20)
        pdf.cell(0, 7, center_name, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_text_color(0, 0, 0)
        pdf.set_font("cjk", size=18)
        pdf.cell(0, 12, title, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        meta = []
        if number:
            meta.append(f"编号：{number}")
        if issued_on:
            meta.append(f"日期：{issued_on:%Y年%m月%d日}")
        if meta:
            pdf.set_font("cjk", size=9)
            pdf.cell(0, 6, "    ".join(meta), align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_draw_color(160, 20, 20)
        pdf.set_line_width(0.6)
        pdf.line(20, pdf.get_y() + 1, 190, pdf.get_y() + 1)
        pdf.set_draw_color(0, 0, 0)
        pdf.set_line_width(0.2)
        pdf.ln(5)

    @property
    def width(self) -> float:
        return self.pdf.w - self.pdf.l_margin - self.pdf.r_margin

    def heading(self, text: str) -> Doc:
        self.pdf.ln(2)
        self.pdf.set_font("cjk", size=12)
        self.pdf.cell(0, 8, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        return self

    def paragraph(self, text: str, size: float = 11) -> Doc:
        self.pdf.set_font("cjk", size=size)
        self.pdf.multi_cell(0, 7, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.pdf.ln(1)
        return self

    def fields(self, rows: list[tuple[str, str]], label_width: float = 42) -> Doc:
        """Label / value rows in a bordered two-column table."""
        pdf = self.pdf
        pdf.set_font("cjk", size=10.5)
        for label, value in rows:
            value = "—" if value in (None, "") else str(value)
            lines = max(
                1,
                len(
                    pdf.multi_cell(self.width - label_width, 8, value, dry_run=True, output="LINES")
                ),
            )
            height = 8 * lines
            if pdf.get_y() + height > pdf.page_break_trigger:
                pdf.add_page()
            y = pdf.get_y()
            pdf.set_fill_color(246, 240, 240)
            pdf.cell(label_width, height, f" {label}", border=1, fill=True)
            pdf.set_xy(pdf.l_margin + label_width, y)
            pdf.multi_cell(
                self.width - label_width, 8, value, border=1, new_x=XPos.LMARGIN, new_y=YPos.NEXT
            )
        pdf.ln(3)
        return self

    def table(
        self,
        headers: list[str],
        rows: list[list[str]],
        widths: list[float],
        align: str | None = None,
    ) -> Doc:
        """A simple grid; ``align`` is one letter per column (L, C, R)."""
        pdf = self.pdf
        align = align or "L" * len(headers)
        pdf.set_font("cjk", size=9.5)
        pdf.set_fill_color(240, 240, 240)
        for header, w in zip(headers, widths, strict=True):
            pdf.cell(w, 7, header, border=1, align="C", fill=True)
        pdf.ln()
        for row in rows:
            if pdf.get_y() + 7 > pdf.page_break_trigger:
                pdf.add_page()
            for cell, w, a in zip(row, widths, align, strict=True):
                pdf.cell(w, 7, str(cell), border=1, align=a)
            pdf.ln()
        pdf.ln(3)
        return self

    def checklist(self, items: list[tuple[str, bool]]) -> Doc:
        self.pdf.set_font("cjk", size=10.5)
        for text, checked in items:
            self.pdf.cell(
                0, 7, f"{'■' if checked else '□'} {text}", new_x=XPos.LMARGIN, new_y=YPos.NEXT
            )
        self.pdf.ln(2)
        return self

    def signatures(self, labels: list[str]) -> Doc:
        """Blank lines for handwritten signatures (forms printed for signing)."""
        pdf = self.pdf
        pdf.ln(6)
        pdf.set_font("cjk", size=10.5)
        w = self.width / len(labels)
        for label in labels:
            pdf.cell(w, 8, f"{label}：____________")
        pdf.ln(10)
        return self

    def qr(self, url: str, caption: str, size: float = 30) -> Doc:
        """A QR code (vector-free PNG via segno) with a caption beside it."""
        pdf = self.pdf
        if pdf.get_y() + size > pdf.page_break_trigger:
            pdf.add_page()
        buffer = BytesIO()
        segno.make(url, error="m").save(buffer, kind="png", scale=8, border=2)
        buffer.seek(0)
        y = pdf.get_y()
        pdf.image(buffer, x=pdf.l_margin, y=y, w=size, h=size)
        pdf.set_xy(pdf.l_margin + size + 4, y + 4)
        pdf.set_font("cjk", size=9)
        pdf.multi_cell(self.width - size - 60, 6, caption, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self._qr_bottom = y + size
        return self

    def seal(self, signer: str | None = None, on: date | None = None) -> Doc:
        """The center's seal, at the right, over the issuer's name and date."""
        pdf = self.pdf
        size = 40
        y = max(pdf.get_y(), getattr(self, "_qr_bottom", 0) - size + 4)
        if y + size > pdf.page_break_trigger:
            pdf.add_page()
            y = pdf.get_y()
        x = pdf.w - pdf.r_margin - size - 6
        pdf.set_xy(x - 20, y + 12)
        pdf.set_font("cjk", size=11)
        pdf.cell(
            size + 40, 7, signer or pdf.center_name, align="C", new_x=XPos.LEFT, new_y=YPos.NEXT
        )
        if on:
            pdf.set_x(x - 20)
            pdf.cell(size + 40, 7, f"{on:%Y年%m月%d日}", align="C")
        pdf.image(str(SEAL), x=x, y=y, w=size, h=size)
        pdf.set_y(y + size + 2)
        return self

    def output(self) -> bytes:
        return bytes(self.pdf.output())
