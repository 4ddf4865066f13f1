"""DDS Security for Spine's nodes, as ROS 2 does it (SROS2): a keystore of identities (enclaves)
with governance and permissions signed by a permissions CA, and the participant properties that
make Cyclone DDS enforce them. See docs/security.md."""

from ros_nodes.security.keystore import (
    ENCLAVE_FILES,
    KeystoreError,
    create_enclave,
    create_keystore,
    enclave_dir,
    is_keystore,
    list_enclaves,
)
from ros_nodes.security.participant import (
    EnclaveFileMissing,
    SecurityUnavailable,
    plugin_dir,
    security_properties,
)

__all__ = [
    "ENCLAVE_FILES",
    "EnclaveFileMissing",
    "KeystoreError",
    "SecurityUnavailable",
    "create_enclave",
    "create_keystore",
    "enclave_dir",
    "is_keystore",
    "list_enclaves",
    "plugin_dir",
    "security_properties",
]
