"""Lambda for POST /v1/costume: the routes live in alphacut.api.app."""

from alphacut.api.app import make_handler

handler = make_handler()  # the models it warms: ALPHACUT_WARM_MODELS in template.yaml
