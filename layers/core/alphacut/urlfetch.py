"""Fetch an image from a client-given URL without letting the client reach our own network (SSRF).

What is checked from the URL alone (a 400 that names the problem): http or https, a valid host
name (at most 253 characters, labels of at most 63), a port of 80 or 443 (others only where a
setting allows them). What is checked on the network: every address the host resolves to must be
public (no private, loopback, link-local, multicast, reserved or unspecified address, v4 or v6,
nor an IPv6 address that embeds a private IPv4 one: mapped, compatible, 6to4, Teredo, NAT64);
the connection goes to the checked address (so a second DNS answer cannot swap it), each
redirect is checked the same way, and the body is capped at ``max_bytes`` while it streams. The
whole fetch (DNS, connect, redirects, body) has one deadline, so a server that drips its answer
cannot hold the function.

Every refusal or failure on the network gets one and the same answer (``UrlFetchFailed``,
``GENERIC_FAILURE``): the API must not tell a caller which hosts resolve, which ports are open or
what a server answered (a port scanner); the details go to the log.

Usage::

    data = fetch_image("https://example.com/shoe.jpg", max_bytes=15 * 2**20, timeout=10)
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import logging
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, Self
from urllib.parse import urljoin, urlsplit

from alphacut.errors import AlphacutError, ImageTooLarge, UrlFetchFailed, UrlNotAllowed

MAX_REDIRECTS = 5
FIELD = "image_url"
USER_AGENT = "alphacut-fetch/1"
DEFAULT_PORTS = frozenset({80, 443})
MAX_HOST_LENGTH = 253
MAX_URL_LENGTH = 4096
# RFC 3986 after the host: path characters, then ?query, then #fragment, each percent-encoded where
# it must be (the OpenAPI documents' URL pattern says the same)
URI_CHARACTER = r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|%[0-9A-Fa-f]{2})"
AFTER_HOST_PATTERN = rf"(?:/{URI_CHARACTER}*)?(?:\?(?:{URI_CHARACTER}|\?)*)?(?:#(?:{URI_CHARACTER}|\?)*)?"
AFTER_HOST = re.compile(f"^{AFTER_HOST_PATTERN}$")
# what ``parse_url`` reads, as the OpenAPI documents say it so that a schema-valid value is one it
# reads: http(s) to a DNS name (an IP literal is refused unless public; names must also resolve to
# public addresses, which no schema can say), port 80 or 443
URL_PATTERN = (
    # up to four labels of at most 46 characters and a top-level name: within DNS's 253
    r"^[Hh][Tt][Tt][Pp][Ss]?://([A-Za-z0-9]([A-Za-z0-9-]{0,44}[A-Za-z0-9])?\.){1,4}[A-Za-z]{2,63}(:(80|443))?"
    f"{AFTER_HOST_PATTERN}$"
)
IMAGE_URL: dict[str, Any] = {
    "type": "string",
    "format": "uri",
    "pattern": URL_PATTERN,
    "maxLength": MAX_URL_LENGTH,
}
CHUNK = 64 * 1024
GENERIC_FAILURE = (
    "could not be fetched: it must be a public http(s) URL on port 80 or 443 that answers "
    "200 with the image within the time limit"
)
HOST_LABEL = re.compile(rb"[A-Za-z0-9_-]+")
NAT64 = ipaddress.ip_network("64:ff9b::/96")
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
# translation prefixes Python counts as global that lead into some network's own IPv4 space:
# local-use NAT64 (RFC 8215) and SIIT's IPv4-translated addresses (RFC 2765)
TRANSLATION_PREFIXES = (ipaddress.ip_network("64:ff9b:1::/48"), ipaddress.ip_network("::ffff:0:0:0/96"))

logger = logging.getLogger(__name__)
_resolver = ThreadPoolExecutor(max_workers=4, thread_name_prefix="resolve")


class _NotPublic(Exception):
    """The host resolves to a private, loopback or link-local address: refused now and on any retry."""


class _Refused(Exception):
    """A network-side refusal or failure: answered as ``GENERIC_FAILURE``, logged in detail."""


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, Teredo client, NAT64, compatible)."""
    if address.ipv4_mapped:
        return address.ipv4_mapped
    if address.sixtofour:
        return address.sixtofour
    if address.teredo:
        return address.teredo[1]
    if address in NAT64 or (address in IPV4_COMPATIBLE and int(address) > 0xFFFF):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        if any(address in prefix for prefix in TRANSLATION_PREFIXES):
            return False
        inner = embedded_ipv4(address)
        if inner is not None:
            return is_public(inner)
    return address.is_global and not address.is_multicast


