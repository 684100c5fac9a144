"""Past API Gateway's 10,000 API keys: 12,000 keys imported with ``alphacut keys import`` on the local
stack (CSV in, CSV out), the first and the last known to both APIs, a revoked one refused once the
authorizer's cache of it ends, and no API Gateway API key made for any of them."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
import time
from pathlib import Path

import pytest
from alphacut_dev.local.stack import STACK_NAME

from tests.stack_fixtures import CREDIT_PLAN, Api, cli_env

ALPHACUT = Path(sys.executable).with_name("alphacut")
KEYS = 12_000


@pytest.mark.slow
def test_twelve_thousand_imported_keys_are_each_known_and_a_revoked_one_is_refused_within_the_ttl(
    stack, admin, small_photo, tmp_path
):
    source = tmp_path / "shops.csv"
    # the first and the last on credits (an account each), the rest on a quota plan
    plans = [CREDIT_PLAN] + ["bulk"] * (KEYS - 2) + [CREDIT_PLAN]
    source.write_text("customer,plan\n" + "".join(f"shop-{n:05d},{plan}\n" for n, plan in enumerate(plans)))
    env = cli_env(stack)
    gateway_keys = len(stack.client("apigateway").get_api_keys(limit=500)["items"])
    started = time.perf_counter()
    imported = subprocess.run(
        [str(ALPHACUT), "keys", "--stack", STACK_NAME, "import", str(source)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    seconds = time.perf_counter() - started
    assert imported.returncode == 0, imported.stderr[-2000:]
    rows = list(csv.reader(io.StringIO(imported.stdout)))
    assert rows[0] == ["key_id", "customer", "plan", "key"] and len(rows) == KEYS + 1
    assert KEYS / seconds >= 100, f"{KEYS / seconds:.0f} keys a second"  # a sign-up burst's pace
    assert len(stack.client("apigateway").get_api_keys(limit=500)["items"]) == gateway_keys  # none made
    first, last = Api(stack.url, rows[1][3], rows[1][0]), Api(stack.url, rows[-1][3], rows[-1][0])
    jpeg = {"Content-Type": "image/jpeg"}
    for key in (first, last):  # a credit key at 0: known, and refused for want of credits
        unpaid = key.post("/v1/cutout", data=small_photo, headers=jpeg)
        assert unpaid.status_code == 402 and unpaid.json()["error"]["code"] == "insufficient_credits"
        removebg = key.post("/v1.0/removebg", files={"image_file": ("p.jpg", small_photo, "image/jpeg")})
        assert removebg.status_code == 402 and removebg.json()["errors"][0]["code"] == "insufficient_credits"
    made_up = Api(stack.url, "ac_" + "x" * 40)
    assert made_up.post("/v1/cutout", data=small_photo, headers=jpeg).status_code == 401
    assert made_up.get("/v1.0/account").status_code == 403
    admin.revoke(last.key_id)
    time.sleep(float(stack.parameters["KeyCacheSeconds"]) + 0.5)
    assert last.get("/v1.0/account").status_code == 403 and first.get("/v1.0/account").status_code == 200
