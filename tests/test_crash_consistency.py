"""Issue 9, point 17, quick variant: ``scripts/crash_test.py`` with one run at each crash point
(before, during and after the bank adapter's call), against its own database: a new SQLite file,
or with TEST_DATABASE_URL a PostgreSQL database named after the test database plus ``_crash``
(created and wiped by the run). The full script, with random points and more runs, is described
in the README."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.security_helpers import side_database

pytestmark = pytest.mark.committed
ROOT = Path(__file__).resolve().parent.parent


def test_a_crash_before_during_or_after_the_bank_call_pays_once_and_stays_consistent():
    args = ["--runs", "3", "--points", "before,during,after", "--seed", "17"]
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        args += ["--wipe", "--database-url", side_database(url, "crash")]
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "crash_test.py"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert "3/3 runs consistent" in done.stdout, output[-4000:]
    for point in ("before", "during", "after"):
        assert f"ok   {point}" in done.stdout, output[-4000:]
