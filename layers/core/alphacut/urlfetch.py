"""Fetch an image from a client-given URL without letting the client reach our own network (SSRF).

Only http and https; the host is resolved here and every address it resolves to must be public
(no private, loopback, link-local, multicast, reserved or unspecified addresses, v4 or v6);
the connection goes to the checked address (so a second DNS answer cannot swap it), and each
redirect is checked the same way. The body is capped at ``max_bytes`` while it streams.

Usage::

    data = fetch_image("https://example.com/shoe.jpg", max_bytes=15 * 2**20)
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import socket
import ssl
from collections.abc import Iterable
from urllib.parse import urljoin, urlsplit

from alphacut.errors import ImageTooLarge, UrlFetchFailed, UrlNotAllowed

MAX_REDIRECTS = 5
FIELD = "image_url"
USER_AGENT = "alphacut-fetch/1"


def _is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def resolve_public(host: str, port: int, allowed_hosts: Iterable[str] = (), field: str = FIELD) -> str:
    """The first address of ``host`` if all of them are public (or the host is explicitly allowed)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise UrlFetchFailed(f"host {host!r} cannot be resolved ({error.strerror})", field=field) from None
    addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    if host not in set(allowed_hosts):
        for address in addresses:
            if not _is_public(address):
                raise UrlNotAllowed(f"points to {address}, a private, loopback or link-local address",
                                    field=field)
    return str(addresses[0])


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host, port, address, timeout):
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self):
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host, port, address, timeout):
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self):
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # certificate of the name


def _connect(url: str, allowed: tuple[str, ...], timeout: float, field: str):
    """A connection to the checked address of ``url`` and the request path."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise UrlNotAllowed(f"must be an http or https URL, not {parts.scheme or 'no scheme'}", field=field)
    if not parts.hostname:
        raise UrlNotAllowed("has no host", field=field)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    address = resolve_public(parts.hostname, port, allowed, field)
    cls = _PinnedHTTPSConnection if parts.scheme == "https" else _PinnedHTTPConnection
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return cls(parts.hostname, port, address, timeout), path


def fetch_image(url: str, max_bytes: int, timeout: float = 10.0, allowed_hosts: Iterable[str] = ()) -> bytes:
    """Download ``url`` (following at most 5 checked redirects) and return its body.

    ``allowed_hosts`` names hosts exempt from the address check: for tests and trusted
    internal sources, never for client input in production.
    """
    allowed = tuple(allowed_hosts)
    for _ in range(MAX_REDIRECTS + 1):
        connection, path = _connect(url, allowed, timeout, FIELD)
        try:
            connection.request("GET", path, headers={"User-Agent": USER_AGENT, "Accept": "image/*"})
            response = connection.getresponse()
            if response.status in (301, 302, 303, 307, 308):
                location = response.getheader("Location")
                if not location:
                    raise UrlFetchFailed(f"redirect {response.status} without a Location", field=FIELD)
                url = urljoin(url, location)
                continue
            if response.status != 200:
                raise UrlFetchFailed(f"the server answered HTTP {response.status}", field=FIELD)
            declared = response.getheader("Content-Length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise ImageTooLarge(f"is {declared} bytes; at most {max_bytes} are accepted", field=FIELD,
                                    limit=max_bytes)
            body = response.read(max_bytes + 1)
            if len(body) > max_bytes:
                raise ImageTooLarge(f"is over {max_bytes} bytes", field=FIELD, limit=max_bytes)
            return body
        except (OSError, http.client.HTTPException) as error:
            raise UrlFetchFailed(f"could not be downloaded ({error.__class__.__name__}: {error})",
                                 field=FIELD) from None
        finally:
            connection.close()
    raise UrlFetchFailed(f"more than {MAX_REDIRECTS} redirects", field=FIELD)


def post_json(url: str, payload: dict, timeout: float = 5.0, allowed_hosts: Iterable[str] = (),
              field: str = "callback_url") -> int:
    """POST ``payload`` as JSON to ``url`` under the same address rules; redirects are not
    followed (a callback is delivered where it was registered). Returns the HTTP status."""
    connection, path = _connect(url, tuple(allowed_hosts), timeout, field)
    body = json.dumps(payload, separators=(",", ":")).encode()
    try:
        connection.request("POST", path, body=body, headers={"User-Agent": USER_AGENT,
                                                              "Content-Type": "application/json"})
        response = connection.getresponse()
        response.read(65536)
        return response.status
    except (OSError, http.client.HTTPException) as error:
        raise UrlFetchFailed(f"could not be reached ({error.__class__.__name__}: {error})", field=field) from None
    finally:
        connection.close()
