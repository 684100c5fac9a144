"""The image_url fetcher's address rules (no network needed for the refusals)."""

import pytest

from alphacut.errors import UrlNotAllowed
from alphacut.urlfetch import fetch_image


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/", "http://localhost:8080/x.jpg", "http://10.1.2.3/", "http://192.168.0.1/",
    "http://172.16.5.4/", "http://169.254.169.254/latest/meta-data/", "http://[::1]/", "http://[fe80::1]/",
    "http://0.0.0.0/", "http://[::ffff:127.0.0.1]/", "gopher://example.com/", "file:///etc/passwd", "//no-scheme/x",
])
def test_refused(url):
    with pytest.raises(UrlNotAllowed) as error:
        fetch_image(url, max_bytes=1000, timeout=2)
    assert error.value.field == "image_url"
