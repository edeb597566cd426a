"""Secrets at rest: MultiFernet over ENCRYPTION_KEYS (newest first, older keys still decrypt)."""
from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from utils.config import current_settings


def _fernet() -> MultiFernet:
    keys = current_settings().encryption_keys
    return MultiFernet([Fernet(k) for k in keys])


def encrypt(plaintext: str) -> str:
    """Encrypt a secret with the newest key."""
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    """Decrypt a secret with any configured key; raises ValueError if none fits."""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise ValueError("secret cannot be decrypted with ENCRYPTION_KEYS") from exc


def rotate(token: str) -> str:
    """Re-encrypt a secret under the newest key (for key rotation)."""
    return _fernet().rotate(token.encode()).decode()
