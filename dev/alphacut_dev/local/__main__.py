"""``python -m alphacut_dev.local``: the whole service on http://127.0.0.1:3000 until Ctrl-C.

PORT overrides the port; ALPHACUT_API_KEY the local API key (default below, printed at start; at
least 20 characters, as API Gateway wants); HOST the address (loopback only, unless
ALPHACUT_ALLOW_REMOTE=1). Card payments: ALPHACUT_STRIPE_API_BASE (a localstripe, say),
ALPHACUT_STRIPE_SECRET_KEY, ALPHACUT_STRIPE_WEBHOOK_SECRET, ALPHACUT_STRIPE_PUBLISHABLE_KEY and
ALPHACUT_STRIPE_JS_URL go to the functions as they are; mail (sign-up links, low-balance notices) is
written to ALPHACUT_MAIL_DIR (default .cache/mail), one file a message.
"""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import sys
import threading
from pathlib import Path

from alphacut.aws.keys.store import MIN_VALUE_LENGTH

from alphacut_dev.local.keys import STACK_FILE
from alphacut_dev.local.stack import DEFAULT_API_KEY, STACK_NAME, LocalStack

LOOPBACK = ipaddress.ip_network("127.0.0.0/8")
# what `make serve` hands the functions as it finds it (docs/api.md, Billing)
BILLING_VARIABLES = (
    "ALPHACUT_STRIPE_API_BASE",
    "ALPHACUT_STRIPE_SECRET_KEY",
    "ALPHACUT_STRIPE_WEBHOOK_SECRET",
    "ALPHACUT_STRIPE_PUBLISHABLE_KEY",
    "ALPHACUT_STRIPE_JS_URL",
)


def settings_problem(host: str, api_key: str, allow_remote: bool) -> str | None:
    """What is wrong with HOST / ALPHACUT_API_KEY, in a sentence, or None."""
    try:
        address = ipaddress.ip_address(host)
        loopback = address in LOOPBACK or address == ipaddress.ip_address("::1")
    except ValueError:
        loopback = host == "localhost"
    if not loopback and not allow_remote:
        return (
            f"HOST={host} would open the stack (and its API key) to the network: it serves 127.0.0.1 only "
            "unless ALPHACUT_ALLOW_REMOTE=1 says otherwise"
        )
    if len(api_key) < MIN_VALUE_LENGTH:
        return f"ALPHACUT_API_KEY is {len(api_key)} characters: a key needs at least {MIN_VALUE_LENGTH}"
    return None


def main() -> int:
    host = os.environ.get("HOST", "127.0.0.1")
    api_key = os.environ.get("ALPHACUT_API_KEY") or DEFAULT_API_KEY
    problem = settings_problem(host, api_key, os.environ.get("ALPHACUT_ALLOW_REMOTE") == "1")
    if problem:
        print(f"alphacut: {problem}", file=sys.stderr)
        return 2
    mail = os.environ.get("ALPHACUT_MAIL_DIR") or str(Path(".cache/mail").resolve())
    passed = {name: value for name, value in os.environ.items() if name in BILLING_VARIABLES}
    stack = LocalStack(
        port=int(os.environ.get("PORT", "3000")),
        host=host,
        api_key=api_key,
        log=lambda line: print(line, file=sys.stderr, flush=True),
        extra_env={**passed, "ALPHACUT_MAIL_DIR": mail},
    )
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    print("starting the local stack (moto, functions, gateway)...", file=sys.stderr, flush=True)
    try:
        stack.start()
    except Exception:
        stack.stop()
        raise
    print(
        f"alphacut is up at {stack.url}\n  API key: {stack.api_key}\n  moto (S3 etc.): {stack.moto_url}\n"
        f"  the page: {stack.url}/ (paste the key there), the reference: {stack.url}/docs\n"
        f"  remove.bg clients: point them at {stack.url}/v1.0/removebg\n"
        f"  mail (sign-up links, low-balance notices) is written to {mail}\n"
        f"  card payments: {passed.get('ALPHACUT_STRIPE_API_BASE') or 'off (set ALPHACUT_STRIPE_*)'}\n"
        "  keys: .venv/bin/python -m alphacut_dev.local.keys create --customer NAME "
        "--plan free|starter|business|credits (also import, rotate, revoke, list, migrate)\n"
        f"  try: curl -H 'x-api-key: {stack.api_key}' -H 'Content-Type: image/jpeg' "
        f"--data-binary @photo.jpg '{stack.url}/v1/cutout?return=binary' -o cutout.png\n"
        "Ctrl-C stops everything.",
        flush=True,
    )
    # where alphacut_dev.local.keys finds this stack's moto (removed again at exit)
    STACK_FILE.parent.mkdir(parents=True, exist_ok=True)
    env = {
        **stack.aws_env(),
        "USAGE_TABLE": stack.physical["UsageTable"],
        "KEY_HASH_SECRET_ARN": stack.physical["KeyHashSecret"],
        "CALLBACK_SECRET_ARN": stack.physical["CallbackSigningSecret"],
        "KEY_CALLBACK_SECRET_ARN": stack.physical["KeyCallbackSecret"],
    }
    STACK_FILE.write_text(json.dumps({"stack": STACK_NAME, "url": stack.url, "env": env}))
    stopping.wait()
    print("stopping...", file=sys.stderr, flush=True)
    STACK_FILE.unlink(missing_ok=True)
    stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
