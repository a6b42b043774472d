"""The features page in a real browser (Debian's chromium, driven by Playwright) against the
service on a loopback port: it loads, draws the chart for the demo run, and a new range
redraws it with the rows of that range."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from kline_assets.api.app import create_app
from kline_assets_tests.support.browser import chromium_page, serve


@pytest.fixture(scope="module")
def served(read_store) -> Iterator[str]:
    with serve(create_app(read_store.clickhouse, read_store.postgres)) as url:
        yield url


@pytest.fixture
def page(served):
    with chromium_page(height=900) as pg:
        yield pg


def ink(page) -> int:
    """Pixels of the chart canvas that are not blank."""
    return page.evaluate("""() => {
        const c = document.getElementById('chart');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
        return n;
    }""")


def show_window(page, start: str, end: str) -> None:
    """Type a From and a To ('YYYY-MM-DD HH:MM') into the form and press Show."""
    for side, value in (("from", start), ("to", end)):
        date, time = value.split()
        page.fill(f"#{side}-date", date)
        page.fill(f"#{side}-time", time)
    page.click("#show")


@pytest.mark.slow
def test_page_draws_the_chart_and_follows_the_range(page, served, tmp_path):
    page.goto(served + "/")
    page.wait_for_function("document.body.dataset.rows > 0", timeout=20_000)
    assert page.locator("#run").input_value() == "live"
    assert page.locator("#scope").input_value() == "iphone:1"
    # The default range: the scope's last week, ending at its last bucket.
    assert page.locator("#to-date").input_value() == "2025-10-31"
    assert page.locator("#to-time").input_value() == "23:45"
    week = int(page.evaluate("document.body.dataset.rows"))
    assert week == 7 * 96 + 1
    assert int(page.locator("#chart").get_attribute("data-points")) == week
    assert ink(page) > 5_000
    assert page.locator("#rows tbody tr").count() == week
    assert "buckets of" in page.locator("#status").inner_text()
    page.screenshot(path=str(tmp_path / "week.png"))

    # One day, 09:00–17:45 in 24-hour time: 36 buckets.
    draws = int(page.locator("#chart").get_attribute("data-draws"))
    show_window(page, "2025-10-20 09:00", "2025-10-20 17:45")
    page.wait_for_function("document.body.dataset.rows == 36", timeout=20_000)
    assert int(page.locator("#chart").get_attribute("data-draws")) > draws
    assert int(page.locator("#chart").get_attribute("data-points")) == 36
    first_cell = page.locator("#rows tbody tr").first.locator("td").first.inner_text()
    assert first_cell == "2025-10-20 17:45"

    # Zoom with the wheel narrows the visible span; hovering shows the values.
    box = page.locator("#chart").bounding_box()
    span = lambda: (float(page.locator("#chart").get_attribute("data-x1"))  # noqa: E731
                    - float(page.locator("#chart").get_attribute("data-x0")))
    before = span()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.wheel(0, -300)
    page.wait_for_timeout(100)
    assert span() < before
    page.mouse.move(box["x"] + box["width"] / 2 + 5, box["y"] + box["height"] / 2)
    tip = page.locator(".kline-chart-tip")
    assert tip.is_visible() and "mean" in tip.inner_text() and "EMA 120" in tip.inner_text()
    page.screenshot(path=str(tmp_path / "day.png"))

    # A cohort works the same way.
    page.select_option("#scope", "cohort:pro-latest")
    page.wait_for_function("document.body.dataset.rows == 7 * 96 + 1", timeout=20_000)
    assert ink(page) > 5_000
    assert not tip.is_visible()  # the iPhone's values are gone with its data
    page.screenshot(path=str(tmp_path / "cohort.png"))
    assert (tmp_path / "week.png").stat().st_size > 10_000


@pytest.mark.slow
def test_a_bad_time_is_refused_by_the_form(page, served):
    page.goto(served + "/")
    page.wait_for_function("document.body.dataset.rows > 0", timeout=20_000)
    rows = page.evaluate("document.body.dataset.rows")
    page.fill("#from-time", "9pm")
    page.click("#show")
    assert page.evaluate("document.getElementById('from-time').validity.valid") is False
    assert page.evaluate("document.body.dataset.rows") == rows


@pytest.mark.slow
def test_one_year_first_24_hour_format_a_reversed_window_and_a_quiet_console(served, tmp_path):
    with chromium_page(height=900) as page:
        console: list[str] = []
        page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
        page.goto(served + "/")
        page.wait_for_function("document.body.dataset.rows > 0", timeout=20_000)
        # The date fields hold what the axis and the tables show: YYYY-MM-DD, 24-hour.
        assert page.locator("#to-date").get_attribute("type") == "text"
        assert page.locator("#to-date").input_value() == "2025-10-31"
        chart = page.locator("#chart")
        label = chart.get_attribute("data-last-label")
        assert re.fullmatch(r"2025-10-\d\d \d\d:\d\d", label), label
        width = page.evaluate("document.getElementById('chart').clientWidth")
        assert int(chart.get_attribute("data-last-label-right")) <= width
        page.screenshot(path=str(tmp_path / "week.png"))

        show_window(page, "2025-10-21 00:00", "2025-10-20 23:45")
        page.wait_for_function("document.body.dataset.rows == 0", timeout=20_000)
        status = page.locator("#status").inner_text()
        assert status == ("the window is reversed: From 2025-10-21 00:00 is after To "
                          "2025-10-20 23:45"), status
        assert chart.get_attribute("data-points") == "0"
        assert page.locator("#rows tbody tr").count() == 0
        page.screenshot(path=str(tmp_path / "reversed.png"))
        assert page.request.get(served + "/favicon.ico").status == 200
        assert console == []
