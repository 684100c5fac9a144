"""Lambda for POST /v1/selfie: the person pipeline needs both models, loaded at cold start."""

from alphacut.api.app import make_handler

handler = make_handler()  # the models it warms: ALPHACUT_WARM_MODELS in template.yaml
