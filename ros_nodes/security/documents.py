"""The two DDS Security XML documents: governance (the domain's rules) and permissions (a grant
per enclave), in the OMG shared-CA schemas SROS2 writes and Cyclone DDS reads.

Governance: no unauthenticated participants, join access control, discovery and liveliness
encrypted, RTPS messages signed, and on every topic read and write access control with its data
and metadata encrypted (SROS2's default ``governance.xml``, for a range of domain ids).
Permissions: ``default`` DENY, one allow rule listing the DDS topics (``rt/...``) the enclave may
publish and subscribe, valid as long as its certificate.
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from collections.abc import Sequence

DOMAINS = (0, 230)
"""Domain ids (min, max) the documents cover: 0..230, all Cyclone DDS accepts (its parser
rejects ids above 230)."""
_XSI = "http://www.w3.org/2001/XMLSchema-instance"
_SCHEMA = "http://www.omg.org/spec/DDS-SECURITY/20170901/omg_shared_ca_{}.xsd"


def _root(kind: str) -> ET.Element:
    return ET.Element("dds", {"xmlns:xsi": _XSI, "xsi:noNamespaceSchemaLocation": _SCHEMA.format(kind)})


def _domains(parent: ET.Element, domains: tuple[int, int]) -> None:
    lo, hi = domains
    el = ET.SubElement(parent, "domains")
    if lo == hi:
        ET.SubElement(el, "id").text = str(lo)
    else:
        rng = ET.SubElement(el, "id_range")
        ET.SubElement(rng, "min").text = str(lo)
        ET.SubElement(rng, "max").text = str(hi)


def _text(parent: ET.Element, tag: str, text: str) -> None:
    ET.SubElement(parent, tag).text = text


def _bytes(root: ET.Element) -> bytes:
    ET.indent(root, "  ")
    return ET.tostring(root, encoding="UTF-8", xml_declaration=True) + b"\n"


def governance_xml(domains: tuple[int, int] = DOMAINS) -> bytes:
    """The governance document (UTF-8 XML) for domain ids ``domains`` (min, max)."""
    root = _root("governance")
    rule = ET.SubElement(ET.SubElement(root, "domain_access_rules"), "domain_rule")
    _domains(rule, domains)
    _text(rule, "allow_unauthenticated_participants", "false")
    _text(rule, "enable_join_access_control", "true")
    _text(rule, "discovery_protection_kind", "ENCRYPT")
    _text(rule, "liveliness_protection_kind", "ENCRYPT")
    _text(rule, "rtps_protection_kind", "SIGN")
    topic = ET.SubElement(ET.SubElement(rule, "topic_access_rules"), "topic_rule")
    _text(topic, "topic_expression", "*")
    for flag in ("discovery_protection", "liveliness_protection", "read_access_control"):
        _text(topic, f"enable_{flag}", "true")
    _text(topic, "enable_write_access_control", "true")
    _text(topic, "metadata_protection_kind", "ENCRYPT")
    _text(topic, "data_protection_kind", "ENCRYPT")
    return _bytes(root)


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).replace(tzinfo=None).isoformat()


def permissions_xml(
    enclave: str,
    publish: Sequence[str],
    subscribe: Sequence[str],
    not_before: dt.datetime,
    not_after: dt.datetime,
    domains: tuple[int, int] = DOMAINS,
) -> bytes:
    """The permissions document (UTF-8 XML) of ``enclave`` (its certificate is ``CN=<enclave>``).

    ``publish``/``subscribe``: DDS topic names or fnmatch patterns (``rt/spine/command``,
    ``rt/*``) it may write/read; everything else is denied. ``not_before``/``not_after``: the
    validity (UTC), normally its certificate's."""
    root = _root("permissions")
    grant = ET.SubElement(ET.SubElement(root, "permissions"), "grant", {"name": enclave})
    _text(grant, "subject_name", f"CN={enclave}")
    validity = ET.SubElement(grant, "validity")
    _text(validity, "not_before", _iso(not_before))
    _text(validity, "not_after", _iso(not_after))
    if publish or subscribe:
        rule = ET.SubElement(grant, "allow_rule")
        _domains(rule, domains)
        for tag, topics in (("publish", publish), ("subscribe", subscribe)):
            if topics:
                el = ET.SubElement(ET.SubElement(rule, tag), "topics")
                for t in sorted(set(topics)):
                    _text(el, "topic", t)
    _text(grant, "default", "DENY")
    return _bytes(root)