def check_host(host: str, field: str = FIELD) -> None:
    """A host name must be an IP literal or a valid DNS name (checked without the network)."""
    if len(host) > MAX_HOST_LENGTH:
        raise UrlNotAllowed(
            f"has a host name of {len(host)} characters; at most {MAX_HOST_LENGTH}",
            field=field,
            limit=MAX_HOST_LENGTH,
        )
    try:
        ipaddress.ip_address(host.split("%")[0])
        return
    except ValueError:
        pass
    try:
        labels = host.rstrip(".").encode("idna").split(b".")
    except UnicodeError:
        raise UrlNotAllowed("has a host name that is not valid", field=field) from None
    if not all(0 < len(label) <= 63 and HOST_LABEL.fullmatch(label) for label in labels):
        raise UrlNotAllowed(
            "has a host name that is not valid (letters, digits and hyphens in labels of 1 to 63 characters)",
            field=field,
        )


def parse_url(
    url: str,
    allowed_hosts: tuple[str, ...] = (),
    allowed_ports: Iterable[int] | None = (),
    field: str = FIELD,
) -> tuple[str, str, int]:
    """(scheme, host, port) of a URL that may be fetched, or ``UrlNotAllowed`` naming why not.
    ``allowed_ports`` None: any port."""
    if len(url) > MAX_URL_LENGTH:
        raise UrlNotAllowed(
            f"is {len(url)} characters long; at most {MAX_URL_LENGTH}", field=field, limit=MAX_URL_LENGTH
        )
    if any(not "!" <= character <= "~" for character in url):
        raise UrlNotAllowed(
            "must be printable ASCII without spaces: percent-encode any other character (RFC 3986)",
            field=field,
        )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UrlNotAllowed("is not a valid URL (its port or host part is malformed)", field=field) from None
    if not AFTER_HOST.match(url[len(parts.scheme) + 3 + len(parts.netloc) :]):
        raise UrlNotAllowed(
            "is not a valid URL (RFC 3986): its path, query or fragment holds a character that must be "
            "percent-encoded (such as a second #, [ or ]) or a % not followed by two hex digits",
            field=field,
        )
    if parts.scheme not in ("http", "https"):
        raise UrlNotAllowed(
            f"must be an http or https URL, not {parts.scheme[:20] or 'no scheme'}", field=field
        )
    if not parts.hostname:
        raise UrlNotAllowed("has no host", field=field)
    check_host(parts.hostname, field)
    port = port or (443 if parts.scheme == "https" else 80)
    if (
        allowed_ports is not None
        and port not in DEFAULT_PORTS | set(allowed_ports)
        and parts.hostname not in allowed_hosts
    ):
        raise UrlNotAllowed(f"uses port {port}: only 80 and 443 are fetched", field=field)
    return parts.scheme, parts.hostname, port


def origin(url: str) -> str:
    """What of a URL may be logged: scheme, host and port. Paths and queries hold presigned
    credentials and webhook tokens, which logs (kept 30 days) must not."""
    try:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")
    except ValueError:
        return "(a malformed URL)"


class Deadline:
    """One fetch's deadline, connect to last byte. A socket's timeout bounds each read alone, and a
    server that sends a byte before each one ends (in the TLS handshake, the headers or a chunk's
    size line) would renew it for ever; so at the deadline a timer shuts every guarded socket down,
    whatever read it is in, and the fetch fails (``expired``) instead of returning what it had.

    Usage::

        with Deadline(10) as deadline:
            sock = deadline.guard(socket.create_connection(address, deadline.left()))
    """

    def __init__(self, seconds: float):
        self.at = time.monotonic() + seconds
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(max(seconds, 0.0), self._expire)
        self._timer.daemon = True
        self._timer.start()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()

    def left(self) -> float:
        remaining = self.at - time.monotonic()
        if remaining <= 0 or self.expired:
            raise _Refused("the deadline passed")
        return remaining

    def guard[S: socket.socket](self, sock: S) -> S:
        """``sock``, shut down when the deadline passes (at once if it has)."""
        sock.settimeout(self.left())
        with self._lock:
            self._sockets.append(sock)
            if not self.expired:
                return sock
        _shut(sock)
        raise _Refused("the deadline passed")

    def check(self) -> None:
        """What was read may be cut short by the deadline's shutdown: refuse it then."""
        if self.expired:
            raise _Refused("the deadline passed before the answer ended")

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shut(sock)


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)  # wakes a read blocked on it (a close alone does not)
    except OSError:
        pass


