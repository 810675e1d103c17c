"""Reference outputs of the original TensorFlow ``musicnn`` tagger, for the PyTorch port's parity test.

Makes ``tests/data/musicnn_reference.npz``: for three real gtzan_mini clips (classical,
metal, hiphop), each cut to its first 9.0 s after loading (so 3 patches of 187 frames),
the exact network input computed as ``musicnn.extractor.batch_data`` does, and the
outputs of the original graph (``MSD_musicnn`` and ``MTT_musicnn`` checkpoints of
``musicnn==0.1.0``, ISC licence) for every patch.

The outputs are computed FROM THE GRAPH (``musicnn.models.define_model`` on a
``[None, 187, 96]`` placeholder, ``is_training=False``, weights restored with
``tf.compat.v1.train.Saver`` from the package's checkpoint folders), not with
``musicnn.extractor.extractor``: that function returns the first patch's ``penultimate``
(and ``cnn1``/``cnn2``/``cnn3``) again for every later patch (it unpacks the later
batches into ``midend1_``... and ``backend_`` but concatenates the stale first-batch
variables). Its taggram is right.

Preprocessing (exactly ``batch_data``, with two explicit choices that keep today's
libraries on the behaviour the package was made with):

1. ``librosa.load(path, sr=16000)``: librosa's default resampler (``res_type='soxr_hq'``
   in librosa >= 0.10; the package was made under librosa 0.7, whose default was
   resampy's ``kaiser_best``). The 30-s file is loaded whole, then cut to 144000 samples.
2. ``librosa.feature.melspectrogram(y=y, sr=16000, hop_length=256, n_fft=512, n_mels=96,
   pad_mode="reflect").T``: librosa >= 0.10 pads the centred STFT with zeros by default
   (``pad_mode="constant"``); librosa 0.7's default was ``"reflect"``. Only frame 0 of
   each clip (and the last frame, never in a patch) differs between the two.
3. ``.astype(np.float16)``, then ``np.log10(10000 * x + 1)`` computed in float32. Under
   NumPy 1.x ``10000 * float16_array`` is promoted to float32 (the int 10000 has minimal
   type uint16, and float16 x uint16 -> float32); under NumPy 2 (NEP 50) it stays float16
   and overflows to ``inf`` for mel power > 6.55, which real music exceeds (hundreds to
   thousands of bins per 30-s clip). Casting to float32 first reproduces NumPy 1.x
   bit for bit (checked below when run under NumPy < 2).
4. Non-overlapping patches of 187 frames: starts ``range(0, T - 187 + 1, 187)``.

Keys of the ``.npz`` (no object arrays; ``np.load(..., allow_pickle=False)`` works):

``clips`` (3,) str: paths relative to gtzan_mini; ``offset_s``, ``duration_s`` (3,);
``patch_frames`` (); ``sample_rate`` (); ``labels_MSD``, ``labels_MTT`` (50,) str;
``version_tensorflow``, ``version_librosa``, ``version_numpy``, ``version_soxr``,
``version_musicnn``, ``librosa_res_type``, ``stft_pad_mode``: () str.
Per clip ``i``: ``clip{i}_audio`` (144000,) float32 (the 16-kHz audio fed to the mel),
``clip{i}_mel_f16`` (563, 96) float16 (pre-log), ``clip{i}_logmel`` (563, 96) float32
(fed to the net), ``clip{i}_patch_starts`` (3,).
Per model ``m`` in (MSD_musicnn, MTT_musicnn) and clip ``i``: ``{m}_clip{i}_logits``
(3, 50), ``{m}_clip{i}_taggram`` (3, 50) = sigmoid(logits), ``{m}_clip{i}_penultimate``
(3, 200), ``{m}_clip{i}_mean_pool`` and ``{m}_clip{i}_max_pool`` (3, 753), and
``{m}_clip{i}_midend`` (P, 187, 753) float32: the dense concatenation the backend pools
over (frontend 561 = 204 + 204 + 51 + 51 + 51, then the three 64-filter mid-end layers),
graph tensor ``model/concat_1:0`` squeezed on its last axis. ``P`` is 1 (first patch
only, to keep the file small) unless ``--all-midend`` is given.

Rerun (a throwaway venv outside the repo; never the repo's ``.venv``)::

    python3 -m venv /tmp/tfvenv
    /tmp/tfvenv/bin/pip install "tensorflow-cpu==2.15.1" "numpy<2" "librosa>=0.10" soundfile
    /tmp/tfvenv/bin/pip install --no-deps musicnn==0.1.0
    /tmp/tfvenv/bin/python scripts/musicnn_reference.py [--data ../shared/data/gtzan_mini]

Made with tensorflow-cpu 2.15.1, numpy 1.26.4, librosa 0.11.0 (soxr 1.1.0), Python 3.11.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CLIPS = ("classical/classical.00000.wav", "metal/metal.00000.wav", "hiphop/hiphop.00000.wav")
MODELS = ("MSD_musicnn", "MTT_musicnn")
SR, HOP, N_FFT, N_MELS, N_FRAMES = 16000, 256, 512, 96, 187
OFFSET_S, DURATION_S = 0.0, 9.0
MIDEND_TENSOR = "model/concat_1:0"


def log_mel(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """musicnn's input representation of 16-kHz audio: (float16 mel power, float32 log-mel), (T, 96)."""
    import librosa

    mel = librosa.feature.melspectrogram(y=y, sr=SR, hop_length=HOP, n_fft=N_FFT, n_mels=N_MELS,
                                         pad_mode="reflect").T
    mel16 = mel.astype(np.float16)
    logmel = np.log10(10000 * mel16.astype(np.float32) + 1)
    if np.__version__.startswith("1."):  # the package's own expression, as NumPy 1.x evaluates it
        assert np.array_equal(logmel, np.log10(10000 * mel16 + 1))
    return mel16, logmel.astype(np.float32)


