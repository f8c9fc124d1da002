"""Reading user agents: browser and OS families and versions, as ua-parser's rules name them."""

import pytest

from engine.destinations import useragent
from engine.destinations.useragent import Reading, Software

CHROME_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_2) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/79.0.3945.117 Safari/537.36"
)


@pytest.mark.parametrize(
    ("agent", "browser", "system"),
    [
        (CHROME_MAC, ("Chrome", "79.0.3945.117"), ("Mac OS X", "10.15.2")),
        (
            "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
            ("Firefox", "121.0"),
            ("Linux", None),
        ),
        (
            "Mozilla/5.0 (Macintosh) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 "
            "Safari/605.1.15",
            ("Safari", "17.2"),
            None,
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
            "like Gecko) Version/17.2 Mobile/15E148 Safari/604.1",
            ("Mobile Safari", "17.2"),
            ("iOS", "17.2"),
        ),
        (CHROME_MAC + " Edg/120.0.2210.91", ("Edge", "120.0.2210.91"), ("Mac OS X", "10.15.2")),
        (
            "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
            "SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36",
            ("Samsung Internet", "23.0"),
            ("Android", "14"),
        ),
        (
            "Mozilla/5.0 (Windows NT 6.1; Trident/7.0; rv:11.0) like Gecko",
            ("IE", "11.0"),
            ("Windows", "7"),
        ),
        ("curl/8.0", ("curl", "8.0"), None),
        ("UA/1", None, None),
        ("", None, None),
    ],
)
def test_browser_and_system_are_read(
    agent: str, browser: tuple[str, str | None] | None, system: tuple[str, str | None] | None
) -> None:
    assert useragent.read(agent) == Reading(
        browser and Software(*browser), system and Software(*system)
    )


def test_only_the_start_of_an_overlong_agent_is_read() -> None:
    assert useragent.read(CHROME_MAC + "x" * 100_000).browser == Software("Chrome", "79.0.3945.117")
    assert useragent.read("x" * useragent.MAX_LENGTH + CHROME_MAC) == Reading(None, None)
