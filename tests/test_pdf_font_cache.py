"""The CJK font is parsed once per process and shared by documents (issue 10, portal/pdf.py):
every document still embeds a subset of only the glyphs it uses, documents do not leak into
each other, and a document is what fpdf2's own add_font gives (same text, subset, outlines and
pixels)."""

from __future__ import annotations

import re
import subprocess
import threading
import zlib
from datetime import UTC, date, datetime
from io import BytesIO

from fpdf import FPDF

from portal import pdf
from portal.pdf import Doc
from tests.conftest import pdf_text


def _document(title: str, body: str) -> bytes:
    doc = Doc("阿拉善盟住房公积金管理中心", title, number="ZM1", issued_on=date(2026, 11, 25))
    doc.paragraph(body)
    return doc.output()


def _embedded_font(data: bytes) -> bytes:
    """The FontFile2 stream (the embedded TrueType program) of a portal PDF."""
    number = re.search(rb"/FontFile2 (\d+) 0 R", data).group(1)
    match = re.search(rb"\n" + number + rb" 0 obj\n<<(.*?)>>\nstream\n", data, re.S)
    length = int(re.search(rb"/Length (\d+)", match.group(1)).group(1))
    raw = data[match.end() : match.end() + length]
    return zlib.decompress(raw) if b"FlateDecode" in match.group(1) else raw


def test_the_font_is_parsed_once_and_shared():
    path, index = pdf.cjk_font()
    first = pdf._font_template(path, index)
    _document("证明一", "王芳")
    assert pdf._font_template(path, index) is first
    assert first is not None, "this fpdf2 / font combination fell back to add_font"


def test_two_documents_in_one_process_both_render_their_own_chinese():
    a = Doc("阿拉善盟住房公积金管理中心", "住房公积金缴存使用证明")
    b = Doc("阿拉善盟住房公积金管理中心", "贷款结清证明")  # open at the same time as a
    a.fields([("姓名", "欧阳娜"), ("身份证号码", "152921199001011234")])
    b.paragraph("兹证明赵敏的住房公积金贷款已全部还清。")
    text_a, text_b = pdf_text(a.output()), pdf_text(b.output())
    assert "缴存使用证明" in text_a and "欧阳娜" in text_a
    assert "贷款结清证明" in text_b and "赵敏" in text_b and "全部还清" in text_b
    assert "欧阳娜" not in text_b and "赵敏" not in text_a
    again = pdf_text(_document("第三份", "郑洁的证明"))  # after both were written
    assert "郑洁的证明" in again


def test_each_document_embeds_only_the_glyphs_it_uses():
    small = _document("证明", "王")
    large = _document("证明", "阿拉善盟额济纳旗达来呼布镇居延路九号住房公积金管理部" * 3)
    font_small, font_large = _embedded_font(small), _embedded_font(large)
    assert len(font_small) < 60_000  # the whole face is 4.6 MB
    assert len(font_small) < len(font_large)
    fonts = subprocess.run(
        ["pdffonts", "-"], input=small, capture_output=True, check=True
    ).stdout.decode()
    row = fonts.splitlines()[-1].split()
    assert row[0].startswith("MPDFAA+")  # a subset
    assert row[-5:-2] == ["yes", "yes", "yes"]  # embedded, subset, with a ToUnicode map


def _font_program(data: bytes):
    from fontTools.ttLib import TTFont

    return TTFont(BytesIO(_embedded_font(data)))


def _rendered(data: bytes, tmp_path, name: str) -> bytes:
    """The first page drawn by poppler (pdftoppm), as PPM bytes."""
    source = tmp_path / f"{name}.pdf"
    source.write_bytes(data)
    subprocess.run(
        ["pdftoppm", "-r", "100", "-f", "1", "-l", "1", str(source), str(tmp_path / name)],
        check=True,
    )
    (page,) = tmp_path.glob(f"{name}-*.ppm")
    return page.read_bytes()


