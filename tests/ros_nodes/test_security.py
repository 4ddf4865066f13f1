"""DDS Security as SROS2 does it, on real Cyclone DDS over loopback.

A keystore made by ``spine-keystore``; intruders publish robot commands, policy commands and
e-stop releases from their own processes (Cyclone applies one identity per domain per process):
no credentials, valid credentials without the permission, and a valid identity with permissions
it signed itself. The robot's reader (the sim-robot identity; the safety identity for the
e-stop) gets none of theirs, while the permitted identities' messages, sent at the same time,
arrive. Run as ``python -m tests.ros_nodes.test_security send ...`` it is the sender.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("cyclonedds")
pytest.importorskip("cryptography")

from deploy.logs import messages as m
from ros_nodes.dds import DdsPort
from ros_nodes.params import ParameterStore
from ros_nodes.port import LATCHED_QOS, QoS, command_qos
from ros_nodes.security import (
    ENCLAVE_FILES,
    EnclaveFileMissing,
    SecurityUnavailable,
    create_enclave,
    create_keystore,
    list_enclaves,
    plugin_dir,
)
from ros_nodes.security.cli import main as keystore_cli
from ros_nodes.security.policy import OPERATOR, node_enclave
from ros_nodes.stack import loopback_uri
from ros_nodes.topics import BOOL, TOPIC_ESTOP, bool_msg
from tests.ros_nodes.domains import fresh_domain

REPO = Path(__file__).resolve().parents[2]
CMD, POLICY = m.TOPIC_COMMAND, m.TOPIC_POLICY_CMD
BAD, GOOD = 666.0, 1.0  # command values: an intruder's, a permitted sender's
SEND_S = 5.0  # how long every sender publishes (s), at 50 Hz


def _qos(topic: str) -> QoS:
    """What the receiving node subscribes with (the sim robot: depth 1; safety: latched e-stop)."""
    return LATCHED_QOS if topic == TOPIC_ESTOP else QoS(depth=1)


def _msg(topic: str, bad: bool) -> object:
    if topic == TOPIC_ESTOP:
        return bool_msg(not bad)  # an intruder releases the e-stop, the operator raises it
    return m.float64_array([BAD if bad else GOOD] * 3)


def _type(topic: str) -> str:
    return BOOL if topic == TOPIC_ESTOP else m.FLOAT64_ARRAY


@pytest.fixture(scope="module")
def keystore(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ks = tmp_path_factory.mktemp("security") / "keystore"
    assert keystore_cli(["create", str(ks)]) == 0
    # valid credentials, allowed only to publish a goal: no command, no e-stop
    assert keystore_cli(["enclave", str(ks), "/intruder", "--publish", m.TOPIC_GOAL]) == 0
    return ks


@pytest.fixture(scope="module")
def forged(keystore: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The intruder's real identity, with governance and permissions (everything allowed) that
    it signed with a CA of its own."""
    own = create_keystore(tmp_path_factory.mktemp("forged") / "keystore")
    enc = create_enclave(own, "/intruder", ["rt/*"], ["rt/*"])
    real = keystore / "enclaves" / "intruder"
    for name in ("cert.pem", "key.pem", "identity_ca.cert.pem"):
        (enc / name).unlink()
        shutil.copyfile(real / name, enc / name)
    return enc


def _plugins() -> None:
    try:
        plugin_dir()
    except SecurityUnavailable as e:
        pytest.skip(str(e))


