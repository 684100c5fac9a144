"""One pace for all of a client's workers, learned from what the service's answers say.

Workers that each retry their own 429 after ``Retry-After`` wake together and are refused
together; items run out of retries while the key's rate is spent on refusals. Instead every send
of a ``Client`` takes its turn here, and every answer tells the pacer what it says of the limits:

- the IETF RateLimit fields (draft-ietf-httpapi-ratelimit-headers): ``RateLimit-Policy``
  (``"rate";q=2;w=1``: 2 requests a 1-second window; draft 7's ``2;w=1`` too) sets the spacing of
  sends (w / q seconds, the strictest window of a minute or less, with a margin); ``RateLimit``
  (``"day";r=0;t=3600``) holds every send while a window has nothing left; draft 7's
  ``RateLimit-Limit`` / ``-Remaining`` / ``-Reset`` (seconds) likewise;
- remove.bg's ``X-RateLimit-Remaining: 0`` with ``X-RateLimit-Reset`` (a Unix time);
- ``Retry-After`` (seconds or an HTTP date) on a 429: nobody sends before then. Where the service
  says no rate at all, a 429 also doubles the spacing and each success shortens it by a twentieth;
  where it states a rate faster than a second, its whole-second "1" is read as the next slot and
  the pace widens by a tenth (back by a hundredth a success).

Before the first answer one request goes alone: the answer says the rate, so a batch does not
open with a burst of refusals.

Usage::

    pacer = Pacer()
    pacer.turn(deadline)      # before each send, from any worker (raises DeadlineExceeded)
    pacer.learn(response)     # after each attempt (None: no answer came back)
"""

from __future__ import annotations

import email.utils
import re
import threading
import time
from collections.abc import Callable, Mapping

SHORT_WINDOW = 60.0  # a policy window up to this sets the pace; longer ones (a day's quota) hold only
MARGIN = 1.05  # sends spaced a little wider than the rate: the service's clock is not ours
UNKNOWN_RATE_FLOOR = 0.05  # seconds: the first spacing a 429 sets where the service says no rate
DEFAULT_HOLD = 1.0  # seconds: a 429 without Retry-After


class DeadlineExceeded(Exception):
    """The caller's deadline comes before this send's turn: the item is not sent."""

    def __init__(self, wait: float):
        super().__init__(f"the next send's turn is {wait:.1f} s away, past the deadline")
        self.wait = wait


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds: a number, or an HTTP date (RFC 9110)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


_ITEM = re.compile(
    r'\s*("(?:[^"\\]|\\.)*"|[^;,]*)((?:\s*;\s*[A-Za-z0-9_*.-]+(?:=(?:"[^"]*"|[^;,]*))?)*)\s*(?:,|$)'
)


