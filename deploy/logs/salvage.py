"""Recover the readable part of a log that a recorder left without its index (the recorder was
killed, the disk filled, the copy was cut short): an MCAP file without its summary and footer, a
rosbag2 folder without ``metadata.yaml``, or a ROS 1 bag without its index (a ``.bag.active``
file, a truncated ``.bag``).

ROS 1: the bag is a sequence of records (header length, header fields, data length, data); the
connection and message records of every complete chunk (and the complete records of a cut
uncompressed chunk) are written again with ``rosbags``' ROS 1 writer, which builds a new index.

MCAP: the ``mcap`` package's stream reader walks the records before the break; they are copied
byte for byte to a temporary rosbag2 folder with a footer that says "no summary", plus a
``metadata.yaml`` built from the channels found (types, QoS profiles and type hashes as the
channels hold them); ``rosbags`` then reads that copy by scanning it.
Of a chunk cut by the break, the records held in full by the part of its data before the break
(decompressed as far as the cut frame goes) are kept; any other record cut by the break is lost,
and the note says so.

rosbag2 folder without ``metadata.yaml`` (the recorder was killed before closing the bag): its
storage file is read directly by ``rosbags``, which takes topics, QoS profiles and definitions
from the file itself (a sqlite3 write-ahead log beside it is merged into a copy first; an MCAP
without its footer is salvaged as above).
"""

from __future__ import annotations

import bz2
import io
import shutil
import struct
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mcap.data_stream import ReadDataStream, RecordBuilder
from mcap.exceptions import EndOfFile, McapError
from mcap.opcode import Opcode
from mcap.records import Chunk, DataEnd, Footer
from mcap.stream_reader import StreamReader
from mcap.writer import MCAP0_MAGIC
from rosbags.interfaces import Connection
from rosbags.rosbag1 import Writer as Ros1Writer
from rosbags.rosbag2.storage_mcap import McapReader

MAGIC = MCAP0_MAGIC
ROS1_MAGIC = b"#ROSBAG V2.0\n"
# what the mcap reader raises on a record that is cut or malformed (struct, UnicodeDecodeError)
_BROKEN = (McapError, struct.error, ValueError)


def _no_summary_footer() -> bytes:
    """A footer record that says "no summary section", and the closing magic."""
    out = RecordBuilder()
    Footer(summary_start=0, summary_offset_start=0, summary_crc=0).write(out)
    return out.end() + MAGIC


_FOOTER = _no_summary_footer()


@dataclass(frozen=True)
class Salvaged:
    """A readable copy of a damaged log: the rosbag2 folder and what was lost."""

    folder: Path | None  # temporary folder to remove when done (None: nothing was copied)
    recovered: int  # messages readable in the copy
    expected: int | None  # messages the original metadata.yaml lists, when it has one
    note: str
    log: Path | None = None  # what to open: a bag or storage file; None: the rosbag2 folder


def mcap_file(path: Path) -> Path | None:
    """The MCAP file of ``path`` (a ``.mcap`` file or a rosbag2 folder holding one), else None."""
    if path.is_file():
        return path if path.read_bytes()[:8] == MAGIC else None
    files = sorted(path.glob("*.mcap")) if path.is_dir() else []
    return files[0] if len(files) == 1 else None


def salvage_mcap(src: Path, workdir: Path | None = None) -> Salvaged:
    """Copy the complete records of ``src`` into a readable rosbag2 folder (under ``workdir``)."""
    data = src.read_bytes()
    if data[:8] != MAGIC:
        raise ValueError(f"{src}: not an MCAP file (bad magic)")
    pos = _complete(data, 8)
    tail = _chunk_records(data, pos)  # the complete records inside a chunk cut by the break
    folder = Path(tempfile.mkdtemp(prefix="spine_salvage_", dir=workdir))
    out = folder / src.name
    out.write_bytes(data[:pos] + tail + _FOOTER)
    reader = McapReader(out)
    reader.open()
    try:
        conns, stats = list(reader.connections), reader.statistics
    finally:
        reader.close()
    counts = stats.channel_message_counts if stats else {}
    count = getattr(stats, "message_count", 0)
    start, end = (stats.start_time, stats.end_time) if count else (0, 0)
    (folder / "metadata.yaml").write_text(_metadata(out.name, "mcap", conns, counts, start, end))
    recovered = stats.message_count if stats else 0
    expected = _recorded_count(src)
    of = f" of the {expected} its metadata.yaml lists" if expected is not None else ""
    note = (
        f"{src}: no valid MCAP footer (truncated or never closed); recovered {recovered} messages{of} "
        f"from its complete records; the incomplete last record and the missing summary are skipped"
    )
    return Salvaged(folder, recovered, expected, note, out)


