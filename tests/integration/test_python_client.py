"""The Python client (clients/python) and ``alphacut remove --api`` against the local stack."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from alphacut_client import ApiError, Client
from alphacut_dev.local.stack import STACK_NAME
from PIL import Image

from tests.stack_fixtures import new_key
from tests.waiting import wait_until

ALPHACUT = Path(sys.executable).with_name("alphacut")


def _charged_today(client: Client, route: str) -> int:
    day = time.strftime("%Y-%m-%d", time.gmtime())
    days = client.usage(day, day)["days"]
    return days[0]["routes"].get(route, {}).get("charged", 0) if days else 0


@pytest.fixture(scope="module")
def client(stack, admin) -> Client:
    return Client(stack.url, new_key(admin, stack).key)


def test_cutout_selfie_costume_tasks_and_usage(client, photo, image_server):
    cut = client.cutout(photo, format="webp", crop=True)
    assert cut.found and cut.charge and Image.open(io.BytesIO(cut.image)).format == "WEBP"
    assert cut.model == "isnet" and client.cutout(photo, model="u2netp").model == "u2netp"
    assert client.selfie(image_server.url("photo.jpg"), output="mask").mask is not None
    outfit = client.costume(photo, classes=["tops", "pants"])
    assert [entry["class"] for entry in outfit["classes"]] == ["tops", "pants"]
    done = client.wait(client.submit(photo, output="mask"), timeout=120)
    assert done["state"] == 1 and done["mask"].startswith("http")
    chosen = client.wait(client.submit(photo, output="mask", model="u2netp"), timeout=120)
    assert chosen["state"] == 1 and chosen["mask"].startswith("http")
    assert client.usage()["total"]["charged"] >= 4


def test_errors_carry_the_api_code_field_and_limit(client, photo):
    with pytest.raises(ApiError) as error:
        client.cutout(photo, target_width=99999)
    assert (error.value.status, error.value.code, error.value.field) == (
        400,
        "invalid_option",
        "target_width",
    )
    assert error.value.limit == [1, 4096]


class DroppedAnswers(requests.Session):
    """Delivers the request, then loses the first ``drops`` answers: the API did the work and
    the client never heard of it."""

    def __init__(self, drops: int):
        super().__init__()
        self.drops = drops

    def send(self, *args, **kwargs):
        response = super().send(*args, **kwargs)
        if self.drops > 0:
            self.drops -= 1
            raise requests.ConnectionError("answer lost on the way back")
        return response


def test_a_retry_after_a_lost_answer_is_answered_from_the_first_and_charged_once(stack, admin, photo):
    key = new_key(admin, stack).key
    session = DroppedAnswers(drops=0)
    client = Client(stack.url, key, session=session, backoff=0.1)
    before = _charged_today(client, "/v1/cutout")
    session.drops = 1
    result = client.cutout(photo, output="mask")
    assert result.mask is not None and not result.charge  # the replay says it charged nothing more
    assert _charged_today(client, "/v1/cutout") == before + 1


def test_a_batch_at_the_keys_rate_completes_and_charges_each_image_once(admin, stack, tmp_path, photo):
    folder = tmp_path / "photos"
    folder.mkdir()
    small = Image.open(io.BytesIO(photo)).resize((200, 300))
    for index in range(10):
        small.save(folder / f"p{index}.jpg")
    # a plan of one request a second, no burst, and six workers: each retrying its own 429s after
    # Retry-After (the client before its pacer), they woke together and items ran out of retries
    stack.client("apigateway").create_usage_plan(
        name=f"{STACK_NAME}-one-a-second", throttle={"rateLimit": 1.0, "burstLimit": 1}
    )
    admin._plans = None  # the plan just made, read again (and written to the catalogue)
    client = Client(stack.url, new_key(admin, stack, "one-a-second").key, retries=0)
    before = _charged_today(client, "/v1/cutout")
    seen: list[int] = []
    items = client.batch(
        sorted(folder.iterdir()),
        tmp_path / "out",
        concurrency=6,
        output="mask",
        progress=lambda done, total, item: seen.append(done),
        deadline=120,
    )
    assert [item.error for item in items if not item.ok] == [] and seen == list(range(1, 11))
    # the service said its rate (RateLimit-Policy) and every worker took its turn at it: its 1.05 s,
    # widened a tenth for each refusal a late packet caused (the gateway's clock saw two sends
    # closer than ours), never past twice
    assert client.pacer.rate_said and 1.05 - 1e-9 <= client.pacer.spacing <= 2 * 1.05
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == [f"p{i}.png" for i in range(10)]
    wait_until(lambda: _charged_today(client, "/v1/cutout") == before + 10, "each image charged once")


def test_the_cli_cuts_a_folder_out_through_a_deployed_api(stack, admin, tmp_path, eval_dir):
    inputs = tmp_path / "in"
    inputs.mkdir()
    photos = sorted((eval_dir / "person" / "images").iterdir())[:3]
    for source in photos:
        shutil.copy(source, inputs / source.name)
    (inputs / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a whole jpeg")
    key = new_key(admin, stack).key
    done = subprocess.run(
        [
            str(ALPHACUT),
            "remove",
            str(inputs),
            "-o",
            str(tmp_path / "out"),
            "--api",
            stack.url,
            "--key",
            key,
            "--format",
            "jpg",
            "--bg-color",
            "#00ff00",
            "--concurrency",
            "3",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 1
    failures = [line for line in done.stderr.splitlines() if line.startswith("alphacut: ")]
    assert len(failures) == 1 and "broken.jpg" in failures[0] and "invalid_image" in failures[0]
    for source in photos:
        result = Image.open(tmp_path / "out" / f"{source.stem}.jpg")
        assert result.mode == "RGB" and result.size == Image.open(source).size
    no_key = subprocess.run(
        [str(ALPHACUT), "remove", str(inputs), "-o", str(tmp_path / "x"), "--api", stack.url],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin"},
    )
    assert no_key.returncode == 2 and "--key" in no_key.stderr
