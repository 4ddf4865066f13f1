"""Salvage of a cut MCAP written by someone else: the ``mcap`` package's own Writer (uncompressed,
zstd and lz4 chunks, and no chunks) writes the file, which is cut at chosen byte offsets (inside a
chunk's header, mid-chunk, mid-message, right after a complete chunk) and at a sweep of offsets.
The salvaged copy must hold exactly the first messages of the intact file, as mcap's own reader
reads them, whose records were complete; salvage never raises, and its note says how many
messages it kept of how many."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from mcap.reader import make_reader
from mcap.records import Chunk, MessageIndex
from mcap.stream_reader import StreamReader
from mcap.writer import CompressionType, Writer
from rosbags.rosbag2 import Reader

from deploy.logs.salvage import Salvaged, salvage_mcap

N = 600
TOPICS = ("/arm/joint_states", "/arm/command")
CHUNK_FIELDS = 8 + 8 + 8 + 4 + 4 + 8  # a chunk record before its data: times, size, crc, name, length
HEADER_END = 8 + 9 + 4 + len("ros2") + 4 + len("test")  # magic and header record (profile, library)


@dataclass(frozen=True)
class Written:
    """An intact MCAP and what its writer and mcap's reader say about it."""

    data: bytes
    messages: list[tuple[str, int, bytes]]  # (topic, log time, payload) as mcap's reader reads them
    chunks: list[tuple[int, int, int]]  # (start offset, end offset, messages), from the chunk index
    message_ends: list[int]  # file offset after each message's record; uncompressed files only


def _payload(i: int, pad: int) -> bytes:
    """A CDR ``std_msgs/String`` of varying length, with ``pad`` more bytes of text."""
    text = (f"message {i} " + "x" * (i % 41) + "".join(chr(97 + (i * j) % 26) for j in range(pad))).encode()
    return b"\0\1\0\0" + (len(text) + 1).to_bytes(4, "little") + text + b"\0"


def _write(
    path: Path, compression: CompressionType, chunked: bool = True, pad: int = 0, chunk_size: int = 3000
) -> Written:
    """``N`` messages on two channels, written by the ``mcap`` package's Writer in ``chunk_size``
    chunks, and a rosbag2 ``metadata.yaml`` beside them: the file is a copy cut short, not its metadata."""
    flushed: list[int] = []  # unchunked: each message record is written as it comes
    with path.open("wb") as f:
        w = Writer(f, chunk_size=chunk_size, compression=compression, use_chunking=chunked)
        w.start(profile="ros2", library="test")
        schema = w.register_schema("std_msgs/msg/String", "ros2msg", b"string data")
        channels = [w.register_channel(t, "cdr", schema) for t in TOPICS]
        for i in range(N):
            w.add_message(channels[i % 2], 1_000_000 + i, _payload(i, pad), 1_000_000 + i, sequence=i)
            flushed.append(f.tell())
        w.finish()
    (path.parent / "metadata.yaml").write_text(f"rosbag2_bagfile_information:\n  message_count: {N}\n")
    with path.open("rb") as f:
        reader = make_reader(f)
        messages = [(c.topic, m.log_time, m.data) for _, c, m in reader.iter_messages()]
        summary = reader.get_summary()
    assert summary is not None and [m[1] for m in messages] == list(range(1_000_000, 1_000_000 + N))
    index = sorted(summary.chunk_indexes, key=lambda ci: ci.chunk_start_offset)
    chunks = [
        (
            ci.chunk_start_offset,
            ci.chunk_start_offset + ci.chunk_length,
            ci.message_end_time - ci.message_start_time + 1,
        )
        for ci in index
    ]
    ends = flushed if not chunked else []
    if chunked and compression == CompressionType.NONE:  # message records lie in the file as written
        ends = [0] * N
        with path.open("rb") as f:
            seen = -1
            for rec in StreamReader(f, emit_chunks=True).records:  # a chunk's message indexes follow it
                seen += isinstance(rec, Chunk)
                if isinstance(rec, MessageIndex):  # offsets of the records in the chunk's data
                    data_at = index[seen].chunk_start_offset + 9 + CHUNK_FIELDS
                    for t, offset in rec.records:
                        ends[t - 1_000_000] = data_at + offset + 9 + 22 + len(messages[t - 1_000_000][2])
    return Written(path.read_bytes(), messages, chunks, ends)


