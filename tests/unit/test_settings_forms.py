"""Settings forms (ui.forms): lists of text rows as tables, every refused field at once."""

import json
from typing import Any

import pytest

from engine.destinations.catalog import TYPES
from ui import forms

WEBHOOK = TYPES["webhook"]


def test_a_list_of_text_rows_is_a_table_and_other_lists_stay_json() -> None:
    kinds = {f.key: (f.kind, f.columns) for f in forms.fields(TYPES["slack"], {})}
    assert kinds["denyListOfEvents"] == ("rows", ("eventName",))
    assert kinds["eventChannelSettings"][0] == "json"  # (a yes/no column: not text rows)
    [headers] = [f for f in forms.fields(WEBHOOK, {"headers": [{"from": "X-A", "to": "1"}]})
                 if f.key == "headers"]  # fmt: skip
    assert headers.columns == ("from", "to") and headers.rows == [["X-A", "1"]]


def test_rows_come_back_as_json_without_the_blank_ones() -> None:
    form = forms.submitted([
        ("webhookUrl", "https://h.example.com"), ("headers:from", "X-A"), ("headers:to", "1"),
        ("headers:from", " "), ("headers:to", ""), ("headers:from", "X-B"), ("headers:to", "2"),
    ])  # fmt: skip
    assert json.loads(form["headers"]) == [{"from": "X-A", "to": "1"}, {"from": "X-B", "to": "2"}]
    config = forms.config(WEBHOOK, form, {})
    assert config["headers"] == [{"from": "X-A", "to": "1"}, {"from": "X-B", "to": "2"}]
    assert forms.submitted([("headers:from", ""), ("headers:to", "")])["headers"] == ""


def test_every_refused_field_is_reported_at_once() -> None:
    form = {"apiKey": "", "residencyServer": "standard", "traitsToIncrement": "[1,"}
    with pytest.raises(forms.FormErrors) as caught:
        forms.config(TYPES["amplitude"], form, {})
    assert set(caught.value.errors) == {"apiKey", "traitsToIncrement"}
    assert "required" in caught.value.errors["apiKey"]
    assert "not valid JSON" in caught.value.errors["traitsToIncrement"]


def test_masked_rows_sent_back_unchanged_keep_the_saved_secrets() -> None:
    saved: dict[str, Any] = {"webhookUrl": "https://h.example.com",
             "headers": [{"from": "Authorization", "to": "Bearer s3cret-t0ken-value"}]}  # fmt: skip
    [shown] = [f for f in forms.fields(WEBHOOK, saved) if f.key == "headers"]
    [[name, value]] = shown.rows
    assert "s3cret" not in value
    form = forms.submitted([("webhookUrl", saved["webhookUrl"]), ("headers:to", value),
                            ("headers:from", name)])  # fmt: skip
    assert forms.config(WEBHOOK, form, saved)["headers"] == saved["headers"]