# --- the keystore ------------------------------------------------------------------------------
def test_layout_is_sros2s(keystore: Path) -> None:
    ks = keystore
    assert sorted(os.listdir(ks)) == ["enclaves", "private", "public"]
    roles = ("ca", "identity_ca", "permissions_ca")
    assert sorted(os.listdir(ks / "public")) == [f"{r}.cert.pem" for r in roles]
    assert sorted(os.listdir(ks / "private")) == [f"{r}.key.pem" for r in roles]
    assert {"governance.xml", "governance.p7s"} <= set(os.listdir(ks / "enclaves"))
    names = ["/intruder", OPERATOR, "/spine/policy", "/spine/recorder", "/spine/safety", "/spine/sim_robot"]
    assert list_enclaves(ks) == sorted(names)
    for name in names:
        d = ks / "enclaves" / name.lstrip("/")
        assert sorted(os.listdir(d)) == sorted(ENCLAVE_FILES), name
        for link in ("identity_ca.cert.pem", "permissions_ca.cert.pem", "governance.p7s"):
            assert (d / link).is_symlink() and not os.path.isabs(os.readlink(d / link)), (name, link)
        cert = subprocess.run(
            ["openssl", "x509", "-noout", "-subject", "-in", d / "cert.pem"], capture_output=True, text=True
        )
        if cert.returncode == 0:  # without openssl the names are checked by the DDS tests below
            assert cert.stdout.strip().replace(" ", "") == f"subject=CN={name}"
    assert node_enclave(ks, "spine_safety") == ks / "enclaves" / "spine" / "safety"


def _verify(signed: Path, ca: Path) -> subprocess.CompletedProcess:
    cmd = ["openssl", "smime", "-verify", "-text", "-in", str(signed), "-CAfile", str(ca)]
    return subprocess.run(cmd, capture_output=True)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_documents_are_signed_by_the_permissions_ca(keystore: Path, forged: Path, tmp_path: Path) -> None:
    ca = keystore / "public" / "permissions_ca.cert.pem"
    docs = [keystore / "enclaves" / "governance"]
    docs += [keystore / "enclaves" / n.lstrip("/") / "permissions" for n in list_enclaves(keystore)]
    for doc in docs:
        out = _verify(doc.with_suffix(".p7s"), ca)
        assert out.returncode == 0, (doc, out.stderr)
        assert out.stdout.replace(b"\r\n", b"\n") == doc.with_suffix(".xml").read_bytes()
    perms = (keystore / "enclaves" / "intruder" / "permissions.p7s").read_bytes()
    assert b"<topic>rt/spine/goal</topic>" in perms
    tampered = tmp_path / "tampered.p7s"
    tampered.write_bytes(perms.replace(b"<topic>rt/spine/goal</topic>", b"<topic>rt/spine/command</topic>"))
    assert _verify(tampered, ca).returncode != 0, "an edited permissions document must not verify"
    assert _verify(forged / "permissions.p7s", ca).returncode != 0, "another CA's signature must not verify"


def test_missing_enclave_file_is_named(keystore: Path, tmp_path: Path) -> None:
    enc = tmp_path / "safety"
    shutil.copytree(node_enclave(keystore, "spine_safety"), enc)
    for name in ("permissions.p7s", "key.pem"):
        (enc / name).unlink()
        with pytest.raises(EnclaveFileMissing, match=str(enc / name)):
            DdsPort("t", ParameterStore("t"), domain_id=fresh_domain(), enclave=enc)
        shutil.copyfile(node_enclave(keystore, "spine_safety") / name, enc / name)


# --- on the wire ---------------------------------------------------------------------------------
def _sender(domain: int, enclave: Path | None, topics: list[str], bad: bool) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "tests.ros_nodes.test_security", "send", "--domain", str(domain)]
    cmd += ["--enclave", str(enclave or ""), *(["--bad"] if bad else []), *topics]
    env = dict(os.environ, CYCLONEDDS_URI=loopback_uri(), PYTHONUNBUFFERED="1")
    out = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, "text": True}
    return subprocess.Popen(cmd, env=env, cwd=REPO, **out)


Senders = list[tuple[Path | None, bool]]


