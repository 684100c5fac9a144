"""What callers see of the options stays what it was when they moved into one table (issue 56):
the OpenAPI documents (native and remove.bg's), the CLI's help, the options' normalised form
(``to_dict``) and the error each bad value gets, compared byte for byte with files written from
the code before the move (``tests/unit/golden``; ``python -m tests.unit.test_option_surfaces``
writes them again, for a change that means to alter what callers see).
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from alphacut.errors import InvalidOption
from alphacut.options import CutoutOptions

GOLDEN = Path(__file__).parent / "golden"

# one request per thing to show: every option given, and each kind of bad value
VALID = [
    {},
    {"type": "person", "format": "jpeg", "bg_color": "#00ff00"},
    {"format": "auto", "bg_color": "red"},
    {"format": "auto"},
    {"channels": "alpha", "size": "preview", "quality": "best"},
    {"size": "10mp", "roi": "10% 10% 90% 90%", "crop": "yes", "crop_margin": "12px 5%"},
    {"scale": "80%", "position": "top-left"},
    {"scale": "", "position": "", "roi": "", "bg_color": "", "bg_image_url": "", "shadow_angle": ""},
    {"position": "30% 70%", "target_width": "800", "target_height": "", "padding": "5% 2%", "fit": "cover"},
    {
        "upscale": "never",
        "shadow": "cast",
        "shadow_opacity": "70%",
        "shadow_softness": "10",
        "shadow_angle": "360",
        "shadow_distance": "5",
        "shadow_elevation": "30deg",
        "shadow_color": "#123",
    },
    {"shadow": "drop", "shadow_angle": "90°"},
    {"preset": "amazon"},
    {"preset": "ebay", "format": "png", "bg_color": "#eeeeee"},
    {"preset": "shopify", "upscale": "allow"},
    {"preset": ""},
    {"bg_image_url": " https://example.com/beach.jpg ", "format": "auto"},
    {"bg_color": "#ffffff80", "type": "stamp", "output": "both"},
    {"type": "costume", "output": "mask", "format": "webp"},
]
INVALID = [
    {"type": "dog"},
    {"output": "matte"},
    {"format": "gif"},
    {"format": "gif", "size": "huge"},
    {"size": "0.01MP"},
    {"quality": "great"},
    {"roi": "1 2 3"},
    {"roi": "50% 0 10% 100%"},
    {"bg_color": "#12345"},
    {"bg_color": "red", "bg_image_url": "https://example.com/a.jpg"},
    {"crop": "maybe"},
    {"crop_margin": "1 2 3"},
    {"crop_margin": "101%"},
    {"scale": "5%"},
    {"position": "middle"},
    {"target_width": "0"},
    {"target_height": "wide"},
    {"padding": "46%"},
    {"fit": "stretch"},
    {"upscale": "sometimes"},
    {"shadow": "soft"},
    {"shadow_opacity": "101"},
    {"shadow_elevation": "2"},
    {"shadow_color": "nope"},
    {"preset": "amazonia"},
    {"channels": "rgb"},
    {"channels": "alpha", "output": "image"},
    {"colour": "red"},
]


def option_answers() -> str:
    lines = []
    for params in VALID:
        lines.append(json.dumps([params, CutoutOptions.from_mapping(params).to_dict()]))
    for params in INVALID:
        try:
            CutoutOptions.from_mapping(params, strict=True)
            said: Any = "accepted"
        except InvalidOption as error:
            said = [error.field, str(error), error.limit]
        lines.append(json.dumps([params, said]))
    return "\n".join(lines) + "\n"


REMOVEBG = [
    {},
    {"size": "hd", "type": "car", "add_shadow": "true", "format": "jpg"},
    {"type": "product", "shadow_type": "3D", "preset": "amazon", "shadow_softness": "20"},
    {"target_width": "800", "padding": "5%", "fit": "cover", "channels": "alpha", "crop_margin": "10px"},
    {"crop_margin": "60%"},
    {"shadow_type": "soft"},
    {"type": "dog"},
    {"semitransparency": "sure"},
]


def removebg_answers() -> str:
    from alphacut.api.vendors.removebg import translate

    lines = []
    for params in REMOVEBG:
        try:
            said: Any = translate(params, {}, 1_000_000).to_dict()
        except InvalidOption as error:
            said = [error.field, str(error), error.limit]
        lines.append(json.dumps([params, said]))
    return "\n".join(lines) + "\n"


def cli_help(*argv: str) -> str:
    from alphacut.cli import build_parser

    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.MonkeyPatch.context() as patch:
        patch.setenv("COLUMNS", "100")
        with contextlib.suppress(SystemExit):
            build_parser().parse_args([*argv, "--help"])
    return out.getvalue()


def openapi(which: str) -> str:
    from alphacut.api import app

    routes = app.REMOVEBG_ROUTES if which == "removebg" else app.ROUTES + app.VENDOR_ROUTES
    document = app.build_openapi(routes, None)
    document["info"]["version"] = "-"  # the package's version is not the options' business
    return json.dumps(document, indent=1) + "\n"


SURFACES = {
    "openapi_native.json": lambda: openapi("native"),
    "openapi_removebg.json": lambda: openapi("removebg"),
    "cli_help.txt": lambda: cli_help() + cli_help("remove") + cli_help("eval"),
    "option_answers.jsonl": option_answers,
    "removebg_answers.jsonl": removebg_answers,
}


@pytest.mark.parametrize("name", list(SURFACES))
def test_what_callers_see_of_the_options_is_byte_for_byte_what_it_was(name):
    assert SURFACES[name]() == (GOLDEN / name).read_text()


if __name__ == "__main__":
    for name, make in SURFACES.items():
        (GOLDEN / name).write_text(make())
        print(f"wrote {GOLDEN / name}", file=sys.stderr)
