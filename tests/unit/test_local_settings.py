"""`make serve` refuses settings that would expose the stack or that API Gateway would refuse,
with a sentence instead of a traceback."""

from alphacut_dev.local.__main__ import settings_problem

KEY = "k" * 20


def test_loopback_hosts_are_fine():
    for host in ("127.0.0.1", "127.0.0.2", "::1", "localhost"):
        assert settings_problem(host, KEY, allow_remote=False) is None


def test_a_host_on_the_network_needs_the_flag():
    problem = settings_problem("0.0.0.0", KEY, allow_remote=False)
    assert "ALPHACUT_ALLOW_REMOTE=1" in problem
    assert settings_problem("0.0.0.0", KEY, allow_remote=True) is None


def test_a_short_api_key_is_named():
    assert "at least 20" in settings_problem("127.0.0.1", "short", allow_remote=False)
