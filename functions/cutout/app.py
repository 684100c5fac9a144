"""Lambda for POST /v1/cutout (and GET /v1/openapi.json): the routes live in alphacut.api.app."""

from alphacut.api.app import make_handler

handler = make_handler()  # the models it warms: ALPHACUT_WARM_MODELS in template.yaml
