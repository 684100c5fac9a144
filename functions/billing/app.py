"""Lambda for /v1/billing/* (credits by card, the saved card, the threshold, payments), Stripe's
webhook and sign-up (no model: the billing routes, Stripe and DynamoDB only)."""

from alphacut.api.app import make_handler

handler = make_handler()
