"""The real browser SDKs in a real Chromium, on a site of another origin, loaded from the
gateway (`sluice sdk install` fills its SDK directory from the npm registry): every request
the page makes goes to the site or to Sluice, and the events arrive."""

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from e2e.conftest import run
from engine import specs
from engine.control import workspace
from engine.db import connection
from tests.conftest import WRITE_KEY, ingested
from tests.servers import GatewayProcess, start_gateway
from tests.site import site


@pytest.fixture(scope="module")
def sdk_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("sdk") / "sdk"
    done = subprocess.run(
        [sys.executable, "-m", "appliance", "sdk", "install"],
        env={**os.environ, "SLUICE_SDK_DIR": str(directory), "SLUICE_CONFIG": os.devnull},
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return directory


@pytest.fixture
def sdk_gateway(database_url: str, workdir: Path, sdk_dir: Path) -> Iterator[GatewayProcess]:
    async def configure() -> None:
        async with connection(database_url) as conn:
            await workspace.apply(
                conn, specs.parse(f"sources: [{{name: website, write_key: {WRITE_KEY}}}]")
            )

    run(configure())
    gateway = start_gateway(database_url, workdir, {"sdk_dir": str(sdk_dir)})
    try:
        yield gateway
    finally:
        gateway.stop()


def visit(browser: Browser, url: str, database_url: str, expected: set[str]) -> list[str]:
    """Open the page and wait for the `expected` events; the URLs it requested."""
    context = browser.new_context()
    requested: list[str] = []
    page = context.new_page()
    page.on("request", lambda request: requested.append(request.url))
    try:
        page.goto(url)
        deadline = time.monotonic() + 30
        while not expected <= {_name(r["payload"]) for r in ingested(database_url)}:
            assert time.monotonic() < deadline, f"events never arrived; requested {requested}"
            page.wait_for_timeout(100)
    finally:
        context.close()
    return requested


def _name(payload: dict[str, object]) -> str:
    return str(payload.get("event") or payload.get("type"))


def test_rudderstack_v3_loads_from_the_gateway_and_sends_there(
    browser: Browser, sdk_gateway: GatewayProcess, database_url: str
) -> None:
    gw = sdk_gateway.url
    html = f"""<!doctype html><html><body>
<script src="{gw}/sdk/rudderstack/v3/modern/analytics.js"></script>
<script>
  const analytics = new window.rudderanalytics.RudderAnalytics();
  analytics.load("{WRITE_KEY}", "{gw}", {{configUrl: "{gw}", logLevel: "ERROR"}});
  analytics.page();
  analytics.track("RudderStack Loaded", {{via: "sluice"}});
</script></body></html>"""
    with site(html) as url:
        requested = visit(browser, url, database_url, {"RudderStack Loaded", "page"})
    assert [u for u in requested if not u.startswith((url, gw))] == []
    track = next(r for r in ingested(database_url) if _name(r["payload"]) == "RudderStack Loaded")
    assert track["payload"]["properties"] == {"via": "sluice"}
    assert track["payload"]["context"]["library"]["name"] == "RudderLabs JavaScript SDK"


def test_segment_snippet_loads_everything_from_the_gateway(
    browser: Browser, sdk_gateway: GatewayProcess, database_url: str
) -> None:
    gw = sdk_gateway.url
    # Segment's snippet, its host changed to Sluice's. (`_cdn` says where chunks come from;
    # over https analytics-next finds it from the loader's own URL.)
    html = f"""<!doctype html><html><head><script>
  var analytics = window.analytics = window.analytics || [];
  analytics.invoked = true;
  analytics.methods = ["trackSubmit", "trackClick", "trackLink", "trackForm", "pageview",
    "identify", "reset", "group", "track", "ready", "alias", "debug", "page", "screen", "once",
    "off", "on", "addSourceMiddleware", "addIntegrationMiddleware", "setAnonymousId",
    "addDestinationMiddleware", "register"];
  analytics.factory = function (method) {{
    return function () {{
      var args = Array.prototype.slice.call(arguments);
      args.unshift(method); analytics.push(args); return analytics;
    }};
  }};
  for (var i = 0; i < analytics.methods.length; i++) {{
    var key = analytics.methods[i]; analytics[key] = analytics.factory(key);
  }}
  analytics.load = function (key, options) {{
    var script = document.createElement("script");
    script.async = true;
    script.src = "{gw}/analytics.js/v1/" + key + "/analytics.min.js";
    document.head.appendChild(script);
    analytics._loadOptions = options;
  }};
  analytics._writeKey = "{WRITE_KEY}";
  analytics._cdn = "{gw}";
  analytics.SNIPPET_VERSION = "5.2.0";
  analytics.load("{WRITE_KEY}");
  analytics.page();
  analytics.track("Segment Loaded", {{via: "sluice"}});
</script></head><body></body></html>"""
    with site(html) as url:
        requested = visit(browser, url, database_url, {"Segment Loaded", "page"})
    assert [u for u in requested if not u.startswith((url, gw))] == []
    assert f"{gw}/analytics.js/v1/{WRITE_KEY}/analytics.min.js" in requested
    assert f"{gw}/v1/projects/{WRITE_KEY}/settings" in requested
    track = next(r for r in ingested(database_url) if _name(r["payload"]) == "Segment Loaded")
    assert track["payload"]["properties"] == {"via": "sluice"}
    assert track["payload"]["context"]["library"]["name"] == "analytics.js"
