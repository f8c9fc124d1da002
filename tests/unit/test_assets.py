"""The UI's static files: hashed names, compression, and the plain names' revalidation."""

import gzip
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.datastructures import State
from litestar.testing import TestClient

from ui.assets import Assets, accepts_gzip, static_file

CSS = b"body { color: #123; }\n" * 100


@pytest.fixture
def assets(tmp_path: Path) -> Assets:
    (tmp_path / "logos").mkdir()
    (tmp_path / "app.css").write_bytes(CSS)
    (tmp_path / "logos" / "tiny.svg").write_bytes(b"<svg/>")
    (tmp_path / "font.woff2").write_bytes(bytes(range(256)) * 10)
    (tmp_path / "README.md").write_text("not served")
    return Assets(tmp_path)


def test_each_file_has_a_url_naming_its_content(tmp_path: Path, assets: Assets) -> None:
    url = assets.url("app.css")
    assert url.startswith("/static/app.") and url.endswith(".css") and len(url) == 26
    assert assets.url("logos/tiny.svg").startswith("/static/logos/tiny.")
    (tmp_path / "app.css").write_bytes(CSS + b"p {}")
    assert Assets(tmp_path).url("app.css") != url  # changed content, another name
    with pytest.raises(LookupError, match=r"no static file 'README\.md'"):
        assets.url("README.md")


def test_text_worth_compressing_is_gzipped_once(assets: Assets) -> None:
    css = assets.find(assets.url("app.css").removeprefix("/static/"))
    assert css is not None and css.immutable and css.media_type == "text/css"
    assert css.gzipped is not None and gzip.decompress(css.gzipped) == CSS
    tiny = assets.find("logos/tiny.svg")
    assert tiny is not None and tiny.gzipped is None and not tiny.immutable  # too small
    font = assets.find("font.woff2")
    assert font is not None and font.gzipped is None  # not text


@pytest.mark.parametrize(
    ("header", "gzip_ok"),
    [("gzip, deflate, br", True), ("br;q=1.0, gzip;q=0.8", True), ("*", True),
     ("gzip;q=0", False), ("identity", False), ("", False), ("gzip;q=nonsense", True)],
)  # fmt: skip
def test_accept_encoding_is_read_with_its_quality(header: str, gzip_ok: bool) -> None:
    assert accepts_gzip(header) is gzip_ok


def test_served_hashed_for_a_year_plain_names_revalidated(assets: Assets) -> None:
    app = Litestar([static_file], state=State({"assets": assets}))
    with TestClient(app) as client:
        hashed = client.get(assets.url("app.css"), headers={"accept-encoding": "gzip"})
        assert hashed.status_code == 200 and hashed.content == CSS  # (the client unzips)
        assert hashed.headers["content-encoding"] == "gzip"
        assert hashed.headers["cache-control"] == "public, max-age=31536000, immutable"
        plain = client.get("/static/app.css", headers={"accept-encoding": "identity"})
        assert plain.headers["cache-control"] == "max-age=600"
        assert "content-encoding" not in plain.headers and plain.content == CSS
        again = client.get("/static/app.css", headers={"if-none-match": plain.headers["etag"],
                                                        "accept-encoding": "identity"})  # fmt: skip
        assert again.status_code == 304 and again.content == b""
        packed = client.get("/static/app.css", headers={"accept-encoding": "gzip"})
        assert packed.headers["etag"] == plain.headers["etag"][:-1] + '-gzip"'  # its own tag
        stale = client.get("/static/app.css", headers={"if-none-match": plain.headers["etag"],
                                                        "accept-encoding": "gzip"})  # fmt: skip
        assert stale.status_code == 200  # (the plain body's tag does not stand for the gzip)
        assert client.get("/static/app.0000000000.css").status_code == 404  # an old release's
        assert client.get("/static/README.md").status_code == 404
        assert client.get("/static/../app.py").status_code == 404
