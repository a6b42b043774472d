"""Addresses in messages never carry a password, whatever form it came in."""

import pytest

from kline_assets.resources.dsn import host_port, redact


@pytest.mark.parametrize(("dsn", "shown"), [
    ("redis://127.0.0.1:6390/7?password=secretpw", "redis://127.0.0.1:6390/7?password=***"),
    ("redis://:secretpw@127.0.0.1:6390/7", "redis://:***@127.0.0.1:6390/7"),
    ("postgresql://kline:secretpw@db:5432/prices", "postgresql://kline:***@db:5432/prices"),
    ("http://default:secretpw@ch:8123/kline", "http://default:***@ch:8123/kline"),
    ("host=db user=kline password=secretpw dbname=x", "host=db user=kline password=*** dbname=x"),
    ("postgresql://postgres@127.0.0.1:5432/postgres", "postgresql://postgres@127.0.0.1:5432/postgres"),
])
def test_redact_masks_every_credential_form(dsn, shown):
    assert redact(dsn) == shown
    assert "secretpw" not in redact(dsn)


def test_host_port_names_a_malformed_port_instead_of_raising():
    assert host_port("http://ch:81x23/db", 8123) == "http://ch:<invalid port>"
    assert host_port("http://ch/db", 8123) == "http://ch:8123"
