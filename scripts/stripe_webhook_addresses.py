"""The StripeWebhookAddresses parameter from Stripe's published list of webhook addresses (one
address a line, as https://stripe.com/files/ips/ips_webhooks.txt serves it): an operator runs it
when Stripe announces a change (seven days ahead, on its api-announce list) and deploys with it.

Usage::

    LIST=https://stripe.com/files/ips/ips_webhooks.txt
    ADDRESSES=$(curl -s $LIST | python scripts/stripe_webhook_addresses.py)
    sam deploy --parameter-overrides StripeWebhookAddresses=$ADDRESSES
"""

from __future__ import annotations

import ipaddress
import sys


def parameter(listing: str) -> str:
    """Each address of ``listing`` as an IPv4 CIDR block (/32), comma-separated, in the given order."""
    blocks = []
    for line in listing.split():
        address = ipaddress.ip_address(line.strip())
        if address.version != 4:  # the template's IP set is IPv4: said, not fatal
            print(f"left out {address}: the template's IP set holds IPv4 addresses", file=sys.stderr)
            continue
        blocks.append(f"{address}/32")
    if not blocks:
        raise SystemExit("no addresses read: give Stripe's list on standard input")
    return ",".join(dict.fromkeys(blocks))


if __name__ == "__main__":
    print(parameter(sys.stdin.read()))