def _receive(
    monkeypatch: pytest.MonkeyPatch, receiver: Path, topics: list[str], senders: Senders
) -> tuple[dict[str, list[object]], list[str]]:
    """Start a port with the ``receiver`` enclave subscribed to ``topics``, then the senders
    (enclave, intruder?) each publishing all ``topics``; returns what arrived per topic and the
    senders' output."""
    monkeypatch.setenv("CYCLONEDDS_URI", loopback_uri())
    domain = fresh_domain()
    port = DdsPort("robot", ParameterStore("robot"), domain_id=domain, enclave=receiver)
    got: dict[str, list[object]] = {t: [] for t in topics}
    for t in topics:
        port.subscribe(t, _type(t), lambda msg, rx, t=t: got[t].append(msg), _qos(t))
    procs = [_sender(domain, enc, topics, bad) for enc, bad in senders]
    try:
        end = time.monotonic() + SEND_S + 8.0
        while time.monotonic() < end and any(p.poll() is None for p in procs):
            port.spin_for(0.1)
        port.spin_for(0.3)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        outs = [p.communicate()[0] for p in procs]
        port.close()
    return got, outs


def _values(msgs: list[object], topic: str) -> set[object]:
    if topic == TOPIC_ESTOP:
        return {bool(msg.data) for msg in msgs}
    return {float(msg.data[0]) for msg in msgs}


@pytest.mark.parametrize("intruder", ["no credentials", "no permission", "self-signed permissions"])
@pytest.mark.parametrize("receiver", ["spine_sim_robot", "spine_safety"])
def test_only_permitted_identities_reach_the_robot(
    keystore: Path, forged: Path, monkeypatch: pytest.MonkeyPatch, intruder: str, receiver: str
) -> None:
    _plugins()
    # the sim robot reads the robot and policy commands; the safety node the e-stop
    topics = [CMD, POLICY] if receiver == "spine_sim_robot" else [TOPIC_ESTOP]
    bad = {
        "no credentials": None,
        "no permission": keystore / "enclaves" / "intruder",
        "self-signed permissions": forged,
    }
    allowed = {CMD: "spine_safety", POLICY: "spine_policy", TOPIC_ESTOP: None}
    senders: Senders = [(bad[intruder], True)]
    for t in topics:  # the permitted identities, publishing at the same time
        owner = allowed[t]
        enc = node_enclave(keystore, owner) if owner else keystore / "enclaves" / OPERATOR.lstrip("/")
        senders.append((enc, False))
    got, outs = _receive(monkeypatch, node_enclave(keystore, receiver), topics, senders)
    intruder_log = outs[0]
    for t in topics:
        values = _values(got[t], t)
        good, evil = (True, False) if t == TOPIC_ESTOP else (GOOD, BAD)
        assert good in values, f"{t}: the permitted identity's messages did not arrive\n{outs[1:]}"
        assert evil not in values, f"{t}: the intruder ({intruder}) reached the robot\n{intruder_log}"
    if intruder == "no permission":  # its own participant already refuses to create the writers
        assert intruder_log.count("denied") == len(topics), intruder_log


# --- the sender ----------------------------------------------------------------------------------
def _send(argv: list[str]) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--domain", type=int, required=True)
    ap.add_argument("--enclave", default="")
    ap.add_argument("--bad", action="store_true")
    ap.add_argument("topics", nargs="+")
    args = ap.parse_args(argv)
    enclave = Path(args.enclave) if args.enclave else None
    port = DdsPort("sender", ParameterStore("sender"), domain_id=args.domain, enclave=enclave)
    pubs = {}
    for t in args.topics:
        qos = LATCHED_QOS if t == TOPIC_ESTOP else command_qos(0.02)
        try:
            pubs[t] = port.publisher(t, _type(t), qos)
        except Exception as e:  # DDSException: not allowed by security
            print(json.dumps({"topic": t, "denied": str(e)}), flush=True)
    end = time.monotonic() + SEND_S
    while time.monotonic() < end:
        for t, pub in pubs.items():
            pub.publish(_msg(t, args.bad))
        time.sleep(0.02)
    print(json.dumps({"sent": sorted(pubs)}), flush=True)
    return 0


if __name__ == "__main__" and sys.argv[1:2] == ["send"]:
    raise SystemExit(_send(sys.argv[2:]))