def patches(logmel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Non-overlapping 187-frame patches as ``batch_data`` cuts them: (starts, (P, 187, 96))."""
    starts = np.arange(0, logmel.shape[0] - N_FRAMES + 1, N_FRAMES)
    return starts, np.stack([logmel[s:s + N_FRAMES] for s in starts])


def run_model(model: str, batches: list[np.ndarray]) -> list[dict[str, np.ndarray]]:
    """Run the original graph of ``model`` on each (P, 187, 96) batch; return its tensors per batch."""
    import musicnn
    import tensorflow as tf
    from musicnn import models

    tf.compat.v1.disable_eager_execution()
    tf.compat.v1.reset_default_graph()
    with tf.name_scope("model"):
        x = tf.compat.v1.placeholder(tf.float32, [None, N_FRAMES, N_MELS])
        logits, *_, mean_pool, max_pool, penultimate = models.define_model(x, False, model, 50)
        taggram = tf.nn.sigmoid(logits)
    graph = tf.compat.v1.get_default_graph()
    midend = graph.get_tensor_by_name(MIDEND_TENSOR)
    # The dense connection of build_musicnn: tf.concat(midend_features_list, 2), whose first
    # input is the frontend concat (model/concat:0, 561 channels) expanded to rank 4.
    assert midend.op.type == "ConcatV2" and midend.shape.as_list()[1:] == [N_FRAMES, 753, 1]
    assert midend.op.inputs[0].op.inputs[0].name == "model/concat:0"
    fetch = {"logits": logits, "taggram": taggram, "penultimate": penultimate,
             "mean_pool": mean_pool, "max_pool": max_pool, "midend": tf.squeeze(midend, [3])}
    with tf.compat.v1.Session() as sess:
        tf.compat.v1.train.Saver().restore(sess, os.path.join(os.path.dirname(musicnn.__file__), model) + "/")
        return [sess.run(fetch, feed_dict={x: b}) for b in batches]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "gtzan_mini")
    parser.add_argument("--out", type=Path, default=REPO / "tests" / "data" / "musicnn_reference.npz")
    parser.add_argument("--all-midend", action="store_true", help="store every patch's midend, not the first")
    args = parser.parse_args()

    import librosa
    import musicnn  # noqa: F401  (fail early outside the throwaway venv)
    import soxr
    import tensorflow as tf
    from musicnn import configuration as config

    out: dict[str, np.ndarray] = {
        "clips": np.array(CLIPS), "offset_s": np.full(len(CLIPS), OFFSET_S),
        "duration_s": np.full(len(CLIPS), DURATION_S), "patch_frames": np.array(N_FRAMES),
        "sample_rate": np.array(SR),
        "labels_MSD": np.array(config.MSD_LABELS), "labels_MTT": np.array(config.MTT_LABELS),
        "version_tensorflow": np.array(tf.__version__), "version_librosa": np.array(librosa.__version__),
        "version_numpy": np.array(np.__version__), "version_soxr": np.array(soxr.__version__),
        "version_musicnn": np.array("0.1.0"), "librosa_res_type": np.array("soxr_hq"),
        "stft_pad_mode": np.array("reflect"),
    }
    batches = []
    for i, rel in enumerate(CLIPS):
        y, _ = librosa.load(args.data / rel, sr=SR)  # default res_type: soxr_hq (librosa 0.11)
        y = y[int(OFFSET_S * SR):int((OFFSET_S + DURATION_S) * SR)]
        mel16, logmel = log_mel(y)
        starts, batch = patches(logmel)
        out |= {f"clip{i}_audio": y.astype(np.float32), f"clip{i}_mel_f16": mel16,
                f"clip{i}_logmel": logmel, f"clip{i}_patch_starts": starts}
        batches.append(batch)

    for model in MODELS:
        labels = np.array(config.MSD_LABELS if model.startswith("MSD") else config.MTT_LABELS)
        for i, res in enumerate(run_model(model, batches)):
            # The backend pools the midend: a consistency check of the fetched tensor.
            np.testing.assert_allclose(res["max_pool"], res["midend"].max(axis=1), rtol=0, atol=0)
            np.testing.assert_allclose(res["mean_pool"], res["midend"].mean(axis=1), rtol=1e-5, atol=1e-5)
            for key, value in res.items():
                value = value if key != "midend" or args.all_midend else value[:1]
                out[f"{model}_clip{i}_{key}"] = np.ascontiguousarray(value, np.float32)
            top = np.argsort(-res["taggram"].mean(axis=0))[:5]
            print(f"{model:12s} {CLIPS[i]:28s}", ", ".join(f"{labels[k]} {res['taggram'][:, k].mean():.2f}" for k in top))

    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **out)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB, {len(out)} arrays)")


if __name__ == "__main__":
    main()
