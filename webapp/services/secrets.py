"""Secrets of tenants (the SIP password) encrypted at rest with the deployment's key.

The key comes from AUTOCALL_ENCRYPTION_KEY and is never stored in the database, so a copy
of the database alone does not reveal any tenant's SIP password.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken


class SecretError(ValueError):
    """A stored secret cannot be decrypted with this deployment's key."""


class SecretBox:
    def __init__(self, key: str) -> None:
        self._fernet = Fernet(key.encode("ascii"))

    def encrypt(self, plain: str) -> str:
        return self._fernet.encrypt(plain.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except InvalidToken:
            raise SecretError("the secret was encrypted with another key") from None

    def __repr__(self) -> str:
        return "<SecretBox>"
