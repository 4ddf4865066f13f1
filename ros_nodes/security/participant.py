"""An enclave folder -> the participant QoS properties that turn on Cyclone DDS's security
plugins (the properties rmw_cyclonedds sets from ``ROS_SECURITY_KEYSTORE``), with the plugins
found beside the Cyclone DDS C library this process has loaded.

The PyPI cyclonedds wheel ships no plugins; Debian's ``libddsc0debian`` has them in
``/usr/lib/<multiarch>/libddsc0debian/`` (not on the loader's search path, so they are passed
by absolute path); a source build installs them next to ``libddsc.so``.
"""

from __future__ import annotations

from pathlib import Path

from ros_nodes.security.keystore import ENCLAVE_FILES

PLUGINS = {"auth": "authentication", "access": "access_control", "crypto": "crypto"}
"""Property prefix (``dds.sec.<prefix>``) -> the plugin's init/finalize name suffix."""
_LIBRARY = {
    "auth": "libdds_security_auth.so",
    "access": "libdds_security_ac.so",
    "crypto": "libdds_security_crypto.so",
}


class SecurityUnavailable(RuntimeError):
    """The Cyclone DDS in use has no DDS Security plugins."""


class EnclaveFileMissing(FileNotFoundError):
    """An enclave folder lacks one of the files a secure participant needs."""


def loaded_ddsc() -> Path:
    """The Cyclone DDS C library (``libddsc.so*``) this process has loaded (Linux)."""
    import cyclonedds.core  # noqa: F401  (loads libddsc)

    for line in Path("/proc/self/maps").read_text().splitlines():
        path = line.split(maxsplit=5)[-1] if line.count(" ") >= 5 else ""
        if Path(path).name.startswith("libddsc.so"):
            return Path(path)
    raise SecurityUnavailable("no libddsc.so is mapped into this process (is cyclonedds importable?)")


def plugin_dir() -> Path:
    """The folder holding the security plugins that belong to the loaded libddsc."""
    ddsc = loaded_ddsc()
    candidates = [ddsc.parent, ddsc.parent / "libddsc0debian"]
    for d in candidates:
        if all((d / lib).is_file() for lib in _LIBRARY.values()):
            return d
    raise SecurityUnavailable(
        f"the Cyclone DDS library in use ({ddsc}) has no DDS Security plugins "
        f"({', '.join(_LIBRARY.values())} not in {' or '.join(map(str, candidates))}). The PyPI "
        "cyclonedds wheel ships none: install Debian's libddsc0debian and run ./spine.sh setup, "
        "which builds the Python binding against it"
    )


def security_properties(enclave: Path) -> dict[str, str]:
    """The ``dds.sec.*`` participant properties for the enclave folder ``enclave`` (as
    rmw_cyclonedds sets them: ``file:`` URIs, absolute paths).

    Raises ``EnclaveFileMissing`` naming the first missing file, ``SecurityUnavailable`` when
    the loaded Cyclone DDS has no security plugins."""
    enclave = Path(enclave).resolve()
    for name in ENCLAVE_FILES:
        if name != "permissions.xml" and not (enclave / name).is_file():
            raise EnclaveFileMissing(
                f"enclave {enclave}: {enclave / name} is missing (make the enclave with spine-keystore)"
            )
    uri = {n: f"file:{(enclave / n).resolve()}" for n in ENCLAVE_FILES}
    libs = plugin_dir()
    props = {
        "dds.sec.auth.identity_ca": uri["identity_ca.cert.pem"],
        "dds.sec.auth.identity_certificate": uri["cert.pem"],
        "dds.sec.auth.private_key": uri["key.pem"],
        "dds.sec.access.permissions_ca": uri["permissions_ca.cert.pem"],
        "dds.sec.access.governance": uri["governance.p7s"],
        "dds.sec.access.permissions": uri["permissions.p7s"],
    }
    for prefix, suffix in PLUGINS.items():
        props[f"dds.sec.{prefix}.library.path"] = str(libs / _LIBRARY[prefix])
        props[f"dds.sec.{prefix}.library.init"] = f"init_{suffix}"
        props[f"dds.sec.{prefix}.library.finalize"] = f"finalize_{suffix}"
    return props
