"""Personal identifiers encrypted at rest (AES-256-GCM) with a keyed hash for lookups.

* ``PORTAL_DATA_KEYS``: comma-separated ``kid:base64(32 bytes)``; the first key encrypts, all
  decrypt, so keys rotate by putting a new one first and running
  ``flask --app portal crypto rotate`` (re-encrypts every sealed value with it).
* ``PORTAL_LOOKUP_KEY``: base64(32 bytes) for the HMAC-SHA256 blind index used to find a row
  by its resident ID without decrypting every row; it changes only with a full re-index.
* In development (no keys in the environment) keys are created once in ``instance/`` and
  reused; production mode refuses to start without them (portal/config.py).

A sealed value is ``"<kid>:" + base64(nonce || ciphertext+tag)``; the column name is the AES-GCM
associated data, so a value copied into another column does not decrypt.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE = 12


class CryptoError(RuntimeError):
    pass


@dataclass
class Keyring:
    keys: dict[str, bytes]  # kid -> key, insertion order = preference
    lookup_key: bytes

    @property
    def current(self) -> str:
        return next(iter(self.keys))


def _b64key(text: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except ValueError:
        raise CryptoError(f"{what} is not base64") from None
    if len(raw) != 32:
        raise CryptoError(f"{what} must be 32 bytes")
    return raw


def parse_keys(data_keys: str, lookup_key: str) -> Keyring:
    keys: dict[str, bytes] = {}
    for part in (data_keys or "").split(","):
        if not part.strip():
            continue
        kid, sep, value = part.strip().partition(":")
        if not sep or not kid.isalnum() or len(kid) > 8:
            raise CryptoError("PORTAL_DATA_KEYS entries look like kid:base64key")
        keys[kid] = _b64key(value, f"data key {kid}")
    if not keys:
        raise CryptoError("PORTAL_DATA_KEYS has no key")
    return Keyring(keys, _b64key(lookup_key, "PORTAL_LOOKUP_KEY"))


def development_keys(instance: Path) -> Keyring:
    """Keys for a development machine: created once in instance/data-keys.json."""
    path = instance / "data-keys.json"
    if not path.exists():
        instance.mkdir(parents=True, exist_ok=True)
        doc = {
            "data_keys": "k1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
            "lookup_key": base64.b64encode(secrets.token_bytes(32)).decode(),
        }
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(doc, fh)
    doc = json.loads(path.read_text())
    return parse_keys(doc["data_keys"], doc["lookup_key"])


_ring: Keyring | None = None


def configure(ring: Keyring) -> None:
    global _ring
    _ring = ring


def ring() -> Keyring:
    if _ring is None:
        raise CryptoError("encryption keys are not configured")
    return _ring


def seal(plaintext: str, context: str) -> str:
    r = ring()
    nonce = secrets.token_bytes(NONCE)
    ct = AESGCM(r.keys[r.current]).encrypt(nonce, plaintext.encode(), context.encode())
    return f"{r.current}:{base64.b64encode(nonce + ct).decode()}"


def unseal(token: str, context: str) -> str:
    kid, sep, body = token.partition(":")
    r = ring()
    if not sep or kid not in r.keys:
        raise CryptoError(f"no key {kid!r} to decrypt a sealed value")
    raw = base64.b64decode(body)
    try:
        return AESGCM(r.keys[kid]).decrypt(raw[:NONCE], raw[NONCE:], context.encode()).decode()
    except Exception as exc:  # InvalidTag: wrong key, wrong column or tampered data
        raise CryptoError("a sealed value does not decrypt (wrong key or tampered)") from exc


def is_current(token: str) -> bool:
    return token.partition(":")[0] == ring().current


def blind_index(value: str, purpose: str) -> str:
    """HMAC-SHA256 of a normalized identifier: equal values give equal indexes."""
    normalized = (value or "").strip().upper()
    return hmac.new(
        ring().lookup_key, f"{purpose}\x00{normalized}".encode(), hashlib.sha256
    ).hexdigest()
