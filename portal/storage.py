"""Where documents and uploaded materials live: a storage adapter.

``local`` (the default) keeps files under ``PORTAL_STORAGE_DIR``; several instances share it by
pointing that at a shared mount. Keys are content-addressed (SHA-256), so the same bytes are
stored once and a stored file can be checked against its hash.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path


class StorageError(RuntimeError):
    pass


class LocalStorage:
    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise StorageError("key outside the storage root")
        return path

    def put(self, data: bytes, prefix: str, suffix: str = "") -> tuple[str, str]:
        """Store bytes; returns (key, sha256). Writing is atomic (temp file + rename)."""
        digest = hashlib.sha256(data).hexdigest()
        key = f"{prefix}/{digest[:2]}/{digest}{suffix}"
        path = self._path(key)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        return key, digest

    def get(self, key: str, sha256: str | None = None) -> bytes:
        path = self._path(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise StorageError(f"missing stored file {key}") from None
        if sha256 and hashlib.sha256(data).hexdigest() != sha256:
            raise StorageError(f"stored file {key} does not match its hash")
        return data

    def exists(self, key: str) -> bool:
        return self._path(key).exists()


_storage: LocalStorage | None = None


def configure(root: str) -> None:
    global _storage
    _storage = LocalStorage(root)


def get_storage() -> LocalStorage:
    if _storage is None:
        raise StorageError("storage is not configured")
    return _storage
