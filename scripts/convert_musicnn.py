"""Convert musicnn 0.1.0's pretrained models to genreseg's safetensors weights.

    python scripts/convert_musicnn.py                 # pip download the wheel from PyPI
    python scripts/convert_musicnn.py --wheel musicnn-0.1.0-py3-none-any.whl

Writes ``MSD_musicnn.safetensors``, ``MTT_musicnn.safetensors`` and
``LICENSE-musicnn.txt`` to ``src/genreseg/features/musicnn/weights/`` (or ``--out``).
TensorFlow is not needed; the wheel's SHA-256 is checked. Same wheel, same bytes.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from genreseg.features.musicnn.convert import download_wheel, write_weights

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "src/genreseg/features/musicnn/weights"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, help="musicnn-0.1.0 wheel (default: download)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="musicnn-") as tmp:
        wheel = args.wheel if args.wheel is not None else download_wheel(tmp)
        for path in write_weights(wheel, args.out):
            print(f"wrote {path} ({path.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