def resolve_public(host: str, port: int, allowed_hosts: Iterable[str], deadline: Deadline) -> str:
    """The first address of ``host`` if all of them are public (or the host is explicitly allowed)."""
    future = _resolver.submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    try:
        infos = future.result(timeout=deadline.left())
    except FutureTimeout:
        raise _Refused(f"resolving {host} took too long") from None
    except (OSError, UnicodeError) as error:
        raise _Refused(f"{host} does not resolve: {error}") from None
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if host not in set(allowed_hosts):
        for address in addresses:
            if not is_public(address):
                raise _NotPublic(f"{host} points to {address}, not a public address")
    return str(addresses[0])


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, address: str, deadline: Deadline) -> None:
        super().__init__(host, port, timeout=deadline.left())
        self._address = address
        self._deadline = deadline

    def connect(self) -> None:
        self.sock = self._deadline.guard(
            socket.create_connection((self._address, self.port), self._deadline.left())
        )


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, address: str, deadline: Deadline) -> None:
        self._tls = ssl.create_default_context()
        super().__init__(host, port, timeout=deadline.left(), context=self._tls)
        self._address = address
        self._deadline = deadline

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self._deadline.left())
        # the certificate of the name; the handshake after the socket is guarded (it may drip too)
        tls = self._tls.wrap_socket(sock, server_hostname=self.host, do_handshake_on_connect=False)
        self.sock = self._deadline.guard(tls)
        tls.do_handshake()


def _connect(
    url: str, allowed: tuple[str, ...], ports: Iterable[int] | None, deadline: Deadline, field: str
) -> tuple[http.client.HTTPConnection, str]:
    """A connection to the checked address of ``url`` and the request path."""
    scheme, host, port = parse_url(url, allowed, ports, field)
    address = resolve_public(host, port, allowed, deadline)
    cls: type[_PinnedHTTPConnection | _PinnedHTTPSConnection]
    cls = _PinnedHTTPSConnection if scheme == "https" else _PinnedHTTPConnection
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return cls(host, port, address, deadline), path


def _read_body(
    sock: socket.socket, response: http.client.HTTPResponse, max_bytes: int, deadline: Deadline
) -> bytes:
    """The body in chunks, the socket's timeout set to what is left before each (``sock`` is the
    request's socket: the connection forgets it once the response says it will close)."""
    declared = response.getheader("Content-Length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise ImageTooLarge(
            f"is {declared} bytes; at most {max_bytes} are accepted", field=FIELD, limit=max_bytes
        )
    chunks: list[bytes] = []
    size = 0
    while True:
        sock.settimeout(deadline.left())
        chunk = response.read1(CHUNK)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > max_bytes:
            raise ImageTooLarge(f"is over {max_bytes} bytes", field=FIELD, limit=max_bytes)
        chunks.append(chunk)


def _fetch(
    url: str, max_bytes: int, deadline: Deadline, allowed: tuple[str, ...], ports: Iterable[int]
) -> bytes:
    for _ in range(MAX_REDIRECTS + 1):
        try:
            connection, path = _connect(url, allowed, ports, deadline, FIELD)
        except UrlNotAllowed as error:  # a redirect's target: what the server said, not the caller
            raise _Refused(f"redirected to {origin(url)}: {error}") from None
        try:
            connection.request("GET", path, headers={"User-Agent": USER_AGENT, "Accept": "image/*"})
            sock = connection.sock
            response = connection.getresponse()
            if response.status in (301, 302, 303, 307, 308):
                location = response.getheader("Location")
                if not location:
                    raise _Refused(f"redirect {response.status} without a Location")
                url = urljoin(url, location)
                continue
            if response.status != 200:
                raise _Refused(f"HTTP {response.status}")
            body = _read_body(sock, response, max_bytes, deadline)
            deadline.check()
            return body
        except (OSError, http.client.HTTPException) as error:
            raise _Refused(f"{error.__class__.__name__}: {error}") from None
        finally:
            connection.close()
    raise _Refused(f"more than {MAX_REDIRECTS} redirects")


