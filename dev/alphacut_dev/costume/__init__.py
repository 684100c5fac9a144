"""Training the costume (clothing parser) head: dev-only, never shipped in a layer.

Steps (each a module with a ``main``)::

    python -m alphacut_dev.costume.features   # ISNet decoder features per training image, cached
    .cache/train-venv/bin/python -m alphacut_dev.costume.train   # the head, in PyTorch (CPU)

``train`` exports ``layers/core/alphacut/models/costume_head.onnx`` and prints the metrics the
model card quotes; with the same cache and seed it reproduces them.
"""