class _Exact(io.BytesIO):
    """Bytes whose reads return all the bytes asked for or raise ``EndOfFile``: the mcap reader,
    which takes a short read as the rest of a field, then never yields a record that is cut."""

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        if size is None or size < 0 or len(data) < size:
            raise EndOfFile()
        return data


def _complete(data: bytes, pos: int) -> int:
    """Offset after the last complete record from ``pos``, as the mcap stream reader finds them
    (it stops at the data end record, a footer, or a record that is cut or malformed)."""
    stream = _Exact(data)
    stream.seek(pos)
    try:
        for record in StreamReader(stream, skip_magic=True, emit_chunks=True).records:
            if isinstance(record, (DataEnd, Footer)):
                break
            pos = stream.tell()
    except _BROKEN:  # the break: what was read so far is kept
        pass
    return pos


def _chunk_records(data: bytes, pos: int) -> bytes:
    """If a chunk record starts at ``pos`` and is cut, its complete inner records (else b"")."""
    if data[pos : pos + 1] != bytes([Opcode.CHUNK]):
        return b""
    try:  # mcap's chunk parser takes a cut chunk's data as far as it goes
        chunk = Chunk.read(ReadDataStream(io.BytesIO(data[pos + 9 :])))
    except _BROKEN:  # cut inside the chunk's header fields
        return b""
    raw = _decompressed_prefix(chunk.compression, chunk.data)
    return raw[: _complete(raw, 0)]


def _decompressed_prefix(compression: str, data: bytes) -> bytes:
    """What the start of a cut compressed frame decodes to (the mcap reader decodes whole chunks
    only); b"" for an unknown compression or a frame that does not decode at all."""
    try:
        if compression == "":
            return data
        if compression == "zstd":
            import zstandard

            return zstandard.ZstdDecompressor().decompressobj().decompress(data)
        if compression == "lz4":
            import lz4.frame

            return lz4.frame.LZ4FrameDecompressor().decompress(data)
    except Exception:  # a cut compressed frame may not decode at all: nothing to recover
        return b""
    return b""


def _recorded_count(src: Path) -> int | None:
    """``message_count`` of the rosbag2 ``metadata.yaml`` beside ``src``, if there is one."""
    meta = src.parent / "metadata.yaml"
    if not meta.is_file():
        return None
    try:
        from ruamel.yaml import YAML

        info = YAML(typ="safe").load(meta.read_text())["rosbag2_bagfile_information"]
        return int(info["message_count"])
    except Exception:  # a damaged metadata.yaml only costs us the expected count
        return None


def _metadata(
    name: str, storage: str, conns: Sequence[Connection], counts: dict[int, int], start: int, end: int
) -> str:
    """A rosbag2 ``metadata.yaml`` (version 9) for one storage file, with each connection's type,
    offered QoS profiles and type hash as the storage file holds them: rosbags matches the
    metadata's topics to the storage's on all three, so a topic whose QoS differed would read empty."""
    from io import StringIO

    from rosbags.rosbag2.metadata import dump_qos_v9
    from ruamel.yaml import YAML

    topics = [
        {
            "message_count": counts.get(c.id, 0),
            "topic_metadata": {
                "name": c.topic,
                "offered_qos_profiles": dump_qos_v9(list(c.ext.offered_qos_profiles)),
                "serialization_format": c.ext.serialization_format,
                "type": c.msgtype,
                "type_description_hash": c.digest or "",
            },
        }
        for c in conns
    ]
    info = {
        "compression_format": "",
        "compression_mode": "",
        "duration": {"nanoseconds": max(0, end - start)},
        "message_count": sum(t["message_count"] for t in topics),
        "relative_file_paths": [name],
        "starting_time": {"nanoseconds_since_epoch": start},
        "storage_identifier": storage,
        "topics_with_message_count": topics,
        "version": 9,
    }
    out = StringIO()
    YAML(typ="safe").dump({"rosbag2_bagfile_information": info}, out)
    return out.getvalue()


