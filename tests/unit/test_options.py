import pytest
from alphacut.errors import InvalidOption
from alphacut.options import CutoutOptions, ImageFormat, Length, OutputKind, SubjectType


def test_defaults():
    options = CutoutOptions()
    assert options.type is SubjectType.AUTO and options.output is OutputKind.IMAGE
    assert options.format is ImageFormat.PNG and options.background is None
    assert not options.crop and not options.resizes


def test_from_mapping_normalises_strings():
    options = CutoutOptions.from_mapping(
        {
            "type": "Person",
            "format": "JPEG",
            "output": "both",
            "bg_color": "00ff00",
            "crop": "1",
            "crop_margin": "5%",
            "target_width": "300",
        }
    )
    assert options.type is SubjectType.PERSON and options.format is ImageFormat.JPG
    assert options.bg_color == (0, 255, 0) and options.crop is True
    assert options.crop_margin == Length(5, percent=True) and options.target_width == 300


def test_jpg_defaults_to_white_background():
    assert CutoutOptions(format="jpg").background == (255, 255, 255)
    assert CutoutOptions(format="jpg", bg_color="#123").background == (0x11, 0x22, 0x33)


@pytest.mark.parametrize(
    "params,field",
    [
        ({"type": "cat"}, "type"),
        ({"output": "video"}, "output"),
        ({"format": "gif"}, "format"),
        ({"bg_color": "not-a-colour"}, "bg_color"),
        ({"bg_color": "#ff00008"}, "bg_color"),
        ({"size": "huge"}, "size"),
        ({"size": "500MP"}, "size"),
        ({"roi": "0 0 100"}, "roi"),
        ({"roi": "50% 0% 10% 100%"}, "roi"),
        ({"roi": "0% 0% 120% 100%"}, "roi"),
        ({"scale": "5%"}, "scale"),
        ({"scale": "big"}, "scale"),
        ({"position": "leftish"}, "position"),
        ({"position": "10% 20% 30%"}, "position"),
        ({"channels": "rgb"}, "channels"),
        ({"channels": "alpha", "output": "image"}, "channels"),
        ({"crop_margin": "1px 2px 3px"}, "crop_margin"),
        ({"bg_color": "red", "bg_image_url": "https://x.test/a.jpg"}, "bg_color"),
        ({"crop": "maybe"}, "crop"),
        ({"crop_margin": "-3"}, "crop_margin"),
        ({"crop_margin": "150%"}, "crop_margin"),
        ({"target_width": "wide"}, "target_width"),
        ({"target_height": "0"}, "target_height"),
        ({"target_width": "5000"}, "target_width"),
    ],
)
def test_bad_values_name_the_field(params, field):
    with pytest.raises(InvalidOption) as error:
        CutoutOptions.from_mapping(params)
    assert error.value.field == field
    assert field in str(error.value)


def test_strict_refuses_unknown_parameters():
    with pytest.raises(InvalidOption) as error:
        CutoutOptions.from_mapping({"fromat": "png"}, strict=True)
    assert error.value.field == "fromat"
    assert CutoutOptions.from_mapping({"fromat": "png"}).format is ImageFormat.PNG


def test_colour_names_and_short_hex():
    assert CutoutOptions(bg_color="white").bg_color == (255, 255, 255)
    assert CutoutOptions(bg_color="#f00").bg_color == (255, 0, 0)


def test_margin_pixels():
    assert Length(12).pixels(500) == 12
    assert Length(10, percent=True).pixels(500) == 50


def test_to_dict_round_trips():
    options = CutoutOptions(
        type="stamp",
        format="webp",
        bg_color="#010203",
        crop=True,
        crop_margin="4px",
        target_width=200,
        target_height=100,
    )
    assert CutoutOptions.from_mapping(options.to_dict()) == options
