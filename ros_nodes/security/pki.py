"""Keys, certificates and S/MIME signatures for a DDS Security keystore (``cryptography``).

What DDS Security's builtin plugins expect, and what SROS2 writes:
- keys are EC prime256v1 (DDS Security 1.1, 9.3.1), PEM, PKCS#8, unencrypted;
- a self-signed CA (``CN=sros2CA`` in SROS2; ours says Spine) signs the identity certificates
  (``CN=<enclave path>``) and, as the permissions CA, the governance and permissions documents;
- documents are signed as S/MIME, clear-signed (``multipart/signed``, ``text/plain`` part),
  which is what ``openssl smime -sign -text`` writes and Cyclone's access control plugin reads.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

CA_COMMON_NAME = "spineCA"
VALID_DAYS = 3650
"""How long certificates (and so permissions) are valid (days), as SROS2's default."""


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_key_and_cert(
    common_name: str,
    *,
    ca: bool = False,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None = None,
    days: int = VALID_DAYS,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A new P-256 key and its certificate ``CN=common_name``, valid from a day ago for ``days``.

    ``issuer`` (CA certificate, CA key) signs it; without one it is self-signed. ``ca=True``
    makes a CA certificate (basic constraints critical, path length 1)."""
    key = ec.generate_private_key(ec.SECP256R1())
    signer_cert, signer_key = issuer if issuer is not None else (None, key)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(signer_cert.subject if signer_cert is not None else _name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))  # tolerate clocks a little behind
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=1 if ca else None), critical=ca)
        .sign(signer_key, hashes.SHA256())
    )
    return key, cert


def write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    """``key`` as unencrypted PKCS#8 PEM at ``path``, readable by its owner only (0600)."""
    data = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_bytes(data)


def write_cert(cert: x509.Certificate, path: Path) -> None:
    """``cert`` as PEM at ``path``."""
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def load_cert(path: Path) -> x509.Certificate:
    """The PEM certificate at ``path``."""
    return x509.load_pem_x509_certificate(path.read_bytes())


def load_key(path: Path) -> ec.EllipticCurvePrivateKey:
    """The unencrypted PEM private key at ``path`` (must be EC, as DDS Security needs)."""
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{path}: expected an EC private key, got {type(key).__name__}")
    return key


def smime_sign(data: bytes, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> bytes:
    """``data`` clear-signed as S/MIME (detached, text) by ``cert``/``key`` with SHA-256."""
    builder = pkcs7.PKCS7SignatureBuilder().set_data(data).add_signer(cert, key, hashes.SHA256())
    options = [pkcs7.PKCS7Options.Text, pkcs7.PKCS7Options.DetachedSignature]
    return builder.sign(serialization.Encoding.SMIME, options)
