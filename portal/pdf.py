"""One layout for every PDF the portal issues: the center's name, a title, Chinese text with
an embedded CJK font subset, the seal image, and a verification QR code where there is one.

    doc = Doc(center_name, "住房公积金缴存使用证明", number="ZM2026...")
    doc.fields([("姓名", "王芳"), ("身份证号码", "...")])
    doc.paragraph("特此证明。")
    doc.qr(url, "扫码核验")
    doc.seal()
    pdf_bytes = doc.output()

Services do not use this module directly: they record a :class:`portal.documents.Document`
(the same arguments and blocks), which the PDF renderer process, or the calling process when
there is none, writes with :func:`replay`.
"""

from __future__ import annotations

import copy
import os
import threading
from array import array
from bisect import bisect_left
from collections.abc import Mapping
from datetime import date
from io import BytesIO
from pathlib import Path

import segno
from fontTools import ttLib
from fontTools.ttLib.tables._g_l_y_f import Glyph as _Glyph
from fpdf import FPDF
from fpdf.enums import XPos, YPos
from fpdf.fonts import SubsetMap, TTFFont

from portal.documents import BLOCKS, FontMissing

__all__ = ["Doc", "FontMissing", "replay", "warm_up"]

ROOT = Path(__file__).resolve().parent.parent
SEAL = ROOT / "static" / "img" / "seal.png"
FONT_CANDIDATES = (
    ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", 0),
    ("/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc", 2),
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", 2),
)


def cjk_font() -> tuple[str, int]:
    """The CJK font to embed: ``PORTAL_CJK_FONT`` or the first Debian font installed."""
    configured = os.environ.get("PORTAL_CJK_FONT")
    if configured:
        return configured, int(os.environ.get("PORTAL_CJK_FONT_INDEX", "0"))
    for path, index in FONT_CANDIDATES:
        if os.path.exists(path):
            return path, index
    raise FontMissing("no CJK font found: apt-get install fonts-wqy-microhei")


# --- the CJK font, parsed once per process (issue 10) ------------------------------------
#
# fpdf2's add_font reads the whole font (metrics, character map, glyph names: 0.2-0.3 s for a
# CJK font) and writing the document subsets that fontTools object in place, so a font object
# serves one document. Parsing it for every PDF made a certificate cost half a second or more.
#
# Here the font is parsed once per process into a template: fpdf2's metrics and character map
# (read-only) and the decompiled tables the subsetter reads (glyph order, cmap, hmtx, post).
# Every document gets its own font object and its own fontTools font, lazily opened, into which
# copies of those tables are put; its glyphs are made from the raw outlines on first use, so
# the subsetter (which edits tables and glyphs in place) never touches shared state.
#
# Writing the subset does not recompute bounding boxes (fontTools' recalcBBoxes): that decoded
# and re-encoded every glyph of every document (40 % of a certificate's time). The glyphs keep
# the face's own data, bounds included, and the header tables keep the whole face's overall
# bounds, which still enclose the subset's (fpdf2's font descriptor gives the whole face's
# too). Otherwise the document is what add_font gives: same text, subset, outlines and pixels
# (tests/test_pdf_font_cache.py). With an fpdf2 this code does not know, or a font it would
# have to patch, documents fall back to add_font.

_FONT_LOCK = threading.Lock()
_FONT_TEMPLATES: dict[tuple[str, int], _FontTemplate | None] = {}
# The TTFFont attributes the copy below knows about.
_TTF_SLOTS = frozenset(
    """i type name desc glyph_ids _hbfont sp ss up ut cw ttffile fontkey emphasis scale subset
    cmap ttfont missing_glyphs biggest_size_pt color_font unicode_range palette_index
    is_compressed is_cff is_cid_keyed is_symbol cff_ros collection_font_number""".split()
)


class _ByGlyphName(Mapping):
    """A read-only mapping keyed by the face's glyph names (``gids``: name -> glyph id, shared
    with the template), its values kept by glyph id."""

    def __init__(self, gids: dict[str, int]):
        self._gids = gids

    def __contains__(self, name):
        return name in self._gids

    def __iter__(self):
        return iter(self._gids)

    def __len__(self):
        return len(self._gids)


