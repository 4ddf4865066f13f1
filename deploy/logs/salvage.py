"""Recover the readable part of a log that a recorder left without its index (the recorder was
killed, the disk filled, the copy was cut short): an MCAP file without its summary and footer, or
a ROS 1 bag without its index (a ``.bag.active`` file, a truncated ``.bag``).

ROS 1: the bag is a sequence of records (header length, header fields, data length, data); the
connection and message records of every complete chunk (and the complete records of a cut
uncompressed chunk) are written again with ``rosbags``' ROS 1 writer, which builds a new index.

MCAP: the ``mcap`` package's stream reader walks the records before the break; they are copied
byte for byte to a temporary rosbag2 folder with a footer that says "no summary", plus a
``metadata.yaml`` built from the channels found; ``rosbags`` then reads that copy by scanning it.
Of a chunk cut by the break, the records held in full by the part of its data before the break
(decompressed as far as the cut frame goes) are kept; any other record cut by the break is lost,
and the note says so.
"""

from __future__ import annotations

import bz2
import io
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mcap.data_stream import ReadDataStream, RecordBuilder
from mcap.exceptions import EndOfFile, McapError
from mcap.opcode import Opcode
from mcap.records import Chunk, DataEnd, Footer
from mcap.stream_reader import StreamReader
from mcap.writer import MCAP0_MAGIC
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

    folder: Path
    recovered: int  # messages readable in the copy
    expected: int | None  # messages the original metadata.yaml lists, when it has one
    note: str
    log: Path | None = None  # what to open: the ROS 1 bag file; None: the rosbag2 folder


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
    topics = [(c.topic, c.msgtype, counts.get(c.id, 0)) for c in conns]
    count = getattr(stats, "message_count", 0)
    start, end = (stats.start_time, stats.end_time) if count else (0, 0)
    (folder / "metadata.yaml").write_text(_metadata(out.name, "mcap", topics, start, end))
    recovered = stats.message_count if stats else 0
    expected = _recorded_count(src)
    of = f" of the {expected} its metadata.yaml lists" if expected is not None else ""
    note = (
        f"{src}: no valid MCAP footer (truncated or never closed); recovered {recovered} messages{of} "
        f"from its complete records; the incomplete last record and the missing summary are skipped"
    )
    return Salvaged(folder, recovered, expected, note)


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


def _metadata(name: str, storage: str, topics: list[tuple[str, str, int]], start: int, end: int) -> str:
    """A rosbag2 ``metadata.yaml`` for one storage file; ``topics``: (name, type, messages)."""
    rows = "".join(
        f"  - message_count: {count}\n"
        f"    topic_metadata:\n"
        f"      name: {topic}\n"
        f"      offered_qos_profiles: []\n"
        f"      serialization_format: cdr\n"
        f"      type: {msgtype}\n"
        f"      type_description_hash: ''\n"
        for topic, msgtype, count in topics
    )
    return (
        "rosbag2_bagfile_information:\n"
        "  compression_format: ''\n"
        "  compression_mode: ''\n"
        f"  duration: {{nanoseconds: {max(0, end - start)}}}\n"
        f"  message_count: {sum(t[2] for t in topics)}\n"
        f"  relative_file_paths: [{name}]\n"
        f"  starting_time: {{nanoseconds_since_epoch: {start}}}\n"
        f"  storage_identifier: {storage}\n"
        f"  topics_with_message_count:{chr(10) + rows if rows else ' []' + chr(10)}"
        "  version: 9\n"
    )


def sqlite_without_metadata(path: Path) -> Path | None:
    """The ``.db3`` of a rosbag2 folder that has one and no ``metadata.yaml``, else None."""
    if not path.is_dir() or (path / "metadata.yaml").exists():
        return None
    files = sorted(path.glob("*.db3"))
    return files[0] if len(files) == 1 else None


def salvage_sqlite(db: Path, workdir: Path | None = None) -> Salvaged:
    """A readable folder for a sqlite3 rosbag2 whose recorder never wrote ``metadata.yaml``:
    the metadata is rebuilt from the database's ``topics`` and ``messages`` tables."""
    import sqlite3

    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        names = {i: (n, t) for i, n, t in con.execute("SELECT id, name, type FROM topics")}
        rows = con.execute(
            "SELECT topic_id, COUNT(*), MIN(timestamp), MAX(timestamp) FROM messages GROUP BY topic_id"
        ).fetchall()
    finally:
        con.close()
    counts = {tid: n for tid, n, _, _ in rows}
    topics = [(n, t, counts.get(i, 0)) for i, (n, t) in sorted(names.items())]
    start = min((r[2] for r in rows), default=0)
    end = max((r[3] for r in rows), default=0)
    folder = Path(tempfile.mkdtemp(prefix="spine_salvage_", dir=workdir))
    (folder / db.name).symlink_to(db.resolve())
    (folder / "metadata.yaml").write_text(_metadata(db.name, "sqlite3", topics, start, end))
    total = sum(counts.values())
    note = (
        f"{db.parent}: no metadata.yaml (the recorder never closed the bag); rebuilt it from "
        f"{db.name} ({total} messages)"
    )
    return Salvaged(folder, total, None, note)


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
