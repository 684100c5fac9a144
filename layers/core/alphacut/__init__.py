"""alphacut: background removal on CPU ONNX models.

The image domain (decode, models, pipeline, options, errors) lives here and imports no AWS code.

Usage::

    from alphacut import CutoutOptions, Pipeline

    pipeline = Pipeline.from_settings()          # models from layers/models (or ALPHACUT_MODELS_DIR)
    result = pipeline.run(open("shoe.jpg", "rb").read(), CutoutOptions(format="webp", crop=True))
    open("shoe.webp", "wb").write(result.image)
"""

from alphacut.errors import AlphacutError
from alphacut.options import CutoutOptions
from alphacut.pipeline import CutoutResult, Pipeline

__all__ = ["AlphacutError", "CutoutOptions", "CutoutResult", "Pipeline"]
__version__ = "0.1.0"