class _RawGlyphs(_ByGlyphName):
    """Glyph name -> glyph, from the face's raw 'glyf' table (one bytes object and its offsets,
    shared by every document); each read makes a new Glyph, so what one document's subsetter
    does to its glyphs stays in that document."""

    def __init__(self, gids: dict[str, int], blob: bytes, offsets: array):
        """``blob[offsets[gid]:offsets[gid + 1]]`` is glyph ``gid``'s data."""
        super().__init__(gids)
        self._blob, self._offsets = blob, offsets

    def _data(self, gid: int) -> bytes:
        return self._blob[self._offsets[gid] : self._offsets[gid + 1]]

    def __getitem__(self, name):
        return _Glyph(self._data(self._gids[name]))

    def get(self, name, default=None):
        gid = self._gids.get(name)
        return default if gid is None else _Glyph(self._data(gid))


class _Metrics(_ByGlyphName):
    """Glyph name -> (advance, side bearing), as fontTools' hmtx / vmtx ``metrics`` gives it,
    kept in two arrays instead of a dict of tuples (tens of thousands of glyphs)."""

    def __init__(self, gids: dict[str, int], metrics: dict, order: list[str]):
        super().__init__(gids)
        self._advance = array("i", (metrics[name][0] for name in order))
        self._bearing = array("i", (metrics[name][1] for name in order))

    def __getitem__(self, name):
        gid = self._gids[name]
        return (self._advance[gid], self._bearing[gid])


def _maps_code_points(table) -> bool:
    """A character map from Unicode code points to glyphs (not the variation sequences)."""
    return table.isUnicode() and table.format != 14


class _FontTemplate:
    def __init__(self, path: str, index: int, font: TTFFont):
        """Copies what documents share from ``font`` (fpdf2's add_font, not yet written), so
        ``font`` itself can still serve one document. The parsed face is shared by every
        worker a server forks, so it is kept compact: arrays and one bytes object where
        fontTools keeps a Python object per glyph (issue 10: worker memory)."""
        self.path, self.index = path, index
        tt = font.ttfont
        self.glyph_order = list(tt.getGlyphOrder())
        cmap = tt["cmap"]
        for table in cmap.tables:
            table.ensureDecompiled()
        self.cmap = copy.copy(cmap)
        self.cmap.tables = [copy.copy(table) for table in cmap.tables]
        for table in self.cmap.tables:
            table.ttFont = None  # decompiled: the parsed font need not stay alive
        self.reverse_glyph_order = {name: gid for gid, name in enumerate(self.glyph_order)}
        # glyph id -> its code points in any Unicode character map, as two sorted arrays, so
        # a document's maps can be cut down to its own glyphs before subsetting
        pairs = sorted(
            {
                (self.reverse_glyph_order[name], code)
                for table in self.cmap.tables
                if _maps_code_points(table)
                for code, name in table.cmap.items()
            }
        )
        self.code_gids = array("i", (gid for gid, _code in pairs))
        self.codes = array("i", (code for _gid, code in pairs))
        # what the subsetter always keeps besides the document's glyphs (recommended_glyphs)
        self.always = set(self.glyph_order[:4])
        self.hmtx = copy.copy(tt["hmtx"])
        self.hmtx.metrics = _Metrics(self.reverse_glyph_order, tt["hmtx"].metrics, self.glyph_order)
        # vertical metrics, when the face has them (WenQuanYi does): decompiled once too
        self.vmtx = None
        if "vmtx" in tt:
            self.vmtx = copy.copy(tt["vmtx"])
            self.vmtx.metrics = _Metrics(
                self.reverse_glyph_order, tt["vmtx"].metrics, self.glyph_order
            )
        self.post = copy.copy(tt["post"])
        # The face's file, kept in memory: each document's fontTools font reads its small
        # tables from it (no file handle per document), and the glyphs are slices of it.
        self.file_bytes = Path(path).read_bytes()
        glyf_data = tt.reader["glyf"]
        entry = tt.reader.tables["glyf"]
        base = getattr(entry, "offset", None)
        if base is None or self.file_bytes[base : base + len(glyf_data)] != glyf_data:
            blob, base = glyf_data, 0  # not a plain table of the file
        else:
            blob = self.file_bytes
        self.glyf = copy.copy(tt["glyf"])
        self.glyf.glyphs = _RawGlyphs(
            self.reverse_glyph_order,
            blob,
            array("I", (base + int(offset) for offset in tt["loca"])),
        )
        self.font = copy.copy(font)
        self.font.ttfont = None
        self.font.subset = None

    def codes_of(self, gid: int):
        """The code points that map to glyph ``gid`` in some Unicode character map."""
        i = bisect_left(self.code_gids, gid)
        while i < len(self.code_gids) and self.code_gids[i] == gid:
            yield self.codes[i]
            i += 1

    @staticmethod
    def usable(font: TTFFont) -> bool:
        """A plain TrueType font (glyf outlines) that fpdf2 did not have to patch."""
        tt = font.ttfont
        return (
            set(getattr(TTFFont, "__slots__", ())) == _TTF_SLOTS
            and font.color_font is None
            and not font.is_cff
            and "glyf" in tt
            and len(tt.getGlyphOrder()) == tt["maxp"].numGlyphs  # no .notdef patched in
        )

    def ttfont(self) -> ttLib.TTFont:
        """This document's fontTools font: the face read lazily from the bytes in memory (the
        small tables), the big decompiled tables copied in, the glyphs fresh on first use."""
        tt = ttLib.TTFont(
            BytesIO(self.file_bytes),  # shares the bytes: no copy, no file handle
            recalcBBoxes=False,
            recalcTimestamp=False,
            fontNumber=self.index,
            lazy=True,
        )
        tt.setGlyphOrder(list(self.glyph_order))
        tt._reverseGlyphOrderDict = dict(self.reverse_glyph_order)
        tt.tables["hmtx"] = copy.copy(self.hmtx)
        if self.vmtx is not None:
            tt.tables["vmtx"] = copy.copy(self.vmtx)
        tt.tables["post"] = copy.copy(self.post)
        cmap = copy.copy(self.cmap)
        cmap.tables = [copy.copy(table) for table in self.cmap.tables]
        tt.tables["cmap"] = cmap
        glyf = copy.copy(self.glyf)
        glyf.glyphOrder = list(self.glyph_order)
        glyf._reverseGlyphOrder = {}
        tt.tables["glyf"] = glyf
        return tt

    def add_to(self, pdf: FPDF, family: str) -> None:
        font = copy.copy(self.font)
        font.i = len(pdf.fonts) + 1
        font.fontkey = family.lower()
        font.ttfont = self.ttfont()
        font.desc = copy.copy(self.font.desc)  # fpdf2 writes the object id and stream in it
        font.missing_glyphs = []
        font.biggest_size_pt = 0
        font._hbfont = None
        font.subset = _DocumentSubsetMap(font, self)
        pdf.fonts[font.fontkey] = font


