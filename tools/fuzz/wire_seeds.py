#!/usr/bin/env python3
"""Writes the wire target's seed corpus (tools/fuzz/corpus/wire/): real messages as docs/protocol.md
describes them — the 40-byte header (CRC-32C of the payload) and the payload: control messages'
JSON, shards in each codec (fp32/bf16: byte planes, the top one as an LZ4 block), a gradient push's
16-byte contribution figures after its shard."""
import json, os, struct, sys

VERSION = 4   # WireHeader.version
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "wire")

def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF

def header(mtype, codec, payload, epoch=1, step=0, partition=0, slot=0, count=0):
    return struct.pack("<IHBBIQIIIII", 0x53435250, VERSION, mtype, codec, epoch, step, partition, slot, count,
                       len(payload), crc32c(payload))

def lz4_literals(data):
    """One LZ4 block holding `data` as literals only (a valid block, uncompressed)."""
    n = len(data)
    out = bytearray([min(n, 15) << 4])
    if n >= 15:
        rest = n - 15
        while rest >= 255:
            out.append(255); rest -= 255
        out.append(rest)
    return bytes(out) + data

def write(name, mtype, codec, payload, **kw):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(header(mtype, codec, payload, **kw) + payload)

def main():
    os.makedirs(OUT, exist_ok=True)
    NONE, FP32, BF16 = 0, 1, 2
    j = lambda o: json.dumps(o, sort_keys=True, separators=(",", ":")).encode()
    write("register", 16, NONE, j({"role": "worker", "name": "w0", "host": "127.0.0.1", "pid": 4242, "threads": 2}))
    write("heartbeat", 19, NONE, j({"id": 3}))
    write("plan", 23, NONE, j({"step": 7, "contributions": 2}), step=7)
    write("task", 24, NONE, j({"step": 7, "contribution": 1, "micro": [[0, 1], [2, 3]], "firstMicro": 2, "normalizer": 120,
                               "exactVersion": True, "minVersion": 7, "clipNorm": 0, "attempt": 0}), step=7)
    write("done", 25, NONE, j({"step": 7, "contribution": 1, "lossSum": 12.5, "tokens": 60, "examples": 4, "computeSeconds": 0.5,
                               "waitSeconds": 0.01, "wireBytes": 1000, "rawBytes": 4000, "gradNorm": "NaN", "attempt": 0}))
    write("norm", 26, NONE, j({"step": 7, "server": 0, "sumOfSquares": 2.25,
                               "contributions": [{"lossSum": 12.5, "tokens": 60, "examples": 4}, {"lossSum": "NaN", "tokens": 1, "examples": 1}]}))
    write("apply", 27, NONE, j({"step": 7, "clip": 0.5, "snapshot": True}))
    write("evaluate-request", 38, NONE, j({"checkpoint": "runs/x/checkpoint-5", "dataFile": "data/samsum/test.jsonl", "maxSamples": 4}))
    write("shutdown", 30, NONE, j({"reason": "training finished", "exitCode": 0}))
    values = struct.pack("<8f", 0.5, -1.0, 2.0, 0.0, 1e-3, -7.25, 3.0, 1.0)
    figures = struct.pack("<dII", 12.5, 60, 4)                # loss sum, tokens, examples
    write("push-none", 1, NONE, values + figures, step=7, partition=0, slot=1, count=8)
    b = [values[i::4] for i in range(4)]                       # byte planes, lowest first
    write("push-fp32", 1, FP32, b[0] + b[1] + b[2] + lz4_literals(b[3]) + figures, step=7, partition=1, slot=0, count=8)
    write("parameters-bf16", 3, BF16, b[2] + lz4_literals(b[3]), step=8, partition=0, count=8)
    write("pull", 2, FP32, b"", step=8, partition=0xFFFFFFFF)

if __name__ == "__main__":
    sys.exit(main())
