"""Open a log, salvaging it when it cannot be opened as it is, and read its messages past damage.

``open_log`` opens rosbag2 (sqlite3, MCAP) folders or files and ROS 1 bags with ``rosbags``'
AnyReader. A log it cannot open as it is is read from a salvaged copy (``deploy.logs.salvage``):
an MCAP without its footer, a rosbag2 folder without ``metadata.yaml`` (its storage file is read
directly, with the topics' QoS profiles as the storage holds them), a ROS 1 bag without its
index. ``scan`` yields the messages of some connections in time order; a read error in the middle
(a chunk that does not decompress, a record cut or overwritten) skips the damaged stretch: it
resumes at the earliest later time that reads again, and says what was lost.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rosbags.highlevel import AnyReader

from deploy.logs import messages as m
from deploy.logs.errors import LogError
from deploy.logs.salvage import (
    Salvaged,
    is_ros1,
    mcap_file,
    read_storage_directly,
    salvage_mcap,
    salvage_ros1,
    salvage_sqlite,
    storage_without_metadata,
)

PROBE_NS = 1_000_000  # first step when looking for where a damaged stretch ends (doubles)
REFINE = 12  # bisection steps that narrow the stretch down once its end is found


@contextmanager
def open_log(path: Path, skipped: list[str]) -> Iterator[AnyReader]:
    """An open reader for ``path``; what salvaging it cost is appended to ``skipped``."""
    reader, salvaged = _open(Path(path), skipped)
    try:
        yield reader
    finally:
        reader.close()
        if salvaged is not None:
            shutil.rmtree(salvaged, ignore_errors=True)


def _open(path: Path, skipped: list[str]) -> tuple[AnyReader, Path | None]:
    if not path.exists():
        raise LogError(f"log {path}: no such file or folder")
    try:
        reader = AnyReader([path], default_typestore=m.TYPESTORE)
        reader.open()
        return reader, None
    except Exception as e:  # rosbags raises several types for unreadable files
        error = f"{type(e).__name__}: {e}"
    storage, mcap = storage_without_metadata(path), mcap_file(path)
    if storage is None and mcap is None and not is_ros1(path):
        raise LogError(f"log {path}: cannot open ({error})")
    salvaged = None
    try:
        salvaged = _salvage(path, storage, mcap)
        reader = AnyReader([salvaged.log or salvaged.folder], default_typestore=m.TYPESTORE)
        reader.open()
    except Exception as e2:
        if salvaged is not None and salvaged.folder is not None:
            shutil.rmtree(salvaged.folder, ignore_errors=True)
        raise LogError(
            f"log {path}: cannot open ({error}); salvaging failed too ({type(e2).__name__}: {e2})"
        ) from None
    if salvaged.recovered == 0:
        reader.close()
        if salvaged.folder is not None:
            shutil.rmtree(salvaged.folder, ignore_errors=True)
        raise LogError(f"log {path}: cannot open ({error}); no complete message to salvage")
    skipped.append(salvaged.note)
    return reader, salvaged.folder


def _salvage(path: Path, storage: Path | None, mcap: Path | None) -> Salvaged:
    """The readable copy (or the storage file itself) of a log that does not open as it is."""
    if storage is not None and storage.suffix == ".db3":
        return salvage_sqlite(storage)
    if storage is not None:  # an MCAP without metadata.yaml: as it is if its summary is whole
        try:
            return read_storage_directly(storage)
        except Exception:  # no footer either: salvage its complete records
            return salvage_mcap(storage)
    if mcap is not None:
        return salvage_mcap(mcap)
    return salvage_ros1(path)


def scan(reader: AnyReader, connections: Sequence[Any], skipped: list[str]) -> Iterator[tuple[Any, int, Any]]:
    """(connection, log time ns, raw payload) of ``connections`` in time order, past damage.

    On a read error the messages read so far are kept; reading resumes at the earliest later
    log time that reads again (the stretch in between is lost, and ``skipped`` says which and
    how many messages the log's index lists for it); with none, reading stops there.
    """
    if not connections:
        return
    expected = sum(c.msgcount for c in connections)
    origin = reader.start_time
    start, count, last, damaged = None, 0, None, False
    while True:
        try:
            for conn, t_ns, raw in reader.messages(connections=connections, start=start):
                count, last = count + 1, t_ns
                yield conn, t_ns, raw
            break
        except Exception as e:  # a damaged chunk or record: rosbags raises several types
            error, damaged = f"{type(e).__name__}: {e}", True
        failed = last if last is not None and (start is None or last >= start) else (start or origin)
        resume = _resume_after(reader, connections, failed)
        at = (failed - origin) / 1e9
        if resume is None:
            skipped.append(
                f"reading stopped after {count} of {expected} messages on the topics read: read error "
                f"at {at:.3f} s into the log ({error}); nothing after it reads; the rest is skipped"
            )
            return
        skipped.append(
            f"read error at {at:.3f} s into the log ({error}); the damaged stretch up to "
            f"{(resume - origin) / 1e9:.3f} s is skipped and reading resumed after it"
        )
        start = resume
    if damaged and count < expected:
        skipped.append(f"{expected - count} of {expected} messages on the topics read lost to read errors")


def _resume_after(reader: AnyReader, connections: Sequence[Any], failed: int) -> int | None:
    """The earliest start time after ``failed`` from which reading works again, or None if
    nothing after it reads: probes at doubling steps from ``PROBE_NS``, then ``REFINE``
    bisection steps between the last probe that failed and the first that read."""
    end = reader.end_time
    step, good = PROBE_NS, None
    while failed + step <= end:
        state = _probe(reader, connections, failed + step)
        if state is None:
            return None
        if state:
            good = failed + step
            break
        step *= 2
    if good is None:
        return None
    bad = failed + step // 2 if step > PROBE_NS else failed
    for _ in range(REFINE):
        mid = (bad + good) // 2
        if mid in (bad, good):
            break
        state = _probe(reader, connections, mid)
        if state:
            good = mid
        else:
            bad = mid
    return good


def _probe(reader: AnyReader, connections: Sequence[Any], start: int) -> bool | None:
    """Whether the first message from ``start`` reads (None: there is none)."""
    try:
        first = next(iter(reader.messages(connections=connections, start=start)), None)
    except Exception:  # still inside the damaged stretch
        return False
    return None if first is None else True
