"""The Events page's search box: what its text looks for."""

import pytest

from engine.control.events import search
from engine.store.ingest_log import Filters


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("properties.plan=pro", Filters(path=("properties", "plan"), value="pro")),
        ("context.page.path = /a", Filters(path=("context", "page", "path"), value="/a")),
        ("userId=", Filters(path=("userId",), value="")),
        ("properties.$ref=a=b", Filters(path=("properties", "$ref"), value="a=b")),
        # Not a path before the "=": text to look for as it is.
        ("a b=c", Filters(text="a b=c")),
        ("=pro", Filters(text="=pro")),
        ("properties..plan=pro", Filters(text="properties..plan=pro")),
        ("3f2c-9a1b-message-id", Filters(text="3f2c-9a1b-message-id")),
        ("50% off", Filters(text="50% off")),
    ],
)
def test_a_path_and_a_value_or_text(text: str, found: Filters) -> None:
    assert search(text) == found
