"""Convert musicnn 0.1.0's TF checkpoints (read from its PyPI wheel) to safetensors.

The wheel ships TF1 checkpoints ``musicnn/<model>/.index`` + ``.data-00000-of-00001``.
:func:`convert_checkpoint` reads one with :mod:`.bundle` (no TensorFlow), keeps the
model weights (not Adam's slots), renames them to :class:`.model.Musicnn`'s state-dict
names (:data:`TF_TO_TORCH`) and changes layouts to torch's:

* conv kernels TF HWIO ``(time, mel, in, out)`` -> torch OIHW ``(out, in, time, mel)``;
* dense kernels TF ``(in, out)`` -> torch ``(out, in)``;
* batch-norm ``gamma, beta, moving_mean, moving_variance`` -> ``weight, bias,
  running_mean, running_var``.

TF names its layers by creation order in ``build_musicnn``: ``conv2d`` (timbral 7x38),
``conv2d_1`` (timbral 7x67), ``conv2d_2..4`` (temporal 128, 64, 32), ``conv2d_5..7``
(mid end), ``dense`` (200 units), ``dense_1`` (tags); ``batch_normalization`` is the
input's, ``_1.._8`` follow the convolutions, ``_9`` the pooled back end, ``_10`` the
dense layer.

The output is deterministic: the same wheel gives the same bytes. The wheel's licence
(ISC) requires its notice to travel with the weights: :func:`write_weights` copies it.
"""

from __future__ import annotations

import hashlib
import json
import struct
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from . import bundle

__all__ = [
    "LICENSE_FILE",
    "MODELS",
    "TF_TO_TORCH",
    "WHEEL",
    "WHEEL_SHA256",
    "convert_checkpoint",
    "convert_wheel",
    "download_wheel",
    "serialize_safetensors",
    "sha256_of",
    "write_weights",
]

#: The wheel converted, and its SHA-256 (PyPI's file, checked before use).
WHEEL = "musicnn-0.1.0-py3-none-any.whl"
WHEEL_SHA256 = "f38a4890c648c1ddbb141c5d96d2b0a8cfcd36746002d896989f7b88beb65cfa"
#: Checkpoints converted (the VGG models of the wheel are not ported).
MODELS = ("MSD_musicnn", "MTT_musicnn")
#: Name of the licence file written next to the weights.
LICENSE_FILE = "LICENSE-musicnn.txt"
_WHEEL_LICENSE = "musicnn-0.1.0.dist-info/LICENSE.md"

_CONV = {  # TF layer -> torch module
    "conv2d": "timbral.0",
    "conv2d_1": "timbral.1",
    "conv2d_2": "temporal.0",
    "conv2d_3": "temporal.1",
    "conv2d_4": "temporal.2",
    "conv2d_5": "mid.0",
    "conv2d_6": "mid.1",
    "conv2d_7": "mid.2",
}
_BN = {"batch_normalization": "input_bn", "batch_normalization_9": "pool_bn",
       "batch_normalization_10": "dense_bn"}  # fmt: skip
_BN.update({f"batch_normalization_{i + 1}": f"{m}.bn" for i, m in enumerate(_CONV.values())})
_DENSE = {"dense": "dense", "dense_1": "output"}
_BN_FIELDS = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean",
              "moving_variance": "running_var"}  # fmt: skip


def _mapping() -> dict[str, str]:
    table = {}
    for tf, torch in _CONV.items():
        table[f"{tf}/kernel"], table[f"{tf}/bias"] = f"{torch}.conv.weight", f"{torch}.conv.bias"
    for tf, torch in _DENSE.items():
        table[f"{tf}/kernel"], table[f"{tf}/bias"] = f"{torch}.weight", f"{torch}.bias"
    for tf, torch in _BN.items():
        for tf_field, torch_field in _BN_FIELDS.items():
            table[f"{tf}/{tf_field}"] = f"{torch}.{torch_field}"
    return dict(sorted(table.items()))


#: TF checkpoint name -> :class:`.model.Musicnn` state-dict name (all 64 weights).
TF_TO_TORCH: dict[str, str] = _mapping()


def _to_torch_layout(tf_name: str, array: np.ndarray) -> np.ndarray:
    if tf_name.endswith("/kernel"):
        if array.ndim == 4:  # HWIO -> OIHW
            array = array.transpose(3, 2, 0, 1)
        elif array.ndim == 2:  # (in, out) -> (out, in)
            array = array.T
    return np.ascontiguousarray(array, dtype=np.float32)