def storage_without_metadata(path: Path) -> Path | None:
    """The one storage file (``.db3`` or ``.mcap``) of a rosbag2 folder without ``metadata.yaml``
    (the recorder was killed before closing the bag), else None."""
    if not path.is_dir() or (path / "metadata.yaml").exists():
        return None
    files = sorted(path.glob("*.db3")) + sorted(path.glob("*.mcap"))
    return files[0] if len(files) == 1 else None


def salvage_sqlite(db: Path, workdir: Path | None = None) -> Salvaged:
    """A sqlite3 rosbag2 whose recorder never wrote ``metadata.yaml``, made readable.

    ``rosbags`` reads the ``.db3`` file itself, with each topic's type, serialization format,
    offered QoS profiles (ROS 2 Humble: integer enums; Jazzy: names) and, from Iron on, message
    definitions as the database's own tables hold them; a ``metadata.yaml`` rebuilt from other
    values would not match them. A write-ahead log beside the database (``-wal``: the
    ``resilient`` storage preset of a recorder that was killed) holds the latest messages; it is
    merged into a copy first (``rosbags`` opens databases immutable, which ignores it).
    """
    import sqlite3

    folder, source, merged = None, db, ""
    wal = db.with_name(db.name + "-wal")
    if wal.is_file() and wal.stat().st_size:
        folder = Path(tempfile.mkdtemp(prefix="spine_salvage_", dir=workdir))
        source = folder / db.name
        shutil.copyfile(db, source)
        shutil.copyfile(wal, folder / wal.name)
        con = sqlite3.connect(source)
        try:
            con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            con.close()
        merged = f"; merged its write-ahead log {wal.name} into a copy"
    con = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        (total,) = con.execute("SELECT COUNT(*) FROM messages").fetchone()
        (topics,) = con.execute("SELECT COUNT(*) FROM topics").fetchone()
    finally:
        con.close()
    note = (
        f"{db.parent}: no metadata.yaml (the recorder never closed the bag); read {db.name} directly "
        f"({total} messages on {topics} topics, types and QoS profiles from its own tables){merged}"
    )
    return Salvaged(folder, int(total), None, note, source)


def read_storage_directly(path: Path) -> Salvaged:
    """An intact MCAP file in a rosbag2 folder without ``metadata.yaml``: read as it is
    (``rosbags`` reads a ``.mcap`` file's channels, QoS profiles and schemas from the file)."""
    from rosbags.rosbag2 import Reader

    with Reader(path) as reader:
        total = reader.message_count
    note = (
        f"{path.parent}: no metadata.yaml (the recorder never closed the bag, or it was lost); "
        f"read {path.name} directly ({total} messages, from its own summary)"
    )
    return Salvaged(None, total, None, note, path)


def is_ros1(path: Path) -> bool:
    """``path`` is a file that starts like a ROS 1 bag (v2.0)."""
    if not path.is_file():
        return False
    with path.open("rb") as f:
        return f.read(len(ROS1_MAGIC)) == ROS1_MAGIC


