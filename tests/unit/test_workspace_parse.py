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
        (
            'destinations: [{name: "hooks\\r\\nBcc: x", type: webhook}]',
            "the name holds a control character",
        ),
        ("sources: [{name: web, write_key: short}]", "write_key must be 8 to 128 letters"),
        (
            "sources: [{name: web, write_key: \"abcdefgh';touch /tmp/PWNED;echo '\"}]",
            "sources[0] (web): write_key must be 8 to 128 letters, digits or - _ . ~ + / = @",
        ),
        ("sources: [{name: web, write_key: 'abc:defgh'}]", "write_key must be 8 to 128"),
        ("sources: [{name: web, write_key: 'a b c d e f'}]", "write_key must be 8 to 128"),
        ("sources: [{name: web, rate_limit: 0}]", "rate_limit must be 1 to 1,000,000,000"),
        ("sources: [{name: web, rate_limit: 1000000000000000000}]", "rate_limit must be 1 to"),
        ('sources: [{name: "a\\0b"}]', "sources[0]: name contains a NUL character (\\u0000)"),
        (
            'transformations: [{name: t, code: "x\\ud800"}]',
            "transformations[0]: code contains a lone surrogate (\\ud800)",
        ),
        (
            "destinations: [{name: d, type: webhook, config: {webhookUrl: 'http://x', "
            "deep: " + "[" * 70 + "]" * 70 + "}}]",
            "destinations[0]: config is nested more than 64 levels deep",
        ),
        (
            'destinations: [{name: d, type: webhook, config: {"a\\0": 1, webhookUrl: "http://x"}}]',
            "destinations[0]: config has a key that contains a NUL character",
        ),
        ("sources: " + "[" * 5000 + "]" * 5000, "file: nested too deeply to read"),
        (
            "destinations: [{name: d, type: webhook, config: {webhookUrl: 'http://x'}, "
            "delivery: {rate_limit: .nan}}]",
            "rate_limit must be above 0, up to 1,000,000,000 events per second",
        ),
        (
            "destinations: [{name: d, type: webhook, config: {webhookUrl: 'http://x'}, "
            "delivery: {retry_hours: 1.0e+308}}]",
            "retry_hours must be 0 to 720",
        ),
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
