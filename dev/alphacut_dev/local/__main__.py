"""``python -m alphacut_dev.local``: the whole service on http://127.0.0.1:3000 until Ctrl-C.

PORT overrides the port; ALPHACUT_API_KEY the local API key (default below, printed at start).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading

from alphacut.cli import LOCAL_STACK_FILE
from alphacut_dev.local.stack import DEFAULT_API_KEY, STACK_NAME, LocalStack


def main() -> int:
    stack = LocalStack(port=int(os.environ.get("PORT", "3000")),
                       host=os.environ.get("HOST", "127.0.0.1"),
                       api_key=os.environ.get("ALPHACUT_API_KEY") or DEFAULT_API_KEY,
                       log=lambda line: print(line, file=sys.stderr, flush=True))
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    print("starting the local stack (moto, functions, gateway)...", file=sys.stderr, flush=True)
    try:
        stack.start()
    except Exception:
        stack.stop()
        raise
    print(f"alphacut is up at {stack.url}\n  API key: {stack.api_key}\n  moto (S3 etc.): {stack.moto_url}\n"
          "  keys: .venv/bin/alphacut keys --local create --customer NAME --plan free|starter|business\n"
          f"  try: curl -H 'x-api-key: {stack.api_key}' -H 'Content-Type: image/jpeg' "
          f"--data-binary @photo.jpg '{stack.url}/v1/cutout?return=binary' -o cutout.png\n"
          "Ctrl-C stops everything.", flush=True)
    # where `alphacut keys --local` finds this stack's moto (removed again at exit)
    LOCAL_STACK_FILE.parent.mkdir(parents=True, exist_ok=True)
    LOCAL_STACK_FILE.write_text(json.dumps({"stack": STACK_NAME, "url": stack.url, "env": stack.aws_env()}))
    stopping.wait()
    print("stopping...", file=sys.stderr, flush=True)
    LOCAL_STACK_FILE.unlink(missing_ok=True)
    stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
