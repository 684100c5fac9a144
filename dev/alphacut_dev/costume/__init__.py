"""Training the costume (clothing parser) head: dev-only, never shipped in a layer.

Steps (each a module with a ``main``; ``make costume-train`` runs them all)::

    python -m alphacut_dev.costume.features   # ISNet's and EfficientNet-Lite0's maps per photo, cached
    .cache/train-venv/bin/python -m alphacut_dev.costume.ensemble   # trains the members, joins them
    python -m alphacut_dev.costume.validate   # the committed head on the held-out tenth

``labels`` maps Clothing Co-Parsing's labels to the head's classes; ``train`` trains one member.
With the same cache and seed the members come out the same, and so does the joined file.
"""
