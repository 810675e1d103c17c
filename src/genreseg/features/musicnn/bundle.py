"""Read TensorFlow 1 tensor-bundle checkpoints without TensorFlow.

A TF1 checkpoint ``prefix`` is two files:

* ``prefix.index``: a LevelDB-format SSTable. Its entry with the empty key holds the
  ``BundleHeaderProto``; every other key is a tensor name whose value is a
  ``BundleEntryProto`` (dtype, shape, shard, byte offset and size, CRC32C).
* ``prefix.data-00000-of-0000N``: the raw little-endian tensor bytes.

Only what the musicnn checkpoints need is supported: uncompressed SSTable blocks, one
or more shards, numeric dtypes, unpartitioned tensors. Anything else is refused with
a :class:`BundleError` rather than misread. The protobuf messages are decoded by hand
(a few varint fields), so neither ``tensorflow`` nor ``protobuf`` is needed.

>>> entries = read_index(open("MSD_musicnn/.index", "rb").read())
>>> tensors = read_tensors(entries, [open("MSD_musicnn/.data-00000-of-00001", "rb").read()])
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Callable, Iterator, Mapping, Sequence

import numpy as np

__all__ = [
    "BundleEntry",
    "BundleError",
    "crc32c",
    "is_model_weight",
    "mask_crc",
    "read_index",
    "read_tensors",
    "unmask_crc",
]


class BundleError(ValueError):
    """A checkpoint that is corrupt or uses a feature this reader does not support."""


# --- CRC32C (Castagnoli), the checksum of LevelDB blocks and of bundle tensors -------

_CRC32C_POLY = 0x82F63B78  # bit-reflected 0x1EDC6F41


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ (_CRC32C_POLY if crc & 1 else 0)
        table.append(crc)
    return table


_CRC_TABLE = _crc_table()


def crc32c(data: bytes, crc: int = 0) -> int:
    """CRC32C of ``data``, continuing from ``crc`` (the value of the preceding bytes).

    A plain table-driven loop: ~0.2 s for the 3 MB of a musicnn model, fast enough for
    a one-off conversion and free of any compiled dependency.
    """
    table = _CRC_TABLE
    crc ^= 0xFFFFFFFF
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


_MASK_DELTA = 0xA282EAD8


def mask_crc(crc: int) -> int:
    """LevelDB/TF's masked CRC: rotate right by 15 bits, add a constant (mod 2**32).

    Stored CRCs are masked so that a CRC of data that itself contains CRCs stays
    well-distributed.
    """
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def unmask_crc(masked: int) -> int:
    """Inverse of :func:`mask_crc`."""
    rot = (masked - _MASK_DELTA) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF


# --- protobuf wire format ------------------------------------------------------------


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    """Decode the varint at ``buf[pos:]``; return ``(value, next position)``."""
    value = shift = 0
    while True:
        if pos >= len(buf):
            raise BundleError("truncated varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise BundleError("varint longer than 10 bytes")


def _signed64(value: int) -> int:
    # int64 fields are two's complement in 64 bits (-1 is a 10-byte varint)
    return value - (1 << 64) if value >= 1 << 63 else value


def _fields(buf: bytes) -> Iterator[tuple[int, int | bytes]]:
    """Yield ``(field number, value)`` of a protobuf message, in wire order.

    Varint and fixed-width values are ints; length-delimited ones are bytes.
    """
    pos = 0
    while pos < len(buf):
        tag, pos = _varint(buf, pos)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = struct.unpack_from("<Q", buf, pos)[0], pos + 8
        elif wire == 5:
            value, pos = struct.unpack_from("<I", buf, pos)[0], pos + 4
        elif wire == 2:
            length, pos = _varint(buf, pos)
            value, pos = bytes(buf[pos : pos + length]), pos + length
        else:
            raise BundleError(f"unsupported protobuf wire type {wire} (field {number})")
        if pos > len(buf):
            raise BundleError("truncated protobuf message")
        yield number, value


# --- LevelDB SSTable -----------------------------------------------------------------

_TABLE_MAGIC = 0xDB4775248B80FB57
_FOOTER_SIZE = 48  # two block handles padded to 40 bytes, then the 8-byte magic
_BLOCK_TRAILER = 5  # compression type (1 byte) + masked CRC32C (4 bytes)


def _block_handle(buf: bytes, pos: int = 0) -> tuple[tuple[int, int], int]:
    offset, pos = _varint(buf, pos)
    size, pos = _varint(buf, pos)
    return (offset, size), pos


def _read_block(table: bytes, handle: tuple[int, int]) -> bytes:
    """The contents of one block, its CRC checked; compressed blocks are refused."""
    offset, size = handle
    end = offset + size
    if end + _BLOCK_TRAILER > len(table):
        raise BundleError("block handle points past the end of the index file")
    contents = table[offset:end]
    kind = table[end]
    (stored,) = struct.unpack_from("<I", table, end + 1)
    if crc32c(table[offset : end + 1]) != unmask_crc(stored):  # CRC covers the type byte
        raise BundleError(f"CRC mismatch in index block at offset {offset}")
    if kind != 0:
        raise BundleError(
            f"index block at offset {offset} is compressed (type {kind}, 1 = snappy); "
            "only uncompressed tables are supported"
        )
    return contents


def _block_entries(block: bytes) -> Iterator[tuple[bytes, bytes]]:
    """Yield the ``(key, value)`` pairs of a block (keys are prefix-compressed)."""
    if len(block) < 4:
        raise BundleError("block too short")
    (n_restarts,) = struct.unpack_from("<I", block, len(block) - 4)
    end = len(block) - 4 - 4 * n_restarts  # entries stop where the restart array starts
    if end < 0:
        raise BundleError("corrupt block restart array")
    pos, key = 0, b""
    while pos < end:
        shared, pos = _varint(block, pos)
        unshared, pos = _varint(block, pos)
        value_len, pos = _varint(block, pos)
        if shared > len(key):
            raise BundleError("corrupt block entry (shared prefix longer than last key)")
        key = key[:shared] + block[pos : pos + unshared]
        pos += unshared
        yield key, block[pos : pos + value_len]
        pos += value_len


def _table_items(table: bytes) -> Iterator[tuple[bytes, bytes]]:
    """All ``(key, value)`` pairs of an SSTable, in key order."""
    if len(table) < _FOOTER_SIZE:
        raise BundleError("index file too short for an SSTable footer")
    footer = table[-_FOOTER_SIZE:]
    (magic,) = struct.unpack_from("<Q", footer, _FOOTER_SIZE - 8)
    if magic != _TABLE_MAGIC:
        raise BundleError(f"not an SSTable (magic {magic:#018x})")
    _metaindex, pos = _block_handle(footer)
    index_handle, _ = _block_handle(footer, pos)
    for _separator, handle_bytes in _block_entries(_read_block(table, index_handle)):
        handle, _ = _block_handle(handle_bytes)
        yield from _block_entries(_read_block(table, handle))


# --- bundle protos -------------------------------------------------------------------

#: TF ``DataType`` enum values this reader maps to NumPy (little-endian).
DTYPES: dict[int, np.dtype] = {
    1: np.dtype("<f4"),  # DT_FLOAT
    2: np.dtype("<f8"),  # DT_DOUBLE
    3: np.dtype("<i4"),  # DT_INT32
    4: np.dtype("u1"),  # DT_UINT8
    5: np.dtype("<i2"),  # DT_INT16
    6: np.dtype("i1"),  # DT_INT8
    9: np.dtype("<i8"),  # DT_INT64
    10: np.dtype("?"),  # DT_BOOL
    17: np.dtype("<u2"),  # DT_UINT16
    19: np.dtype("<f2"),  # DT_HALF
    22: np.dtype("<u4"),  # DT_UINT32
    23: np.dtype("<u8"),  # DT_UINT64
}


@dataclass(frozen=True)
class BundleEntry:
    """Where one tensor lies in the data shards (a decoded ``BundleEntryProto``)."""

    name: str
    dtype: int  # TF DataType enum
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int
    crc32c: int  # as stored (masked)


def _shape(proto: bytes) -> tuple[int, ...]:
    dims = []
    for number, value in _fields(proto):
        if number == 2:  # repeated Dim dim
            size = 0
            for dim_number, dim_value in _fields(value):
                if dim_number == 1:
                    size = _signed64(dim_value)
            dims.append(size)
        elif number == 3 and value:  # unknown_rank
            raise BundleError("tensor of unknown rank")
    if any(d < 0 for d in dims):
        raise BundleError(f"tensor shape {dims} has an unknown dimension")
    return tuple(dims)


def _entry(name: str, proto: bytes) -> BundleEntry:
    fields = {"dtype": 0, "shape": (), "shard_id": 0, "offset": 0, "size": 0, "crc32c": 0}
    for number, value in _fields(proto):
        if number == 1:
            fields["dtype"] = value
        elif number == 2:
            fields["shape"] = _shape(value)
        elif number in (3, 4, 5):
            fields[("shard_id", "offset", "size")[number - 3]] = value
        elif number == 6:
            fields["crc32c"] = value
        elif number == 7:
            raise BundleError(f"tensor {name!r} is partitioned (slices); not supported")
    return BundleEntry(name=name, **fields)


def _check_header(proto: bytes) -> int:
    """Validate the ``BundleHeaderProto``; return the number of shards."""
    num_shards, endianness = 1, 0
    for number, value in _fields(proto):
        if number == 1:
            num_shards = value
        elif number == 2:
            endianness = value
    if endianness != 0:
        raise BundleError("big-endian checkpoints are not supported")
    return num_shards


def read_index(index: bytes) -> dict[str, BundleEntry]:
    """Decode a ``.index`` file into ``{tensor name: BundleEntry}`` (all tensors)."""
    entries: dict[str, BundleEntry] = {}
    num_shards = None
    for key, value in _table_items(index):
        if key == b"":
            num_shards = _check_header(value)
        else:
            name = key.decode("utf-8")
            entries[name] = _entry(name, value)
    if num_shards is None:
        raise BundleError("index has no bundle header (empty key)")
    for entry in entries.values():
        if not 0 <= entry.shard_id < num_shards:
            raise BundleError(f"tensor {entry.name!r} names shard {entry.shard_id} of {num_shards}")
    return entries


# --- tensors -------------------------------------------------------------------------

#: Name fragments of Adam's state: its slots (``w/Adam``, ``w/Adam_1``) and powers.
_OPTIMIZER_MARKERS = ("/Adam", "beta1_power", "beta2_power")


def is_model_weight(name: str) -> bool:
    """Whether a checkpoint tensor is a model weight, not optimizer or training state."""
    if any(marker in name for marker in _OPTIMIZER_MARKERS):
        return False
    return name != "global_step" and not name.endswith("/global_step")


def read_tensors(
    entries: Mapping[str, BundleEntry],
    shards: Sequence[bytes],
    include: Callable[[str], bool] = is_model_weight,
) -> dict[str, np.ndarray]:
    """Read and CRC-check the tensors whose name passes ``include``, sorted by name.

    Parameters
    ----------
    entries : mapping
        From :func:`read_index`.
    shards : sequence of bytes
        The contents of ``.data-00000-of-0000N``, ... in shard order.
    include : callable
        Tensor-name filter; by default model weights only (:func:`is_model_weight`).

    Returns
    -------
    dict of str to np.ndarray
        Native-endian, writable copies, in the checkpoint's shapes.

    Raises
    ------
    BundleError
        On a CRC mismatch (naming the tensor), a tensor outside its shard, or an
        unsupported dtype.
    """
    tensors = {}
    for name in sorted(entries):
        if not include(name):
            continue
        entry = entries[name]
        if entry.dtype not in DTYPES:
            raise BundleError(f"tensor {name!r} has unsupported TF dtype enum {entry.dtype}")
        dtype = DTYPES[entry.dtype]
        shard = shards[entry.shard_id]
        raw = shard[entry.offset : entry.offset + entry.size]
        if len(raw) != entry.size:
            raise BundleError(f"tensor {name!r} lies past the end of shard {entry.shard_id}")
        # TF stores the tensor CRC masked, like LevelDB's block CRCs
        if mask_crc(crc32c(raw)) != entry.crc32c:
            raise BundleError(f"CRC32C mismatch in tensor {name!r}: checkpoint data is corrupt")
        count = int(np.prod(entry.shape, dtype=np.int64))
        if count * dtype.itemsize != entry.size:
            raise BundleError(f"tensor {name!r}: {entry.size} bytes for shape {entry.shape}")
        array = np.frombuffer(raw, dtype=dtype).reshape(entry.shape)
        tensors[name] = array.astype(dtype.newbyteorder("="), copy=True)
    return tensors