def _salvage(written: Written, folder: Path, cut: int) -> tuple[Salvaged, list[tuple[str, int, bytes]]]:
    """Salvage the file cut at ``cut`` bytes: the result and the messages rosbags reads from the copy."""
    (folder / "log.mcap").write_bytes(written.data[:cut])
    s = salvage_mcap(folder / "log.mcap", folder)
    with Reader(s.folder) as r:
        got = [(c.topic, t, bytes(raw)) for c, t, raw in r.messages()]
    shutil.rmtree(s.folder)
    return s, got


def _check(s: Salvaged, got: list[tuple[str, int, bytes]], written: Written, n: int) -> None:
    """The copy holds exactly the first ``n`` messages, and the note says what was kept and lost."""
    assert got == written.messages[:n]
    assert s.recovered == n and s.expected == N
    assert f"recovered {n} messages of the {N} its metadata.yaml lists" in s.note
    assert "no valid MCAP footer" in s.note and "the incomplete last record" in s.note


def _in_chunks_before(written: Written, cut: int) -> int:
    """Messages in the chunks that end at or before ``cut``."""
    return sum(n for _, end, n in written.chunks if end <= cut)


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "unchunked"])
def test_uncompressed_cut_keeps_exactly_the_complete_message_records(tmp_path: Path, chunked: bool) -> None:
    written = _write(tmp_path / "intact.mcap", CompressionType.NONE, chunked)
    assert len(written.chunks) > 5 if chunked else not written.chunks
    k = 300
    cuts = [written.message_ends[k] - 5, written.message_ends[k], written.message_ends[k] + 1]  # mid-message
    if chunked:
        start, end, _ = written.chunks[3]
        cuts += [start + 20, start + 9 + CHUNK_FIELDS + 3, (start + end) // 2, end - 1, end]
    for cut in [*cuts, *range(HEADER_END, len(written.data), 1009)]:
        s, got = _salvage(written, tmp_path, cut)
        _check(s, got, written, sum(e <= cut for e in written.message_ends))


@pytest.mark.parametrize("compression", [CompressionType.ZSTD, CompressionType.LZ4])
def test_compressed_cut_keeps_the_complete_chunks(tmp_path: Path, compression: CompressionType) -> None:
    written = _write(tmp_path / "intact.mcap", compression)
    assert len(written.chunks) > 5
    for (start, end, _), (next_start, _, _) in zip(written.chunks, written.chunks[1:], strict=False):
        for cut in (start + 20, (start + end) // 2, end, next_start, next_start + 1):
            s, got = _salvage(written, tmp_path, cut)
            _check(s, got, written, _in_chunks_before(written, cut))  # a 3 kB chunk: one block
        s, got = _salvage(written, tmp_path, end - 1)  # lz4 then lacks only its end mark
        assert _in_chunks_before(written, end - 1) <= s.recovered <= _in_chunks_before(written, end)
        _check(s, got, written, s.recovered)


def test_a_cut_zstd_chunk_keeps_the_messages_of_its_complete_blocks(tmp_path: Path) -> None:
    written = _write(tmp_path / "intact.mcap", CompressionType.ZSTD, pad=1500, chunk_size=1 << 22)
    ((start, end, n),) = written.chunks  # ~1 MB of messages: zstd blocks of up to 128 KiB
    kept = []
    for cut in (start + 100, (start + end) // 2, end - 1, end):
        s, got = _salvage(written, tmp_path, cut)
        _check(s, got, written, s.recovered)  # the first messages of the file, said in the note
        kept.append(s.recovered)
    assert kept[0] == 0 and 0 < kept[1] < kept[2] < n and kept[3] == n, kept


@pytest.mark.parametrize("compression", [CompressionType.NONE, CompressionType.ZSTD, CompressionType.LZ4])
def test_salvage_never_raises_and_keeps_more_as_the_cut_moves_on(
    tmp_path: Path, compression: CompressionType
) -> None:
    written = _write(tmp_path / "intact.mcap", compression)
    kept = []
    for cut in [*range(HEADER_END, len(written.data), 211), len(written.data)]:
        (tmp_path / "log.mcap").write_bytes(written.data[:cut])
        s = salvage_mcap(tmp_path / "log.mcap", tmp_path)  # a cut inside the header leaves nothing
        shutil.rmtree(s.folder)
        assert _in_chunks_before(written, cut) <= s.recovered and s.expected == N
        kept.append(s.recovered)
    assert kept == sorted(kept) and kept[0] == 0 and kept[-1] == N
