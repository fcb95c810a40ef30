"""Encryption of the OAuth tokens at rest (TOKEN_ENCRYPTION_KEY).

Tokens are sealed with Fernet (AES-128-CBC with HMAC-SHA256, from ``cryptography``) and
stored as ``enc:v1:<fernet token>``. Several keys may be configured, comma separated: the
first seals, all of them open, so a key can be rotated by putting the new one first; the
next save re-seals with it. A stored value without the prefix is plaintext (written before a
key was configured): it is read as it is and sealed on the next save.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

PREFIX = "enc:v1:"


class TokenKeyError(RuntimeError):
    """The stored token cannot be opened with the configured key(s), or a key is invalid.
    The message never contains a key or a token."""


class TokenCipher:
    """Seals and opens token strings; one instance per process."""

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise TokenKeyError("TOKEN_ENCRYPTION_KEY is empty")
        fernets = []
        for position, key in enumerate(keys, start=1):
            try:
                fernets.append(Fernet(key.strip().encode()))
            except (ValueError, TypeError):
                raise TokenKeyError(
                    f"TOKEN_ENCRYPTION_KEY key {position} is not a Fernet key "
                    "(32 url-safe base64-encoded bytes; make one with "
                    "`python -c 'from cryptography.fernet import Fernet; "
                    "print(Fernet.generate_key().decode())'`)"
                ) from None
        self._fernet = MultiFernet(fernets)

    @classmethod
    def from_setting(cls, value: str) -> TokenCipher:
        """From the setting's text: one key, or several separated by commas (newest first)."""
        return cls([part for part in value.split(",") if part.strip()])

    def seal(self, plaintext: str) -> str:
        return PREFIX + self._fernet.encrypt(plaintext.encode()).decode()

    def open(self, stored: str) -> str:
        if not sealed(stored):
            return stored
        try:
            return self._fernet.decrypt(stored[len(PREFIX) :].encode()).decode()
        except InvalidToken:
            raise TokenKeyError(
                "the stored QuickBooks Online token was sealed with a key that "
                "TOKEN_ENCRYPTION_KEY does not hold"
            ) from None


def sealed(stored: str) -> bool:
    return stored.startswith(PREFIX)


def open_stored(cipher: TokenCipher | None, stored: str) -> str:
    """The plaintext of a stored value; a sealed value needs a cipher."""
    if cipher is not None:
        return cipher.open(stored)
    if sealed(stored):
        raise TokenKeyError(
            "the stored QuickBooks Online token is encrypted: set TOKEN_ENCRYPTION_KEY"
        )
    return stored


def seal_for_storage(cipher: TokenCipher | None, plaintext: str) -> str:
    return plaintext if cipher is None or not plaintext else cipher.seal(plaintext)