def fetch_image(
    url: str,
    max_bytes: int,
    timeout: float = 10.0,
    allowed_hosts: Iterable[str] = (),
    allowed_ports: Iterable[int] = (),
    field: str = FIELD,
) -> bytes:
    """Download ``url`` (following at most 5 checked redirects) within ``timeout`` seconds in all.

    ``allowed_hosts`` names hosts exempt from the address and port checks: for tests and
    trusted internal sources, never for client input in production. ``field`` is the request
    field errors name (``image_url``, ``bg_image_url``).
    """
    try:
        return _fetch_checked(url, max_bytes, timeout, tuple(allowed_hosts), allowed_ports)
    except AlphacutError as error:
        error.field = field
        raise


def _fetch_checked(
    url: str, max_bytes: int, timeout: float, allowed: tuple[str, ...], allowed_ports: Iterable[int]
) -> bytes:
    parse_url(url, allowed, allowed_ports)  # what the URL itself gets wrong is said as it is
    try:
        with Deadline(timeout) as deadline:
            return _fetch(url, max_bytes, deadline, allowed, tuple(allowed_ports))
    except (_Refused, _NotPublic) as refused:
        logger.info("image_url refused or failed", extra={"detail": str(refused)})
        raise UrlFetchFailed(GENERIC_FAILURE, field=FIELD) from None


CALLBACK_REFUSED = (
    "cannot be delivered: a callback goes to a public http(s) address on port 80 or 443 whose name resolves"
)


def _callback_refused(refused: _NotPublic | _Refused, field: str) -> UrlNotAllowed:
    """One answer for every refused callback address: which hosts resolve, and to what, goes to
    the log, never to the caller (a caller must not map our network through it)."""
    logger.info("callback URL refused", extra={"detail": str(refused)})
    return UrlNotAllowed(CALLBACK_REFUSED, field=field)


def check_callback_url(
    url: str,
    allowed_hosts: Iterable[str] = (),
    timeout: float = 3.0,
    allowed_ports: Iterable[int] = (),
    field: str = "callback_url",
) -> None:
    """Refuse a callback URL at submission that could never be delivered: not http(s), a port
    other than 80 and 443 (a black-hole port would hold the callback slots through every retry), or
    a host that resolves to a private, loopback or link-local address (the metadata address
    included) or not at all; those last two get one answer. Delivery checks again (DNS can change
    between the two)."""
    allowed = tuple(allowed_hosts)
    _, host, port = parse_url(url, allowed, allowed_ports, field)
    try:
        with Deadline(timeout) as deadline:
            resolve_public(host, port, allowed, deadline)
    except (_NotPublic, _Refused) as refused:
        raise _callback_refused(refused, field) from None


def post_json(
    url: str,
    payload: dict[str, Any],
    timeout: float = 5.0,
    allowed_hosts: Iterable[str] = (),
    field: str = "callback_url",
    headers_for: Callable[[bytes], dict[str, str]] | None = None,
    allowed_ports: Iterable[int] = (),
) -> int:
    """POST ``payload`` as JSON to ``url`` under the same address and port rules, within one
    deadline (connect to last byte); redirects are not followed (a callback is delivered where it
    was registered). ``headers_for(body)``: headers made from the exact bytes sent (a signature).
    Returns the HTTP status; ``UrlNotAllowed`` where no retry can deliver (a non-public address, a
    port that is not 80 or 443), ``UrlFetchFailed`` where one may."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    extra = headers_for(body) if headers_for else {}
    try:
        with Deadline(timeout) as deadline:
            connection, path = _connect(url, tuple(allowed_hosts), tuple(allowed_ports), deadline, field)
            try:
                connection.request(
                    "POST",
                    path,
                    body=body,
                    headers={"User-Agent": USER_AGENT, "Content-Type": "application/json", **extra},
                )
                response = connection.getresponse()
                response.read(65536)
                deadline.check()
                return response.status
            finally:
                connection.close()
    except _NotPublic as refused:
        raise _callback_refused(refused, field) from None
    except (_Refused, OSError, http.client.HTTPException) as error:
        logger.info("callback failed", extra={"detail": str(error)})
        raise UrlFetchFailed("could not be reached", field=field) from None