def salvage_ros1(src: Path, workdir: Path | None = None) -> Salvaged:
    """Rewrite the complete connection and message records of ``src`` into a new, indexed bag."""
    data = src.read_bytes()
    conns: dict[int, dict[str, bytes]] = {}
    messages: list[tuple[int, int, bytes]] = []  # (connection id, time ns, payload)
    lost_chunks, read_to, cut = 0, len(ROS1_MAGIC), "a record whose header is cut"
    for op, header, body, complete, end in _ros1_records(data, len(ROS1_MAGIC)):
        read_to = end if complete else read_to
        if not complete:
            cut = "a chunk; its complete messages are kept" if op == 0x05 else f"a record (op {op:#04x})"
        if op == 0x05:  # chunk
            raw = _ros1_chunk(header, body, complete)
            if raw is None:
                lost_chunks += 1
                continue
            for op2, h2, b2, ok2, _ in _ros1_records(raw, 0):
                if ok2:
                    _ros1_keep(op2, h2, b2, conns, messages)
        elif complete:
            _ros1_keep(op, header, body, conns, messages)
    folder = Path(tempfile.mkdtemp(prefix="spine_salvage_", dir=workdir))
    out = folder / (src.name.removesuffix(".active").removesuffix(".bag") + ".bag")
    with Ros1Writer(out) as w:
        written = {}
        for cid, fields in sorted(conns.items()):
            pkg, _, name = fields["type"].decode().partition("/")
            written[cid] = w.add_connection(
                fields["topic"].decode(),
                f"{pkg}/msg/{name}",
                msgdef=fields["message_definition"].decode(),
                md5sum=fields["md5sum"].decode(),
            )
        kept = 0
        for cid, t_ns, payload in sorted(messages, key=lambda x: x[1]):
            if cid in written:
                w.write(written[cid], t_ns, payload)
                kept += 1
    note = (
        f"{src}: ROS 1 bag without a readable index (truncated or never closed); recovered {kept} "
        f"messages from its complete records and rewrote them with a new index; the last "
        f"{len(data) - read_to} bytes hold a cut record: "
        + ("a compressed chunk of messages, skipped" if lost_chunks else cut)
    )
    return Salvaged(folder, kept, None, note, out)


def _ros1_records(data: bytes, pos: int):
    """(op, header fields, data, complete, end offset) of each record from ``pos``; the last may
    be cut (``complete`` False; a record whose header is cut is not yielded)."""
    u32 = struct.Struct("<I").unpack_from
    while pos + 4 <= len(data):
        (hlen,) = u32(data, pos)
        if pos + 8 + hlen > len(data):
            return
        header = _ros1_fields(data[pos + 4 : pos + 4 + hlen])
        (dlen,) = u32(data, pos + 4 + hlen)
        start = pos + 8 + hlen
        body = data[start : start + dlen]
        op = header.get("op", b"\x00")[0]
        yield op, header, body, len(body) == dlen, start + dlen
        pos = start + dlen


def _ros1_fields(raw: bytes) -> dict[str, bytes]:
    fields, pos = {}, 0
    while pos + 4 <= len(raw):
        (n,) = struct.unpack_from("<I", raw, pos)
        name, _, value = raw[pos + 4 : pos + 4 + n].partition(b"=")
        fields[name.decode(errors="replace")] = value
        pos += 4 + n
    return fields


def _ros1_chunk(header: dict[str, bytes], body: bytes, complete: bool) -> bytes | None:
    """A chunk's records: decompressed when complete; as far as they go when uncompressed."""
    compression = header.get("compression", b"none").decode()
    if compression == "none":
        return body
    if not complete:
        return None
    try:
        if compression == "bz2":
            return bz2.decompress(body)
        if compression == "lz4":
            import lz4.frame

            return lz4.frame.decompress(body)
    except Exception:  # a damaged compressed chunk: its messages are lost
        return None
    return None


def _ros1_keep(
    op: int, header: dict[str, bytes], body: bytes, conns: dict[int, dict[str, bytes]], out: list
) -> None:
    if op == 0x07:  # connection: the data holds topic, type, md5sum, message_definition
        cid = struct.unpack("<I", header["conn"])[0]
        conns.setdefault(cid, _ros1_fields(body))
    elif op == 0x02:  # message data
        cid = struct.unpack("<I", header["conn"])[0]
        sec, nsec = struct.unpack("<II", header["time"])
        out.append((cid, sec * 1_000_000_000 + nsec, body))
