"""ISNet's matte graph in static int8, for onnxruntime's CPU kernels (the Lambda path).

QDQ format, per-channel int8 weights in 7 bits (``reduce_range``), uint8 activations; only the
convolutions are quantised (``Concat``, ``Resize``, ``Add`` and ``MaxPool`` stay fp32: a quantised
``Concat`` forces one scale on inputs of different ranges). The 7 bits are for CPUs without VNNI
(Lambda promises AVX2 only): there onnxruntime multiplies with AVX2's ``vpmaddubsw``, whose 16-bit
sums of two uint8 x int8 products saturate past 32767; with weights in [-64, 64] they cannot
(255 x 64 x 2 = 32640). Activation ranges are percentile ranges (``PERCENTILE``) from
histograms over training photos, stored in ``isnet_int8_ranges.json`` beside this module so that
``make models`` needs no photos: the same ranges and the pinned onnxruntime give the same graph.
docs/benchmarks.md ("The Lambda engine's levers") has the choices and what each measured.

Usage::

    # once, to remake the stored ranges from training photos (never the eval set)
    python -m alphacut_dev.build_models --calibrate-int8 "$ALPHACUT_DATA/train/ccp/images"
    # what make models does with them (model_bytes: the fp32 matte graph, weights inside)
    int8_bytes = quantize(model_bytes)
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

RANGES = Path(__file__).with_name("isnet_int8_ranges.json")
PERCENTILE = 99.95  # the dev half's pick among 99.9 .. 99.999 (agreement with fp32's matte)
CALIBRATION_PHOTOS = 16


def _prepared(model_bytes: bytes, folder: Path) -> Path:
    """The fp32 graph after onnxruntime's quantisation pre-processing (shape inference, basic
    fusions): the graph the ranges' tensor names belong to."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    whole = folder / "isnet_fp32.onnx"
    whole.write_bytes(model_bytes)
    prepared = folder / "isnet_prepared.onnx"
    quant_pre_process(str(whole), str(prepared), skip_symbolic_shape=True)
    return prepared


def quantize(model_bytes: bytes, ranges: Path = RANGES) -> bytes:
    """The int8 graph of ``model_bytes`` (ISNet's fp32 matte graph, weights inside) with ``ranges``."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    with tempfile.TemporaryDirectory(prefix="isnet-int8-") as tmp:
        prepared = _prepared(model_bytes, Path(tmp))
        out = Path(tmp) / "isnet_int8.onnx"
        quantize_static(
            str(prepared),
            str(out),
            None,
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            reduce_range=True,  # no saturation without VNNI (above)
            weight_type=QuantType.QInt8,
            activation_type=QuantType.QUInt8,
            op_types_to_quantize=["Conv"],
            calibrate_method=CalibrationMethod.Percentile,
            calibration_cache_path=str(ranges),
            extra_options={"CalibTensorRangeSymmetric": False},
        )
        return out.read_bytes()


def _model_input(photo: Path) -> np.ndarray:
    from alphacut.models.isnet import INPUT_SIZE, preprocess
    from PIL import Image

    with Image.open(photo) as image:
        return preprocess(np.asarray(image.convert("RGB")), INPUT_SIZE)


def _one_at_a_time(photos: list[Path]) -> Iterator[object]:
    """One calibration reader per photo: onnxruntime's histogram calibrator keeps every
    intermediate output of what one reader yields until it folds them into the histograms, so one
    reader of 16 photos at 1024² did not fit in 24 GB."""
    from onnxruntime.quantization import CalibrationDataReader

    class OnePhoto(CalibrationDataReader):
        def __init__(self, photo: Path) -> None:
            self.feeds = iter([{"input": _model_input(photo)}])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.feeds, None)

    for photo in photos:
        yield OnePhoto(photo)


def calibrate(model_bytes: bytes, photos: list[Path], out: Path = RANGES) -> None:
    """Write percentile ranges for every convolution's tensors, from histograms over ``photos``."""
    from onnxruntime.quantization.calibrate import CalibrationMethod, create_calibrator, save_tensors_data

    with tempfile.TemporaryDirectory(prefix="isnet-calibrate-") as tmp:
        prepared = _prepared(model_bytes, Path(tmp))
        calibrator = create_calibrator(
            prepared,
            ["Conv"],
            augmented_model_path=str(Path(tmp) / "augmented.onnx"),
            calibrate_method=CalibrationMethod.Percentile,
            extra_options={"symmetric": False, "num_bins": 2048, "percentile": PERCENTILE},
        )
        for reader in _one_at_a_time(photos):
            calibrator.collect_data(reader)
        save_tensors_data(calibrator.compute_data(), out)


def spread(folder: Path, count: int = CALIBRATION_PHOTOS) -> list[Path]:
    """``count`` photos spread evenly over ``folder``'s sorted files."""
    every = sorted(folder.iterdir())
    return every[:: max(1, len(every) // count)][:count]
