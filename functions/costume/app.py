"""Lambda for POST /v1/costume: the routes live in alphacut.api.app."""

from alphacut.api.app import make_handler

handler = make_handler(warm=("isnet_features", "backbone", "costume"))
