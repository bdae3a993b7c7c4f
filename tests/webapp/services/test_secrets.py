import pytest
from cryptography.fernet import Fernet

from webapp.services.secrets import SecretBox, SecretError


def test_round_trip_and_wrong_key():
    box = SecretBox(Fernet.generate_key().decode())
    token = box.encrypt("pässword")
    assert "pässword" not in token
    assert box.decrypt(token) == "pässword"
    with pytest.raises(SecretError):
        SecretBox(Fernet.generate_key().decode()).decrypt(token)
    assert "key" not in repr(box).lower()