def test_the_document_is_what_fpdf2_add_font_gives(tmp_path):
    """Same layout, same subset, same outlines, same pixels. The only difference: the shared
    font keeps the face's own glyph data and overall bounds instead of recomputing them for
    the subset (fontTools' recalcBBoxes, issue 10: that recomputation decoded and re-encoded
    every glyph of every document, 40 % of a certificate's time)."""
    path, index = pdf.cjk_font()
    text = "住房公积金缴存使用证明 喆堃 ½ №12 ABC abc 王芳 欧阳娜"

    def build(add) -> bytes:
        doc = FPDF()
        doc.set_creation_date(datetime(2026, 1, 1, tzinfo=UTC))
        add(doc)
        doc.add_page()
        doc.set_font("cjk", size=11)
        doc.multi_cell(0, 7, text)
        return bytes(doc.output())

    plain = build(lambda d: d.add_font("cjk", "", path, collection_font_number=index))
    cached = build(lambda d: pdf.add_cjk_font(d, "cjk", path, index))
    assert len(re.findall(rb" obj\n", plain)) == len(re.findall(rb" obj\n", cached))
    assert pdf_text(cached) == pdf_text(plain)
    a, b = _font_program(plain), _font_program(cached)
    assert a.getGlyphOrder() == b.getGlyphOrder()
    assert a["cmap"].getBestCmap() == b["cmap"].getBestCmap()
    assert a["hmtx"].metrics == b["hmtx"].metrics
    glyf_a, glyf_b = a["glyf"], b["glyf"]
    for name in a.getGlyphOrder():
        ga, gb = glyf_a[name], glyf_b[name]
        assert ga.numberOfContours == gb.numberOfContours, name
        if ga.numberOfContours > 0:
            assert list(ga.coordinates) == list(gb.coordinates), name
            assert list(ga.endPtsOfContours) == list(gb.endPtsOfContours), name
            assert (ga.xMin, ga.yMin, ga.xMax, ga.yMax) == (gb.xMin, gb.yMin, gb.xMax, gb.yMax)
    assert _rendered(cached, tmp_path, "cached") == _rendered(plain, tmp_path, "plain")


def test_documents_built_in_parallel_threads_stay_apart():
    results: dict[int, str] = {}

    def one(i: int) -> None:
        results[i] = pdf_text(_document(f"证明{i}", f"第{i}号文件：阿拉善盟"))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, text in results.items():
        assert f"第{i}号文件" in text
        assert all(f"第{j}号文件" not in text for j in results if j != i)


def test_the_seal_decoded_once_gives_the_same_bytes(monkeypatch):
    """The seal's image entry is made once per process and copied into each document; the
    document is byte for byte what fpdf2 gives when it reads the PNG itself."""

    def sealed() -> bytes:
        doc = Doc("阿拉善盟住房公积金管理中心", "住房公积金缴存使用证明", number="ZM1")
        doc.pdf.set_creation_date(datetime(2026, 1, 1, tzinfo=UTC))
        doc.paragraph("特此证明。")
        doc.seal(on=date(2026, 11, 25))
        doc.seal()  # a second use of the same image in one document
        return doc.output()

    cached = sealed()
    again = sealed()
    monkeypatch.setattr(pdf, "_add_seal_image", lambda _pdf: None)
    assert cached == again == sealed()


def test_the_template_keeps_no_parsed_face_alive(monkeypatch):
    """The template keeps compact copies; fontTools' parsed face (a Python object per glyph,
    tens of MB shared by every forked worker) is let go, even though fpdf2's class-wide caches
    would hold the probe document's font until a document is written (issue 10: memory)."""
    import gc

    from fontTools.ttLib import TTFont

    def alive() -> int:
        gc.collect()
        return sum(isinstance(o, TTFont) for o in gc.get_objects())

    monkeypatch.setattr(pdf, "_FONT_TEMPLATES", {})
    before = alive()
    template = pdf._font_template(*pdf.cjk_font())
    assert template is not None
    assert alive() == before
    assert "郑洁" in pdf_text(_document("证明", "郑洁"))  # and it still makes documents
