"""Lambda for POST /v1/cutout (and GET /v1/openapi.json): the routes live in alphacut.api.app."""

from alphacut.api.app import make_handler

handler = make_handler(warm=("isnet", "isnet_preview"))  # preview: remove.bg's default size
