"""alphacut: background removal on CPU ONNX models.

The image domain (decode, models, pipeline, options, errors) lives here and imports no AWS code.

Usage::

    from alphacut import CutoutOptions, Pipeline

    pipeline = Pipeline.from_settings()          # models from layers/models (or ALPHACUT_MODELS_DIR)
    result = pipeline.run(open("shoe.jpg", "rb").read(), CutoutOptions(format="webp", crop=True))
    open("shoe.webp", "wb").write(result.image)
"""

from alphacut.errors import AlphacutError

__all__ = ["AlphacutError", "CutoutOptions", "CutoutResult", "Pipeline"]
__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    # Imported on first use: functions that run no model (tasks, dispatch, charge...) import
    # alphacut.aws.* and must not pay for numpy, Pillow and onnxruntime at every cold start.
    if name == "CutoutOptions":
        from alphacut.options import CutoutOptions

        return CutoutOptions
    if name in ("CutoutResult", "Pipeline"):
        from alphacut import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'alphacut' has no attribute {name!r}")
