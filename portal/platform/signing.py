"""Ed25519 signatures for platform messages (the ``cryptography`` package).

* Our private key: ``PORTAL_SIGNING_KEY``, the base64 of a 32-byte seed. In development,
  when it is unset, a seed is generated once into ``instance/signing.key`` and reused; in
  production the variable is required.
* Peers' public keys: ``Center.public_key``, the base64 of the raw 32-byte key, managed by
  the admin.
* Demo peers have deterministic keys: seed = sha256("demo-peer-<code>").
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from flask import current_app

ALGORITHM = "Ed25519"
SEED_BYTES = 32


class SigningError(RuntimeError):
    """The signing key is missing or malformed."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str, size: int | None, what: str) -> bytes:
    try:
        raw = base64.b64decode((text or "").strip(), validate=True)
    except (binascii.Error, ValueError):
        raise SigningError(f"{what} is not valid base64") from None
    if size is not None and len(raw) != size:
        raise SigningError(f"{what} must be {size} bytes, got {len(raw)}")
    return raw


def key_from_seed(seed: bytes) -> Ed25519PrivateKey:
    if len(seed) != SEED_BYTES:
        raise SigningError("an Ed25519 seed has 32 bytes")
    return Ed25519PrivateKey.from_private_bytes(seed)


def _key_file(config) -> Path:
    configured = config.get("SIGNING_KEY_FILE")
    if configured:
        return Path(configured)
    return Path(current_app.instance_path) / "signing.key"


def _development_seed(path: Path) -> bytes:
    """The seed in ``path``, created (mode 0600) on first use; two processes racing to
    create it both end up reading the one that won."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as fh:
            fh.write(_b64(os.urandom(SEED_BYTES)) + "\n")
    return _unb64(path.read_text(), SEED_BYTES, str(path))


def private_key(config=None) -> Ed25519PrivateKey:
    """Our center's signing key (see the module docstring for where it comes from)."""
    config = current_app.config if config is None else config
    configured = config.get("SIGNING_KEY") or os.environ.get("PORTAL_SIGNING_KEY")
    if configured:
        return key_from_seed(_unb64(configured, SEED_BYTES, "PORTAL_SIGNING_KEY"))
    if config.get("ENV") == "production":
        raise SigningError("PORTAL_SIGNING_KEY must be set in production")
    return key_from_seed(_development_seed(_key_file(config)))


def public_key_b64(key: Ed25519PrivateKey) -> str:
    return _b64(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))


def sign(data: bytes, key: Ed25519PrivateKey | None = None) -> str:
    """The base64 signature of ``data`` (our key unless another is given)."""
    return _b64((key or private_key()).sign(data))


def load_public_key(text: str | None) -> Ed25519PublicKey:
    if not text:
        raise SigningError("no public key")
    return Ed25519PublicKey.from_public_bytes(_unb64(text, SEED_BYTES, "public key"))


def verify(public_key: str | None, data: bytes, signature: str) -> bool:
    """True when ``signature`` (base64) is the holder of ``public_key``'s over ``data``."""
    try:
        key = load_public_key(public_key)
        key.verify(_unb64(signature, 64, "signature"), data)
    except (SigningError, InvalidSignature, ValueError):
        return False
    return True


def is_valid_public_key(text: str | None) -> bool:
    try:
        load_public_key(text)
    except (SigningError, ValueError):
        return False
    return True


# --- demo peers ---------------------------------------------------------------------------


def demo_peer_key(code: str) -> Ed25519PrivateKey:
    """The deterministic key of a demo peer center (development and tests only)."""
    return key_from_seed(hashlib.sha256(f"demo-peer-{code}".encode()).digest())


def demo_peer_public_key(code: str) -> str:
    return public_key_b64(demo_peer_key(code))
