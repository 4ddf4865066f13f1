"""The pieces ``DdsPort`` is built from: its readers and writers (with their incompatible-QoS
status) and its timers (ticks, overruns, an optional ``prepare`` hook before each deadline)."""

from __future__ import annotations

import ctypes as ct
from collections.abc import Callable
from typing import Any

from cyclonedds._clayer import ddspy_write
from cyclonedds.core import DDSException, ReadCondition
from cyclonedds.internal import dds_c_t
from cyclonedds.pub import DataWriter
from cyclonedds.sub import DataReader

from deploy.logs.messages import TYPESTORE
from ros_nodes.convert import to_idl
from ros_nodes.cyclone import _GET_OFFERED, _GET_REQUESTED, _POLICY_NAMES
from ros_nodes.port import Callback, QoS


class _Endpoint:
    """One of our readers or writers, with what its incompatible-QoS status was last seen at."""

    def __init__(
        self, entity: DataReader | DataWriter, topic: str, msgtype: str, qos: QoS, side: str
    ) -> None:
        self.entity, self.topic, self.msgtype, self.qos, self.side = entity, topic, msgtype, qos, side
        self.handled = 0  # incompatible-QoS total_count already reported
        self.pending_since_ns: int | None = None  # looking for the peer since

    def incompatible_status(self) -> tuple[int, str]:
        """(total count, last policy name) of the requested / offered incompatible QoS status."""
        if self.side == "subscription":
            status: Any = dds_c_t.requested_incompatible_qos_status()
            ret = _GET_REQUESTED(self.entity._ref, ct.byref(status))
        else:
            status = dds_c_t.offered_incompatible_qos_status()
            ret = _GET_OFFERED(self.entity._ref, ct.byref(status))
        if ret < 0:
            raise DDSException(ret, f"reading the incompatible-QoS status of {self.topic}")
        return status.total_count, _POLICY_NAMES.get(status.last_policy_id, str(status.last_policy_id))


class _Sub(_Endpoint):
    def __init__(
        self,
        reader: DataReader,
        cond: ReadCondition,
        topic: str,
        msgtype: str,
        qos: QoS,
        callback: Callback,
        cap: int,
    ) -> None:
        super().__init__(reader, topic, msgtype, qos, "subscription")
        self.reader, self.cond, self.callback, self.max_bytes = reader, cond, callback, cap


class _Writer:
    def __init__(self, writer: DataWriter, msgtype: str, wire: str) -> None:
        self.writer, self.msgtype, self.cdr = writer, msgtype, wire == "cdr"

    def publish(self, msg: Any) -> None:
        if not self.cdr:
            self.writer.write(to_idl(msg))
            return
        data = TYPESTORE.serialize_cdr(msg, self.msgtype).tobytes()
        data += b"\0" * (-len(data) % 4)  # what DataWriter.write does: pad to 4 bytes
        ret = ddspy_write(self.writer._ref, data)
        if ret < 0:
            raise DDSException(ret, f"writing {self.msgtype}")


class _Timer:
    def __init__(
        self,
        period_s: float,
        callback: Callable[[], None],
        start_ns: int,
        prepare: Callable[[], None] | None = None,
        prepare_s: float = 0.0,
    ) -> None:
        self.period_s = period_s
        self.period_ns = round(period_s * 1e9)
        self.callback = callback
        self.prepare, self.prepare_ns = prepare, round(prepare_s * 1e9)
        self.prepared_for = -1  # the deadline ``prepare`` last ran for
        self.next_ns = start_ns + self.period_ns
        self.ticks = 0
        self.overruns = 0
        self.last_lateness_ns = 0
        self.active = True

    def cancel(self) -> None:
        self.active = False

    def fire(self, now_ns: int) -> None:
        late = now_ns - self.next_ns
        self.last_lateness_ns = late
        missed = late // self.period_ns
        if missed >= 1:
            self.overruns += 1
        self.next_ns += self.period_ns * (1 + missed)
        self.ticks += 1
        self.callback()


def _wake_ns(t: _Timer) -> int:
    """When the executor must be awake for ``t``: its ``prepare`` time, else its deadline."""
    if t.prepare is not None and t.prepared_for != t.next_ns:
        return t.next_ns - t.prepare_ns
    return t.next_ns
