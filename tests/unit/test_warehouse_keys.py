"""A Snowflake key pair's private key, as pasted into the settings: multi-line, or on one line
(a form's one-line field drops the breaks), encrypted or not."""

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from engine.warehouses.snowflake import private_key
from engine.warehouses.warehouse import WarehouseError

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
DER = KEY.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                        serialization.NoEncryption())  # fmt: skip


def pem(passphrase: bytes | None = None) -> str:
    encryption = (serialization.BestAvailableEncryption(passphrase) if passphrase
                  else serialization.NoEncryption())  # fmt: skip
    return KEY.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             encryption).decode()  # fmt: skip


def test_a_key_as_pasted_with_or_without_its_line_breaks() -> None:
    assert private_key(pem(), "") == DER
    assert private_key(pem().replace("\n", ""), "") == DER
    assert private_key("  " + pem().replace("\n", " ") + "  ", "") == DER


def test_an_encrypted_key_needs_its_passphrase() -> None:
    assert private_key(pem(b"s3cret-phrase").replace("\n", ""), "s3cret-phrase") == DER
    with pytest.raises(WarehouseError, match="privateKey cannot be read") as refused:
        private_key(pem(b"s3cret-phrase"), "wrong")
    assert "s3cret-phrase" not in str(refused.value)
    with pytest.raises(WarehouseError, match="privateKey cannot be read"):
        private_key("not a key", "")