class _DocumentSubsetMap(SubsetMap):
    """fpdf2's map of the characters a document uses, which also cuts the document's copy of
    the character maps down to those glyphs when fpdf2 asks for them, right before it subsets
    the font. fontTools' subsetter then filters a few hundred entries instead of every code
    point of the face, four times (issue 10: ~10 ms a certificate); what it keeps is the same,
    so the bytes are too (tests/test_pdf_font_cache.py)."""

    def __init__(self, font: TTFFont, template: _FontTemplate):
        super().__init__(font)
        self._template = template

    def get_all_glyph_names(self):
        names = super().get_all_glyph_names()
        template = self._template
        keep = set(names) | template.always
        codes = sorted(
            code
            for name in keep
            if name in template.reverse_glyph_order
            for code in template.codes_of(template.reverse_glyph_order[name])
        )
        for table in self.font.ttfont["cmap"].tables:
            if _maps_code_points(table):
                full = table.cmap
                table.cmap = {code: full[code] for code in codes if full.get(code) in keep}
        return names


def _font_template(path: str, index: int) -> _FontTemplate | None:
    """The parsed font, once per process; None when documents must use add_font."""
    key = (path, index)
    with _FONT_LOCK:
        if key not in _FONT_TEMPLATES:
            template = None
            probe = FPDF()
            probe.add_font("cjk", "", path, collection_font_number=index)
            if _FontTemplate.usable(probe.fonts["cjk"]):
                template = _FontTemplate(path, index, probe.fonts["cjk"])
            probe.fonts["cjk"].close()
            # fpdf2 memoizes SubsetMap.pick / get_glyph per map in class-wide caches that it
            # clears when a document is written; the probe is never written, and the caches
            # would keep it, and the whole parsed face with it, alive (~12 MB).
            SubsetMap.pick.cache_clear()
            SubsetMap.get_glyph.cache_clear()
            _FONT_TEMPLATES[key] = template
        return _FONT_TEMPLATES[key]


