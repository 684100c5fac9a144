from alphacut.errors import (
    AlphacutError,
    CorruptImage,
    ImageTooLarge,
    ImageTooSmall,
    InvalidOption,
    ModelUnavailable,
    UnsupportedImageFormat,
    http_status,
)


def test_each_error_has_its_status():
    assert http_status(InvalidOption("x", field="type")) == 400
    assert http_status(ImageTooLarge("x")) == 413
    assert http_status(UnsupportedImageFormat("x")) == 415
    assert http_status(CorruptImage("x")) == 422
    assert http_status(ImageTooSmall("x")) == 422
    assert http_status(ModelUnavailable("x")) == 500
    assert http_status(ValueError("boom")) == 500


def test_error_body_names_field_and_limit():
    error = ImageTooLarge("is too big", field="image", limit=100)
    assert error.to_dict() == {
        "code": "image_too_large",
        "message": "image: is too big",
        "field": "image",
        "limit": 100,
    }
    assert isinstance(error, AlphacutError)
