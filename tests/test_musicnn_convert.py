"""The musicnn converter on the real PyPI wheel, and the TF checkpoint reader.

The wheel (musicnn 0.1.0, 37 MB) is downloaded once with ``pip download`` into
``~/.cache/genreseg-test`` (or taken from ``GENRESEG_MUSICNN_WHEEL``). Without it these
tests fail -- they do not skip: the shipped weights must stay reproducible.
"""

from __future__ import annotations

import os
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from genreseg.features.musicnn import bundle
from genreseg.features.musicnn.convert import (
    LICENSE_FILE,
    MODELS,
    TF_TO_TORCH,
    convert_checkpoint,
    convert_wheel,
    download_wheel,
    write_weights,
)

WEIGHTS = Path(__file__).resolve().parents[1] / "src/genreseg/features/musicnn/weights"
CACHE = Path.home() / ".cache" / "genreseg-test"


@pytest.fixture(scope="module")
def wheel() -> Path:
    local = os.environ.get("GENRESEG_MUSICNN_WHEEL")
    if local:
        return Path(local)
    try:
        return download_wheel(CACHE)
    except RuntimeError as error:
        pytest.fail(f"the musicnn wheel is needed to check the converter: {error}")


@pytest.fixture(scope="module")
def checkpoint(wheel):
    with zipfile.ZipFile(wheel) as archive:
        return (archive.read("musicnn/MSD_musicnn/.index"),
                archive.read("musicnn/MSD_musicnn/.data-00000-of-00001"))  # fmt: skip


def test_converter_reproduces_the_shipped_weights(wheel, tmp_path):
    from safetensors import safe_open
    from safetensors.numpy import load_file

    written = {p.name for p in write_weights(wheel, tmp_path)}
    assert written == {f"{m}.safetensors" for m in MODELS} | {LICENSE_FILE}
    for model in MODELS:
        name = f"{model}.safetensors"
        new, shipped = load_file(tmp_path / name), load_file(WEIGHTS / name)
        assert sorted(new) == sorted(shipped) == sorted(TF_TO_TORCH.values())
        for key in shipped:  # tensor by tensor, bit for bit
            assert new[key].dtype == shipped[key].dtype == np.float32
            assert new[key].tobytes() == shipped[key].tobytes(), key
        assert (tmp_path / name).read_bytes() == (WEIGHTS / name).read_bytes()
        with safe_open(str(WEIGHTS / name), "np") as f:
            assert f.metadata()["model"] == model
    assert (tmp_path / LICENSE_FILE).read_bytes() == (WEIGHTS / LICENSE_FILE).read_bytes()


def test_license_notice_is_copied_verbatim(wheel):
    with zipfile.ZipFile(wheel) as archive:
        notice = archive.read("musicnn-0.1.0.dist-info/LICENSE.md").decode()
    assert "Permission to use, copy, modify, and/or distribute" in notice
    assert (WEIGHTS / LICENSE_FILE).read_text().endswith(notice)


def test_conversion_is_deterministic(wheel):
    first, _ = convert_wheel(wheel)
    second, _ = convert_wheel(wheel)
    assert first == second


def test_optimizer_slots_are_skipped(checkpoint):
    index, data = checkpoint
    entries = bundle.read_index(index)
    # 64 weights (42 trained, 22 BN moving statistics), 2 Adam slots per trained
    # weight, Adam's beta1_power and beta2_power
    assert len(entries) == 64 + 2 * 42 + 2
    assert sum("/Adam" in name for name in entries) == 2 * 42
    weights = bundle.read_tensors(entries, [data])
    assert sorted(weights) == sorted(TF_TO_TORCH)
    converted = convert_checkpoint(index, data)
    assert len(converted) == 64 and not any("Adam" in k or "power" in k for k in converted)


def test_checkpoint_layouts_become_torch_layouts(checkpoint):
    index, data = checkpoint
    entries = bundle.read_index(index)
    kernel = entries["conv2d/kernel"]
    assert (kernel.dtype, kernel.shape) == (1, (7, 38, 1, 204))
    tf = bundle.read_tensors(entries, [data], include=lambda n: n in ("conv2d/kernel", "dense/kernel"))
    torch_ = convert_checkpoint(index, data)
    np.testing.assert_array_equal(torch_["timbral.0.conv.weight"], tf["conv2d/kernel"].transpose(3, 2, 0, 1))
    np.testing.assert_array_equal(torch_["dense.weight"], tf["dense/kernel"].T)


def test_corrupt_tensor_byte_names_the_tensor(checkpoint):
    index, data = checkpoint
    entries = bundle.read_index(index)
    target = entries["dense/kernel"]
    corrupt = bytearray(data)
    corrupt[target.offset + 1234] ^= 0x01
    with pytest.raises(bundle.BundleError, match="CRC32C mismatch in tensor 'dense/kernel'"):
        bundle.read_tensors(entries, [bytes(corrupt)])


def _footer_index_handle(index: bytes) -> tuple[int, int]:
    footer = index[-48:]
    _, pos = bundle._varint(footer, 0)
    _, pos = bundle._varint(footer, pos)
    offset, pos = bundle._varint(footer, pos)
    size, _ = bundle._varint(footer, pos)
    return offset, size


def test_corrupt_or_compressed_index_is_refused(checkpoint):
    index, _ = checkpoint
    offset, size = _footer_index_handle(index)
    corrupt = bytearray(index)
    corrupt[offset + 3] ^= 0x40
    with pytest.raises(bundle.BundleError, match="CRC mismatch in index block"):
        bundle.read_index(bytes(corrupt))
    # a block marked snappy-compressed, with a valid CRC: refused, not misread
    snappy = bytearray(index)
    snappy[offset + size] = 1
    crc = bundle.mask_crc(bundle.crc32c(bytes(snappy[offset : offset + size + 1])))
    snappy[offset + size + 1 : offset + size + 5] = struct.pack("<I", crc)
    with pytest.raises(bundle.BundleError, match="compressed"):
        bundle.read_index(bytes(snappy))
    with pytest.raises(bundle.BundleError, match="not an SSTable"):
        bundle.read_index(index[:-1] + b"\x00")


def test_crc32c_and_masking():
    assert bundle.crc32c(b"123456789") == 0xE3069283  # the standard check value
    assert bundle.crc32c(b"") == 0
    assert bundle.crc32c(b"6789", bundle.crc32c(b"12345")) == 0xE3069283
    for value in (0, 1, 0xE3069283, 0xFFFFFFFF):
        assert bundle.unmask_crc(bundle.mask_crc(value)) == value
