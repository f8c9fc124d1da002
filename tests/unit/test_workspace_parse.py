"""Workspace file validation: every error names the entry at fault."""

import pytest

from engine.errors import ConfigError
from engine.specs import parse


def test_a_good_file_parses_with_defaults() -> None:
    spec = parse("""
sources: [{name: web}]
destinations: [{name: hooks, type: webhook, config: {webhookUrl: "http://x"}}]
connections: [{source: web, destination: hooks}]
""")
    assert spec.sources[0].enabled is True and spec.sources[0].write_key is None
    assert spec.connections[0].transformation is None


def test_json_is_accepted_too() -> None:
    assert parse('{"sources": [{"name": "web"}]}').sources[0].name == "web"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- just a list", "top level must be a mapping"),
        ("sourcez: []", "unknown section(s): sourcez"),
        ("sources: {name: web}", "sources: must be a list"),
        (
            "sources: [{name: web, colour: red}]",
            "sources[0] (web): Object contains unknown field `colour`",
        ),
        ("sources: [{name: web, enabled: maybe}]", "sources[0] (web): Expected `bool`"),
        ("sources: [{name: web}, {name: web}]", "sources[1] (web): the name is used twice"),
        ("sources: [{name: ' '}]", "sources[0]: name must not be empty"),
        ("sources: [{name: web, write_key: short}]", "at least 8 characters"),
        ("sources: [{name: web, rate_limit: 0}]", "rate_limit must be a positive"),
        (
            "destinations: [{name: d, type: carrier-pigeon}]",
            "destinations[0] (d): unknown type 'carrier-pigeon'; known types: adjust",
        ),
        (
            "destinations: [{name: d, type: mixpanel, config: {token: ''}}]",
            "Mixpanel needs config token",
        ),
        (
            "transformations: [{name: t, code: '  '}]",
            "transformations[0] (t): code must not be empty",
        ),
        (
            "connections: [{source: a}]",
            "connections[0] (a → None): Object missing required field `destination`",
        ),
        ("sources: [unclosed", "not valid YAML or JSON"),
    ],
)
def test_errors_name_the_offending_entry(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(text)
    assert message in str(caught.value)