def convert_checkpoint(index: bytes, data: bytes) -> dict[str, np.ndarray]:
    """One checkpoint's weights as ``{torch name: array}`` in torch layouts.

    Raises
    ------
    bundle.BundleError
        On a corrupt checkpoint (a CRC mismatch names the tensor).
    ValueError
        If the weights do not match :class:`.model.Musicnn` name for name, shape for shape.
    """
    from .model import Musicnn

    weights = bundle.read_tensors(bundle.read_index(index), [data])
    unknown = sorted(set(weights) - set(TF_TO_TORCH))
    missing = sorted(set(TF_TO_TORCH) - set(weights))
    if unknown or missing:
        raise ValueError(f"checkpoint is not musicnn's: unexpected {unknown}, missing {missing}")
    converted = {TF_TO_TORCH[n]: _to_torch_layout(n, a) for n, a in weights.items()}
    expected = {k: tuple(v.shape) for k, v in Musicnn().state_dict().items()}
    got = {k: a.shape for k, a in converted.items()}
    if got != expected:
        bad = sorted(k for k in expected.keys() | got.keys() if expected.get(k) != got.get(k))
        raise ValueError(f"converted shapes differ from Musicnn's state dict: {bad}")
    return dict(sorted(converted.items()))


def serialize_safetensors(tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> bytes:
    """A safetensors file of float32 ``tensors``, byte-for-byte reproducible.

    Written here rather than by ``safetensors.numpy.save``, whose header lists the
    metadata in hash-map order (a different file on every run). Tensors are stored
    in name order, the header is compact JSON with sorted keys, space-padded to a
    multiple of 8 bytes as the format allows.
    """
    header: dict[str, object] = {"__metadata__": dict(sorted(metadata.items()))}
    chunks, offset = [], 0
    for name in sorted(tensors):
        array = np.ascontiguousarray(tensors[name], dtype="<f4")
        header[name] = {"dtype": "F32", "shape": list(array.shape),
                        "data_offsets": [offset, offset + array.nbytes]}  # fmt: skip
        chunks.append(array.tobytes())
        offset += array.nbytes
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)


def sha256_of(path: str | Path) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def convert_wheel(wheel: str | Path) -> tuple[dict[str, bytes], str]:
    """Convert the wheel's checkpoints to safetensors.

    Returns
    -------
    files : dict of str to bytes
        ``{"<model>.safetensors": serialized file}`` for each of :data:`MODELS`.
    license_text : str
        The wheel's licence notice, verbatim.
    """
    digest = sha256_of(wheel)
    if digest != WHEEL_SHA256:
        raise ValueError(f"{wheel} has SHA-256 {digest}, not that of PyPI's {WHEEL}")
    files = {}
    with zipfile.ZipFile(wheel) as archive:
        license_text = archive.read(_WHEEL_LICENSE).decode("utf-8")
        for model in MODELS:
            index = archive.read(f"musicnn/{model}/.index")
            data = archive.read(f"musicnn/{model}/.data-00000-of-00001")
            tensors = convert_checkpoint(index, data)
            torch_to_tf = {torch: tf for tf, torch in TF_TO_TORCH.items()}
            metadata = {
                "model": model,
                "source": f"musicnn 0.1.0 ({WHEEL}), ISC licence: see {LICENSE_FILE}",
                "source_wheel_sha256": digest,
                "tf_names": json.dumps(torch_to_tf, sort_keys=True),
                "layout": "torch: conv (out, in, time, mel), dense (out, in)",
            }
            files[f"{model}.safetensors"] = serialize_safetensors(tensors, metadata)
    return files, license_text


def _license_file(license_text: str) -> str:
    return (
        "The files MSD_musicnn.safetensors and MTT_musicnn.safetensors in this folder are\n"
        f"the weights of musicnn 0.1.0 ({WHEEL}, https://github.com/jordipons/musicnn),\n"
        "converted from TensorFlow checkpoints to safetensors by genreseg\n"
        "(scripts/convert_musicnn.py). musicnn's copyright and permission notice, verbatim\n"
        f"from the wheel's {_WHEEL_LICENSE}:\n\n" + license_text
    )


def write_weights(wheel: str | Path, out_dir: str | Path) -> list[Path]:
    """Convert ``wheel`` into ``out_dir``: the safetensors files and the licence notice."""
    files, license_text = convert_wheel(wheel)
    files[LICENSE_FILE] = _license_file(license_text).encode("utf-8")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, content in files.items():
        (out_dir / name).write_bytes(content)
        written.append(out_dir / name)
    return written


def download_wheel(dest: str | Path | None = None) -> Path:
    """``pip download`` the musicnn wheel (no dependencies) into ``dest``; return its path.

    A wheel already in ``dest`` with the right SHA-256 is reused. ``dest`` defaults to
    a new temporary directory.
    """
    dest = Path(dest) if dest is not None else Path(tempfile.mkdtemp(prefix="musicnn-"))
    path = dest / WHEEL
    if not (path.is_file() and sha256_of(path) == WHEEL_SHA256):
        dest.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                   "--disable-pip-version-check", "musicnn==0.1.0", "-d", str(dest)]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0 or not path.is_file():
            raise RuntimeError(
                f"could not download {WHEEL} from PyPI ({' '.join(command)}):\n"
                f"{result.stdout[-2000:]}{result.stderr[-2000:]}"
            )
    return path
