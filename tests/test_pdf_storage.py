"""The shared PDF layout and the storage adapter."""

from __future__ import annotations

import subprocess
from datetime import date

import pytest

from portal.pdf import Doc
from portal.storage import LocalStorage, StorageError
from tests.conftest import pdf_text


def test_document_embeds_chinese_text_and_font():
    doc = Doc("阿拉善盟住房公积金管理中心", "测试证明", number="ZM1", issued_on=date(2026, 11, 25))
    doc.fields([("姓名", "王伟帆"), ("金额（元）", "1,234.56")])
    doc.qr("http://127.0.0.1/verify?code=X", "核验码：X")
    doc.seal(on=date(2026, 11, 25))
    data = doc.output()
    text = pdf_text(data)
    assert "阿拉善盟住房公积金管理中心" in text and "测试证明" in text and "王伟帆" in text
    assert "2026年11月25日" in text
    fonts = subprocess.run(
        ["pdffonts", "-"], input=data, capture_output=True, check=True
    ).stdout.decode()
    assert "yes" in fonts.splitlines()[-1].split()  # embedded


def test_storage_round_trip_and_hash_check(tmp_path):
    store = LocalStorage(tmp_path)
    key, digest = store.put(b"hello", "docs", ".pdf")
    assert store.get(key, digest) == b"hello"
    assert store.put(b"hello", "docs", ".pdf") == (key, digest)
    (tmp_path / key).write_bytes(b"tampered")
    with pytest.raises(StorageError):
        store.get(key, digest)
    with pytest.raises(StorageError):
        store.get("../outside")
