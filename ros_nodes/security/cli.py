"""``spine-keystore``: make a DDS Security keystore for Spine's nodes, and more enclaves.

    spine-keystore create KEYSTORE [--command-topic /forward_position_controller/commands]
    spine-keystore enclave KEYSTORE /spine/operator2 --publish /spine/estop --subscribe /diagnostics
    spine-keystore list KEYSTORE

Topics are ROS names (``/spine/estop``); the permissions carry their DDS names (``rt/...``).
The layout is SROS2's, so ``ROS_SECURITY_KEYSTORE=KEYSTORE`` works for ROS 2 nodes too.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from ros_nodes.security import documents
from ros_nodes.security.keystore import KeystoreError, list_enclaves
from ros_nodes.security.policy import Grant, create_spine_keystore, make_grant, spine_grants


def _domains(text: str) -> tuple[int, int]:
    lo, _, hi = text.partition("-")
    return int(lo), int(hi or lo)


def _table(grants: Sequence[Grant]) -> str:
    rows = [f"  {g.enclave:<20} publish: {', '.join(g.publish) or '-'}" for g in grants]
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="spine-keystore", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("create", help="a new keystore with the enclaves of Spine's nodes and the operator")
    c.add_argument("keystore", type=Path)
    c.add_argument("--command-topic", default=None, help="the robot command topic if remapped")
    e = sub.add_parser("enclave", help="one more enclave (identity + permissions) in a keystore")
    e.add_argument("keystore", type=Path)
    e.add_argument("enclave", help="absolute ROS name, e.g. /spine/operator2")
    e.add_argument("--publish", nargs="*", default=[], metavar="TOPIC", help="ROS topics it may write")
    e.add_argument("--subscribe", nargs="*", default=[], metavar="TOPIC", help="ROS topics it may read")
    ls = sub.add_parser("list", help="the enclaves in a keystore")
    ls.add_argument("keystore", type=Path)
    for p in (c, e):
        p.add_argument(
            "--domains",
            type=_domains,
            default=documents.DOMAINS,
            help="domain ids MIN-MAX (or one id) the documents cover (default 0-230)",
        )
    args = ap.parse_args(argv)
    try:
        if args.cmd == "create":
            kw = {"command_topic": args.command_topic} if args.command_topic else {}
            dirs = create_spine_keystore(args.keystore, domains=args.domains, **kw)
            print(f"keystore {args.keystore}: {len(dirs)} enclaves")
            print(_table(spine_grants(**kw)))
        elif args.cmd == "enclave":
            grant = Grant(args.enclave, tuple(args.publish), tuple(args.subscribe))
            print(make_grant(args.keystore, grant, args.domains))
        else:
            print("\n".join(list_enclaves(args.keystore)))
    except (KeystoreError, ValueError) as err:
        ap.exit(2, f"spine-keystore: error: {err}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
