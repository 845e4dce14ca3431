"""The second factor of local accounts: TOTP (RFC 6238, 30 s steps, 6 digits: what authenticator apps
use) through pyotp, and single-use recovery codes. No ORM here (services.py keeps the device).

The shared secret is a secret: it is stored encrypted (Fernet, with a key derived from SECRET_KEY,
so a database dump alone does not give it away), and recovery codes only as SHA-256 hashes (they are
random, 50 bits each, so a fast hash is enough).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

import pyotp
from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings

ISSUER = "DirOps Portal"
RECOVERY_CODES = 10
# One step either side: the phone's clock may be half a minute off.
VALID_WINDOW = 1


def _fernet() -> Fernet:
    key = hashlib.sha256(b"dirops-portal totp secret:" + settings.SECRET_KEY.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def new_secret() -> str:
    return pyotp.random_base32()


def encrypt(secret: str) -> str:
    return _fernet().encrypt(secret.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:  # SECRET_KEY changed since enrolment
        raise ValueError("the second factor cannot be read any more (SECRET_KEY changed): enrol again") from exc


def provisioning_uri(*, secret: str, username: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=ISSUER)


def qr_svg(uri: str) -> str:
    """The otpauth URI as an inline SVG QR code (no script, no external image)."""
    import segno

    return segno.make(uri, error="m").svg_inline(scale=4, dark="#1f2328", light="#ffffff")


def matching_step(*, secret: str, code: str, after_step: int, now: float | None = None) -> int | None:
    """The time step ``code`` belongs to, if it is valid and later than ``after_step`` (a code
    already used, or an older one, is refused: no replay); None otherwise."""
    code = "".join(code.split())
    if not code.isdigit() or len(code) != 6:
        return None
    totp = pyotp.TOTP(secret)
    moment = time.time() if now is None else now
    current = int(moment // totp.interval)
    for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
        if step > after_step and hmac.compare_digest(totp.at(step * totp.interval), code):
            return step
    return None


def new_recovery_codes() -> tuple[list[str], list[str]]:
    """(codes to show once, their hashes to keep)."""
    codes = [f"{secrets.token_hex(3)}-{secrets.token_hex(3)}" for _ in range(RECOVERY_CODES)]
    return codes, [hash_recovery_code(code) for code in codes]


def hash_recovery_code(code: str) -> str:
    return hashlib.sha256("".join(code.lower().split()).encode()).hexdigest()
