"""Addresses in messages never carry a password, whatever form it came in."""

import pytest

from kline_assets.lib.errors import MalformedDsnError
from kline_assets.resources.dsn import check_postgres_dsn, check_redis_url, host_port, redact
from kline_assets.resources.redis import RedisResource


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


@pytest.mark.parametrize(("dsn", "reason"), [
    ("postgresql://postgres:sec ret@127.0.0.1:5432/x", "a space is %20"),
    ("postgresql://postgres:sec\tret@127.0.0.1:5432/x", "a space is %20"),
    ("host=127.0.0.1 password=sec ret dbname=x", 'missing "=" after "***"'),
    ("postgresql://postgres:secret@127.0.0.1:99999/x", "port '99999' is not a number"),
    ("host=127.0.0.1 port=x5432 password=secret", "port 'x5432' is not a number"),
    ("mysql://postgres:secret@127.0.0.1/x", "expected postgresql:// or postgres://"),
    ("postgresql://postgres:secret@[::1/x", "Invalid IPv6 URL"),
])
def test_a_malformed_postgres_dsn_is_refused_before_the_driver_sees_it(dsn, reason):
    with pytest.raises(MalformedDsnError) as caught:
        check_postgres_dsn(dsn)
    message = str(caught.value)
    assert reason in message and "(KLINE_PG_DSN)" in message
    assert "sec" not in message.replace("second", "") and "\n" not in message
    assert caught.value.store == "PostgreSQL"


@pytest.mark.parametrize("dsn", [
    "postgresql://postgres:sec%20ret@127.0.0.1:5432/x", "host=db password='sec ret' port=5432",
    "postgresql:///postgres", "postgresql://h1:5432,h2:5433/db", "postgres://u@h/db",
])
def test_valid_postgres_dsns_pass(dsn):
    assert isinstance(check_postgres_dsn(dsn), dict)


@pytest.mark.parametrize(("url", "reason"), [
    ("http://127.0.0.1:1/0", "scheme http://, expected redis:// or rediss:// or unix://"),
    ("redis://127.0.0.1:1/notadb", "database 'notadb' is not a number"),
    ("redis://127.0.0.1:6379/1?db=2", "the database is given twice"),
    ("redis://:sec ret@127.0.0.1:6379/1", "a space is %20"),
    ("redis://:secret@127.0.0.1:70000/1", "port '70000' is not a number"),
    ("redis:///1", "no host"),
])
def test_a_malformed_redis_url_is_refused_before_redis_py_sees_it(url, reason):
    with pytest.raises(MalformedDsnError) as caught:
        RedisResource(url=url).client()
    message = str(caught.value)
    assert reason in message and "malformed Redis URL" in message
    assert "(KLINE_REDIS_URL)" in message and "sec" not in message


@pytest.mark.parametrize(("url", "db"), [
    ("redis://127.0.0.1:6379/7", 7), ("redis://127.0.0.1", 0), ("rediss://h:6380/", 0),
    ("unix:///run/redis.sock?db=3", 3), ("redis://:secret@h/2", 2),
])
def test_valid_redis_urls_name_their_database(url, db):
    assert check_redis_url(url) == db
