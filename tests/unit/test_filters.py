from engine.destinations.base import ALL_TYPES
from engine.destinations.filters import EventFilter


def track(name: str) -> dict[str, str]:
    return {"type": "track", "event": name}


def test_no_filter_admits_every_supported_type() -> None:
    f = EventFilter.of({}, frozenset({"track", "identify"}))
    assert f.admits(track("Anything"))
    assert f.admits({"type": "identify"})
    assert not f.admits({"type": "page"})


def test_allow_list_admits_only_listed_track_events() -> None:
    config = {
        "eventFilteringOption": "whitelistedEvents",
        "whitelistedEvents": [{"eventName": "Order Completed "}, {"eventName": ""}],
    }
    f = EventFilter.of(config, ALL_TYPES)
    assert f.admits(track("Order Completed"))
    assert not f.admits(track("Product Viewed"))
    assert f.admits({"type": "identify"})  # names filter track events only


def test_block_list_holds_back_listed_track_events() -> None:
    config = {
        "eventFilteringOption": "blacklistedEvents",
        "blacklistedEvents": [{"eventName": "Heartbeat"}],
        "whitelistedEvents": [{"eventName": "Ignored"}],
    }
    f = EventFilter.of(config, ALL_TYPES)
    assert not f.admits(track("Heartbeat"))
    assert f.admits(track("Ignored"))
    assert f.admits(track("Signed Up"))


def test_an_empty_allow_list_lets_no_track_event_through() -> None:
    f = EventFilter.of({"eventFilteringOption": "whitelistedEvents"}, ALL_TYPES)
    assert not f.admits(track("Signed Up"))


def test_disabled_filtering_ignores_the_lists() -> None:
    config = {"eventFilteringOption": "disable", "blacklistedEvents": [{"eventName": "X"}]}
    assert EventFilter.of(config, ALL_TYPES).admits(track("X"))


def test_slacks_deny_list_holds_back_its_track_events_with_any_option() -> None:
    denied = {"denyListOfEvents": [{"eventName": "Heartbeat"}]}
    assert not EventFilter.of(denied, ALL_TYPES).admits(track("Heartbeat"))
    blocking = {**denied, "eventFilteringOption": "blacklistedEvents",
                "blacklistedEvents": [{"eventName": "Ping"}]}  # fmt: skip
    f = EventFilter.of(blocking, ALL_TYPES)
    assert not f.admits(track("Heartbeat")) and not f.admits(track("Ping"))
    assert f.admits(track("Signed Up"))
    allowed = [{"eventName": "Heartbeat"}, {"eventName": "Ping"}]
    allowing = {**denied, "eventFilteringOption": "whitelistedEvents", "whitelistedEvents": allowed}
    f = EventFilter.of(allowing, ALL_TYPES)
    assert not f.admits(track("Heartbeat")) and f.admits(track("Ping"))


def test_a_plugin_declines_group_calls_without_their_settings() -> None:
    from engine.destinations.amplitude import AMPLITUDE
    from engine.destinations.mixpanel import MIXPANEL

    group = {"type": "group", "userId": "u", "traits": {"kind": "Org", "name": "Acme"}}
    blank = EventFilter.of({}, ALL_TYPES, AMPLITUDE.declines)
    assert not blank.admits(group) and "`groupTypeTrait`" in (blank.why(group) or "")
    assert blank.admits({"type": "track", "event": "E"})
    named = {
        **group,
        "integrations": {"Amplitude": {"groups": {"groupType": "T", "groupValue": "V"}}},
    }
    assert blank.admits(named)  # the event names its group itself
    set_up = {"groupTypeTrait": "kind", "groupValueTrait": "name"}
    assert EventFilter.of(set_up, ALL_TYPES, AMPLITUDE.declines).admits(group)
    assert not EventFilter.of({"groupTypeTrait": "kind"}, ALL_TYPES, AMPLITUDE.declines).admits(
        group
    )
    mixpanel = EventFilter.of(
        {"groupKeySettings": [{"groupKey": ""}]}, ALL_TYPES, MIXPANEL.declines
    )
    assert "`groupKeySettings`" in (mixpanel.why(group) or "")
    keyed = {"groupKeySettings": [{"groupKey": "company"}]}
    assert EventFilter.of(keyed, ALL_TYPES, MIXPANEL.declines).admits(group)


def test_why_an_event_is_filtered() -> None:
    f = EventFilter.of({"eventFilteringOption": "blacklistedEvents",
                        "blacklistedEvents": [{"eventName": "Heartbeat"}]},
                       frozenset({"track"}))  # fmt: skip
    assert f.why({"type": "page"}) == "the destination does not take page calls"
    assert f.why(track("Heartbeat")) == "the event is on the destination's block list"
    assert f.why(track("Signed Up")) is None
