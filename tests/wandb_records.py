"""Read an offline W&B run's transaction log (run-<id>.wandb) back, for tests.

The file is a 7-byte header (":W&B", magic, version) followed by LevelDB-log framed records
(32 KiB blocks; each chunk: crc32 (4), length (2, little-endian), type (1: full, 2: first,
3: middle, 4: last)) holding `wandb_internal_pb2.Record` protobufs.
"""

import json
import struct

BLOCK = 32 * 1024
HEADER = 7


def records(path):
    from wandb.proto import wandb_internal_pb2 as pb

    data = open(path, "rb").read()
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