def add_cjk_font(pdf: FPDF, family: str, path: str, index: int) -> None:
    """``pdf.add_font(family, "", path, collection_font_number=index)``, without parsing the
    font again in this process."""
    template = _font_template(path, index)
    if template is None:
        pdf.add_font(family, "", path, collection_font_number=index)
    else:
        template.add_to(pdf, family)


_SEAL_INFO = None  # fpdf2's RasterImageInfo of the seal, made on first use


def _add_seal_image(pdf: FPDF) -> None:
    """Put the seal, decoded and compressed once per process, in this document's image cache,
    so ``pdf.image(SEAL)`` finds it there instead of decoding the PNG again (issue 10). The
    entry is fpdf2's own (``get_img_info``), copied per document; its data is read-only."""
    global _SEAL_INFO
    name = str(SEAL)
    images = pdf.image_cache.images
    if name in images:
        return
    if _SEAL_INFO is None:
        from fpdf.image_parsing import get_img_info

        _SEAL_INFO = get_img_info(name, None, pdf.image_cache.image_filter)
    if _SEAL_INFO.get("iccp") is not None:
        return  # a colour profile has its own bookkeeping: let fpdf2 load the file itself
    info = copy.copy(_SEAL_INFO)
    info["i"] = len(images) + 1
    info["usages"] = 0  # pdf.image() counts this use
    info["iccp_i"] = None
    images[name] = info


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
        add_cjk_font(pdf, "cjk", path, index)
        pdf.alias_nb_pages()
        pdf.add_page()
        pdf.set_title(title)
        pdf.set_author(center_name)
        pdf.set_creator("hpf-portal")
        self.pdf = pdf
        meta = []
        if number:
            meta.append(f"编号：{number}")
        if issued_on:
            meta.append(f"日期：{issued_on:%Y年%m月%d日}")
        self._header(title, "    ".join(meta))

    def _header(self, title: str, meta: str) -> None:
        """The center's name, the title, the number and date at the right, a red rule."""
        pdf = self.pdf
        pdf.set_font("cjk", size=11)
        pdf.set_text_color(160, 20, 20)
        pdf.cell(0, 7, pdf.center_name, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_text_color(0, 0, 0)
        pdf.set_font("cjk", size=18)
        pdf.cell(0, 12, title, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        if meta:
            pdf.set_font("cjk", size=9)
            pdf.cell(0, 6, meta, align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_draw_color(160, 20, 20)
        pdf.set_line_width(0.6)
        pdf.line(20, pdf.get_y() + 1, 190, pdf.get_y() + 1)
        pdf.set_draw_color(0, 0, 0)
        pdf.set_line_width(0.2)
        pdf.ln(5)

    def copy_page(self, title: str, number: str | None, copy_label: str) -> Doc:
        """A further copy (联) of the document on a new page, under the same heading."""
        self.pdf.add_page()
        self._header(title, f"编号：{number}    {copy_label}" if number else copy_label)
        return self

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
        _add_seal_image(pdf)
        pdf.image(str(SEAL), x=x, y=y, w=size, h=size)
        pdf.set_y(y + size + 2)
        return self

    def output(self) -> bytes:
        return bytes(self.pdf.output())


def warm_up() -> None:
    """Parse the CJK font, decode the seal and write one throwaway document now (a server's
    master process calls this before forking its workers, so they share the font, the seal
    and every module a document needs — subsetting, QR codes, images — and none pays for them,
    in time or in memory of its own, on its first document)."""
    try:
        doc = Doc("住房公积金管理中心", "预热", number="0", issued_on=date(2026, 1, 1))
    except FontMissing:
        return  # documents will say so when one is asked for
    doc.fields([("姓名", "王芳")])
    doc.qr("https://example.invalid/verify/0", "核验码")
    doc.seal(on=date(2026, 1, 1))
    doc.output()


def replay(script: tuple) -> bytes:
    """Write a document recorded by :class:`portal.documents.Document`: ``script`` is Doc's
    positional and keyword arguments and the blocks, each (method, args, kwargs), in order."""
    args, kwargs, blocks = script
    doc = Doc(*args, **kwargs)
    for name, block_args, block_kwargs in blocks:
        if name not in BLOCKS:
            raise ValueError(f"not a document block: {name!r}")
        getattr(doc, name)(*block_args, **block_kwargs)
    return doc.output()
