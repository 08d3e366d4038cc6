"""Read an offline W&B run's transaction log (run-<id>.wandb) back, for tests.

The file is a 7-byte header (":W&B", magic, version) followed by LevelDB-log framed records
(32 KiB blocks; each chunk: crc32 (4), length (2, little-endian), type (1: full, 2: first,
3: middle, 4: last)) holding `wandb_internal_pb2.Record` protobufs.
"""

import json
import struct
import time

BLOCK = 32 * 1024
HEADER = 7


def _written(path, timeout: float = 60.0) -> bytes:
    """The log's bytes once W&B's service has finished writing it: `wandb.finish()` can return while
    the service still flushes the last records (a read then met a half-written record), so wait
    until the file has stopped growing and its last chunk is whole."""
    deadline, last = time.monotonic() + timeout, None
    while True:
        data = open(path, "rb").read()
        if data == last and _complete(data) or time.monotonic() > deadline:
            return data
        last = data
        time.sleep(0.5)


def _complete(data: bytes) -> bool:
    pos = HEADER
    while pos + 7 <= len(data):
        left = BLOCK - pos % BLOCK
        if left < 7:
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if kind == 0 and length == 0:
            return True
        if pos + 7 + length > len(data):  # the last chunk is cut short: still being written
            return False
        pos += 7 + length
    return not data[pos:].strip(b"\0")


def records(path):
    from wandb.proto import wandb_internal_pb2 as pb

    data = _written(path)
    assert data[:4] == b":W&B", "not a W&B transaction log"
    pos, pending = HEADER, b""
    while pos + 7 <= len(data):
        left = BLOCK - pos % BLOCK
        if left < 7:  # block trailer
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        chunk = data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind == 0 and length == 0:
            break
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            rec = pb.Record()
            rec.ParseFromString(pending)
            yield rec


def summary(path):
    """The run's final summary: the last value of every key set by summary updates and history."""
    out = {}
    for rec in records(path):
        kind = rec.WhichOneof("record_type")
        items = rec.summary.update if kind == "summary" else rec.history.item if kind == "history" else []
        for item in items:
            key = item.key or "/".join(item.nested_key)
            out[key] = json.loads(item.value_json)
    return out


def run_record(path):
    """The run's own record: project, group, job type, tags, config."""
    for rec in records(path):
        if rec.WhichOneof("record_type") == "run":
            return rec.run
    return None