def structured_list(value: str) -> list[tuple[str, dict[str, str]]]:
    """A structured field list (RFC 9651) as (item, parameters): enough of it for RateLimit's
    fields, whose items are strings or integers with ``q``, ``w``, ``r``, ``t`` parameters."""
    items = []
    for match in _ITEM.finditer(value or ""):
        item, params = match.group(1).strip(), match.group(2)
        if not item and not params:
            continue
        found = {}
        for part in params.split(";"):
            if "=" in part:
                key, _, raw = part.partition("=")
                found[key.strip()] = raw.strip().strip('"')
        items.append((item.strip('"'), found))
    return items


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class Pacer:
    """Shared by a client's threads; ``clock`` and ``sleep`` stand in for time in tests."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        wall: Callable[[], float] = time.time,
    ):
        self.clock, self.sleep, self.wall = clock, sleep, wall
        self._lock = threading.Condition()
        self.spacing = 0.0  # seconds between two sends
        self.rate_said = False  # the service said its rate (else the spacing is learned from 429s)
        self._stated = 0.0  # the spacing the service's rate gives, with the margin
        self._widened = 1.0  # how much wider than stated 429s at the stated rate made it (1 to 2)
        self._next = 0.0  # the clock's time of the next send
        self._last = 0.0  # the clock's time of the last send
        self._hold = 0.0  # nobody sends before this
        self._answered = False  # an answer came back: the pace is known as well as it will be
        self._probing = False  # the first request is out, alone

    def turn(self, deadline: float | None = None) -> None:
        """Wait for this send's turn; ``deadline`` (the clock's time): raise ``DeadlineExceeded``
        instead of waiting past it."""
        with self._lock:
            while self._probing and not self._answered:
                self._lock.wait(timeout=1.0)
            if not self._answered:
                self._probing = True
            now = self.clock()
            at = max(now, self._next, self._hold)
            if deadline is not None and at > deadline:
                raise DeadlineExceeded(at - now)
            self._next, self._last = at + self.spacing, at
        if at > now:
            self.sleep(at - now)

    def learn(self, status: int | None, headers: Mapping[str, str] | None = None) -> float | None:
        """What one answer says (``status`` None: no answer came back). Returns the seconds the
        answer holds every send for (a 429's wait, a spent window's reset), or None."""
        headers = headers or {}
        with self._lock:
            self._answered = True
            self._lock.notify_all()
            if status is None:
                return None
            self._learn_rate(headers)
            hold = self._spent_window(headers)
            if status == 429:
                said = retry_after_seconds(headers.get("Retry-After"), self.wall())
                hold = max(hold or 0.0, self._limited_for(said))
            elif self.rate_said:
                self._widened = max(1.0, self._widened * 0.99)
            else:
                self.spacing *= 0.95
            if self.rate_said:
                self.spacing = self._stated * self._widened
            if hold:
                self._hold = max(self._hold, self.clock() + hold)
            return hold

    def _limited_for(self, said: float | None) -> float:
        """How long a 429 holds every send. Retry-After is whole seconds: from a key whose stated
        rate is faster than one a second, "1" means the next slot, and holding a whole second would
        spend ten of a 10-a-second key's slots on one refusal; the pace widens a tenth instead (a
        refusal at the stated rate: the service's clock saw two calls closer than ours). Longer
        waits (a quota, a spent budget), and any wait where no rate is stated, are held in full."""
        if self.rate_said and (said is None or said <= 1.0):
            self._widened = min(2.0, self._widened * 1.1)
            return max(self._stated * self._widened, said if self._stated >= 1.0 and said else 0.0)
        if not self.rate_said:
            self.spacing = max(2 * self.spacing, UNKNOWN_RATE_FLOOR)
        return said if said is not None else DEFAULT_HOLD

    def _learn_rate(self, headers: Mapping[str, str]) -> None:
        """The strictest short window of ``RateLimit-Policy`` sets the spacing."""
        spacing = None
        for item, params in structured_list(headers.get("RateLimit-Policy", "")):
            # "rate";q=2;w=1, or draft 7's 2;w=1 (the item itself the quota)
            quota, window = _number(params.get("q")) or _number(item), _number(params.get("w"))
            if quota and window and window <= SHORT_WINDOW:
                spacing = max(spacing or 0.0, window / quota)
        if spacing is not None:
            self._stated, self.rate_said = spacing * MARGIN, True
            self.spacing = self._stated * self._widened
            self._next = max(self._next, self._last + self.spacing)  # the pace from the last send on

    def _spent_window(self, headers: Mapping[str, str]) -> float | None:
        """Seconds until a window with nothing left resets, where an answer says so."""
        waits = [
            _number(params.get("t")) or 0.0
            for _, params in structured_list(headers.get("RateLimit", ""))
            if _number(params.get("r")) == 0
        ]
        if _number(headers.get("RateLimit-Remaining")) == 0:
            waits.append(_number(headers.get("RateLimit-Reset")) or 0.0)
        if _number(headers.get("X-RateLimit-Remaining")) == 0:
            reset = _number(headers.get("X-RateLimit-Reset"))
            waits.append(max(0.0, reset - self.wall()) if reset is not None else 0.0)
        return max(waits) if waits else None
