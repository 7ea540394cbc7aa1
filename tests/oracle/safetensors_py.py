"""Minimal safetensors reader/writer in NumPy, written from the format description only.

It exists so the oracle tests share no code with the C++ loader: if both agree on a file this
one wrote, the C++ reader is right about the format, not merely consistent with itself.

Format: 8-byte little-endian header length N, N bytes of UTF-8 JSON (padded with spaces to a
multiple of 8), then the data area. Each header entry is {"dtype", "shape", "data_offsets":
[begin, end]} relative to the data area; "__metadata__" maps strings to strings.
"""
import json
import os
import struct

import numpy as np

# NumPy has no bfloat16: BF16 tensors travel as uint16 bit patterns and are widened on read.
_NUMPY_DTYPES = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": np.uint16,
    "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8,
    "U8": np.uint8, "BOOL": np.bool_,
}


def float32_to_bf16_bits(x):
    """Rounds float32 values to bfloat16 (round to nearest, ties to even); returns uint16 bits.

    This is what torch's .to(torch.bfloat16) does for finite values, so a "BF16 checkpoint"
    written here holds the same numbers a real one would.
    """
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounding = ((bits >> 16) & 1) + 0x7FFF
    return ((bits + rounding) >> 16).astype(np.uint16)


def bf16_bits_to_float32(bits):
    """Widens bfloat16 bit patterns exactly (bfloat16 is the top half of a float32)."""
    return (np.asarray(bits, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


def encode(array, dtype):
    """Bytes of `array` stored as safetensors `dtype` (rounding float data when narrower)."""
    if dtype == "BF16":
        stored = float32_to_bf16_bits(array)
    else:
        stored = np.asarray(array).astype(_NUMPY_DTYPES[dtype])
    return np.ascontiguousarray(stored).astype(stored.dtype.newbyteorder("<")).tobytes()


def write(path, tensors, metadata=None):
    """Writes `tensors`, a list of (name, dtype string, array), contiguously in the given order."""
    header = {}
    blobs = []
    offset = 0
    for name, dtype, array in tensors:
        blob = encode(array, dtype)
        header[name] = {"dtype": dtype, "shape": list(np.shape(array)),
                        "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    if metadata is not None:
        header["__metadata__"] = dict(metadata)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # keeps the data area 8-byte aligned, as the spec suggests
    tmp = str(path) + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)
    os.replace(tmp, path)


def read(path):
    """Returns ({name: array}, metadata). BF16 comes back as exact float32; others as stored."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n].decode("utf-8"))
    metadata = header.pop("__metadata__", {}) or {}
    base = 8 + n
    tensors = {}
    for name, entry in header.items():
        begin, end = entry["data_offsets"]
        dtype = np.dtype(_NUMPY_DTYPES[entry["dtype"]]).newbyteorder("<")
        array = np.frombuffer(data[base + begin:base + end], dtype=dtype).reshape(entry["shape"])
        if entry["dtype"] == "BF16":
            array = bf16_bits_to_float32(array)
        tensors[name] = array
    return tensors, metadata


def read_folder(model_dir):
    """All tensors of an HF model folder (single file or index + shards), plus the metadata of
    every file merged (tied-weight aliases live there)."""
    index_path = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(index_path):
        with open(index_path) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    tensors, metadata = {}, {}
    for name in files:
        part, meta = read(os.path.join(model_dir, name))
        overlap = set(part) & set(tensors)
        if overlap:
            raise ValueError(f"{name}: tensors repeated across shards: {sorted(overlap)}")
        tensors.update(part)
        metadata.update(meta)
    return tensors, metadata
