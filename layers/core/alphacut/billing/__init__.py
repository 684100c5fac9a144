"""Stores that pay by themselves: credits bought by card through Stripe, top-ups when a balance
runs low, sign-up by email. The image domain imports none of it; it reaches AWS only through
``alphacut.aws`` (the ledger, the payment records, the mail and the queue) and Stripe only through
``alphacut.billing.stripe_account``.

- ``settings``: the operator's prices, packs, limits and Stripe keys (a typed model from the
  environment the template sets)
- ``stripe_account``: the one place the ``stripe`` SDK is called
- ``purchases``: a purchase asked for (credits or a pack) turned into a PaymentIntent, a card saved
- ``stripe_events``: Stripe's webhook, verified, applied once per PaymentIntent
- ``low_balance``: a balance crossing its threshold: the store told, the chosen pack bought once
- ``signup``: an email confirmed by a one-time link becomes a key on the credits plan
"""
