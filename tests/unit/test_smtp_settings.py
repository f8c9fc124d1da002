"""The SMTP server's settings: a saved password goes only to the server it was typed for, and
never in the clear to another host."""

import pytest

from engine.control.settings import Smtp
from engine.errors import ConfigError

SAVED = Smtp(host="smtp.example.com", port=587, user="alerts", password="s3cret",
             sender="sluice@example.com")  # fmt: skip


@pytest.mark.parametrize("given", ["", "****"])
def test_the_saved_password_is_kept_for_the_same_server_and_user(given: str) -> None:
    same = Smtp(host="smtp.example.com", port=587, user="alerts", password=given,
                sender="other@example.com")  # fmt: skip
    assert same.keeping_password(SAVED).password == "s3cret"


@pytest.mark.parametrize(
    "changed",
    [{"host": "collector.evil.example"}, {"port": 2525}, {"security": "tls"}, {"user": "other"}],
)
def test_another_server_or_user_must_be_given_the_password_again(
    changed: dict[str, object],
) -> None:
    moved = Smtp(**{"host": "smtp.example.com", "port": 587, "user": "alerts",  # type: ignore[arg-type]
                    "password": "", "sender": "sluice@example.com", **changed})  # fmt: skip
    with pytest.raises(ConfigError, match="type the password again"):
        moved.keeping_password(SAVED)
    typed = Smtp(host="collector.evil.example", user="alerts", password="new-one",
                 sender="sluice@example.com")  # fmt: skip
    assert typed.keeping_password(SAVED).password == "new-one"


def test_no_login_and_no_saved_server_keep_no_password() -> None:
    anonymous = Smtp(host="relay.example.com", password="", sender="sluice@example.com")
    assert anonymous.keeping_password(SAVED).password == ""  # (no user: no login)
    masked = Smtp(host="relay.example.com", user="a", password="****", sender="s@example.com")
    assert masked.keeping_password(None).password == ""  # never the mask itself


def test_a_password_goes_in_the_clear_only_to_this_host() -> None:
    clear = Smtp(host="smtp.example.com", security="none", user="a", password="p",
                 sender="s@example.com")  # fmt: skip
    with pytest.raises(ConfigError, match="only over STARTTLS or TLS"):
        clear.check()
    for host in ("127.0.0.1", "::1", "localhost"):
        Smtp(host=host, security="none", user="a", password="p", sender="s@example.com").check()
