"""A keystore and its enclaves, laid out as ``ros2 security create_keystore`` / ``create_enclave``
(SROS2) lay them out, so a ROS 2 system can use the same folder::

    KEYSTORE/public/ca.cert.pem                  the CA (identity and permissions CA in one)
    KEYSTORE/public/{identity_ca,permissions_ca}.cert.pem -> ca.cert.pem
    KEYSTORE/private/ca.key.pem                  (+ identity_ca/permissions_ca.key.pem links)
    KEYSTORE/enclaves/governance.xml, governance.p7s   (signed by the permissions CA)
    KEYSTORE/enclaves/<enclave path>/cert.pem key.pem permissions.xml permissions.p7s
        + identity_ca.cert.pem, permissions_ca.cert.pem, governance.p7s (relative links)

Enclave paths are absolute ROS names (``/spine/safety``); an identity's certificate says
``CN=<enclave path>``, which is what its permissions grant names.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from ros_nodes.security import documents, pki

PUBLIC, PRIVATE, ENCLAVES = "public", "private", "enclaves"
ENCLAVE_FILES = (
    "cert.pem",
    "key.pem",
    "identity_ca.cert.pem",
    "permissions_ca.cert.pem",
    "governance.p7s",
    "permissions.xml",
    "permissions.p7s",
)
"""The files SROS2 puts in every enclave folder."""
_NAME = re.compile(r"^(/[A-Za-z_][A-Za-z0-9_]*)+$")


class KeystoreError(ValueError):
    """A keystore or enclave that is missing, invalid or already there."""


def _link(target: Path, link: Path) -> None:
    """``link`` -> ``target`` as a relative symlink (what SROS2 does), replacing an old one."""
    rel = os.path.relpath(target, link.parent)
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(rel)


def is_keystore(keystore: Path) -> bool:
    """Whether ``keystore`` has the CA files and the signed governance SROS2 checks for."""
    return all(
        (keystore / p).is_file()
        for p in (
            f"{PUBLIC}/permissions_ca.cert.pem",
            f"{PUBLIC}/identity_ca.cert.pem",
            f"{PRIVATE}/permissions_ca.key.pem",
            f"{PRIVATE}/identity_ca.key.pem",
            f"{ENCLAVES}/governance.p7s",
        )
    )


def create_keystore(keystore: Path, domains: tuple[int, int] = documents.DOMAINS) -> Path:
    """Make a keystore at ``keystore`` (a new or empty folder): a CA, the governance document for
    domain ids ``domains`` (min, max) and its signature. Returns ``keystore``."""
    if is_keystore(keystore):
        raise KeystoreError(f"{keystore} is a keystore already")
    if keystore.exists() and any(keystore.iterdir()):
        raise KeystoreError(f"{keystore} exists and is not empty; choose a new folder")
    public, private, enclaves = (keystore / d for d in (PUBLIC, PRIVATE, ENCLAVES))
    for d in (public, private, enclaves):
        d.mkdir(parents=True, exist_ok=True)
    private.chmod(0o700)
    key, cert = pki.make_key_and_cert(pki.CA_COMMON_NAME, ca=True)
    pki.write_key(key, private / "ca.key.pem")
    pki.write_cert(cert, public / "ca.cert.pem")
    for role in ("identity_ca", "permissions_ca"):
        _link(public / "ca.cert.pem", public / f"{role}.cert.pem")
        _link(private / "ca.key.pem", private / f"{role}.key.pem")
    gov = documents.governance_xml(domains)
    (enclaves / "governance.xml").write_bytes(gov)
    (enclaves / "governance.p7s").write_bytes(pki.smime_sign(gov, cert, key))
    return keystore


def enclave_dir(keystore: Path, enclave: str) -> Path:
    """The folder of ``enclave`` (``/spine/safety`` -> ``KEYSTORE/enclaves/spine/safety``)."""
    if not _NAME.match(enclave):
        raise KeystoreError(
            f"enclave {enclave!r}: use an absolute ROS name such as /spine/safety "
            "(letters, digits, underscores; each part not starting with a digit)"
        )
    return keystore / ENCLAVES / enclave.lstrip("/")


def create_enclave(
    keystore: Path,
    enclave: str,
    publish: Sequence[str],
    subscribe: Sequence[str],
    domains: tuple[int, int] = documents.DOMAINS,
) -> Path:
    """Make ``enclave`` in ``keystore`` (or rewrite its permissions, keeping its identity): a key
    and certificate ``CN=<enclave>`` from the identity CA, and permissions to publish/subscribe
    the DDS topics (``rt/...``, fnmatch patterns allowed) ``publish``/``subscribe`` in domain
    ids ``domains``, signed by the permissions CA. Returns the enclave folder."""
    if not is_keystore(keystore):
        raise KeystoreError(f"{keystore} is not a keystore: make one with `spine-keystore create`")
    out = enclave_dir(keystore, enclave)
    out.mkdir(parents=True, exist_ok=True)
    public, private, enclaves = (keystore / d for d in (PUBLIC, PRIVATE, ENCLAVES))
    for name in ("identity_ca.cert.pem", "permissions_ca.cert.pem"):
        _link(public / name, out / name)
    _link(enclaves / "governance.p7s", out / "governance.p7s")
    if (out / "cert.pem").is_file() and (out / "key.pem").is_file():  # keep the identity (SROS2 does)
        cert = pki.load_cert(out / "cert.pem")
    else:
        ca = (pki.load_cert(public / "identity_ca.cert.pem"), pki.load_key(private / "identity_ca.key.pem"))
        key, cert = pki.make_key_and_cert(enclave, issuer=ca)
        pki.write_key(key, out / "key.pem")
        pki.write_cert(cert, out / "cert.pem")
    perms = documents.permissions_xml(
        enclave, publish, subscribe, cert.not_valid_before_utc, cert.not_valid_after_utc, domains
    )
    (out / "permissions.xml").write_bytes(perms)
    perm_ca = pki.load_cert(public / "permissions_ca.cert.pem")
    perm_key = pki.load_key(private / "permissions_ca.key.pem")
    (out / "permissions.p7s").write_bytes(pki.smime_sign(perms, perm_ca, perm_key))
    return out


def list_enclaves(keystore: Path) -> list[str]:
    """The enclave paths in ``keystore`` (every folder under ``enclaves/`` with a ``key.pem``)."""
    root = keystore / ENCLAVES
    return sorted("/" + p.parent.relative_to(root).as_posix() for p in root.glob("**/key.pem"))
