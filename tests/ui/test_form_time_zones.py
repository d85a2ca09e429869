"""Forms take times in the browser's time zone, on both backends: each form with times
carries the zone field ``tz`` (the dashboard's script puts the browser's zone in it) and
names its zone; a time without an offset is a wall-clock time in that zone, UTC without one.
The browser side is tests/browser/test_deployments_browser.py (a Paris browser).
"""

import datetime
import re
from zoneinfo import ZoneInfo

import pytest

from app.models import utcnow
from tests.ui.test_deployment_pages import make_deployment, post, run_at, submission_id
from tests.ui.test_pages import HX, make_flow, page, scheduled

UTC = datetime.UTC


def zone_of(html):
    """The form's zone field and the zone it names."""
    field = re.search(r'<input type="hidden" name="tz" value="([^"]*)" data-browser-zone>', html)
    named = re.search(r'<span class="zone" data-zone-name>([^<]*)</span>', html)
    return field.group(1), named.group(1)


def time_input(html, name):
    """``(value, data-utc)`` of the datetime-local input ``name``."""
    match = re.search(
        rf'<input type="datetime-local" step="1" name="{name}" value="([^"]*)" '
        r'data-utc="([^"]*)"',
        html,
    )
    return match.group(1), match.group(2)


def test_every_form_with_times_names_its_zone(client):
    flow = make_flow(client)
    deployment = make_deployment(client, flow)
    for path in ("/", "/flow-runs", f"/deployments/{deployment['id']}/custom-run"):
        assert zone_of(page(client, path)) == ("UTC", "UTC"), path
    assert zone_of(page(client, "/flow-runs?tz=Asia/Tokyo")) == ("Asia/Tokyo", "Asia/Tokyo")


def test_custom_run_start_is_read_in_the_forms_zone(client):
    flow = make_flow(client)
    deployment = make_deployment(client, flow, work_queue_name="q")
    path = f"/deployments/{deployment['id']}/custom-run"
    paris = ZoneInfo("Europe/Paris")
    # Ten days ahead at 09:30 in Paris, whatever the season there.
    day = (utcnow() + datetime.timedelta(days=10)).date()
    wall = datetime.datetime.combine(day, datetime.time(9, 30))
    response = post(
        client,
        path,
        {
            "param.parameters": "{}",
            "start": wall.strftime("%Y-%m-%dT%H:%M"),
            "tz": "Europe/Paris",
            "submission_id": submission_id(page(client, path)),
        },
    )
    assert response.status_code == 303
    run = run_at(client, response.headers["Location"])
    due = datetime.datetime.fromisoformat(run["next_scheduled_start_time"])
    assert due == wall.replace(tzinfo=paris).astimezone(UTC)
    assert due.hour in (7, 8)  # 09:30 in Paris is 07:30 or 08:30 UTC
    assert f"for {wall:%Y-%m-%d} 09:30:00 Europe/Paris ({due:%Y-%m-%d %H:%M:%S} UTC)" in page(
        client, response.headers["Location"]
    )

    # Sent back with an error: what was typed and the zone are kept.
    response = post(
        client, path, {"param.parameters": "[]", "start": "2020-01-01T09:30", "tz": "Asia/Tokyo"}
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and "Must be in the future" in html
    assert time_input(html, "start") == ("2020-01-01T09:30", "")
    assert zone_of(html) == ("Asia/Tokyo", "Asia/Tokyo")


@pytest.mark.parametrize("zone", ["Mars/Olympus", "America", "../etc/passwd", "x" * 300])
def test_a_zone_that_is_not_one_is_a_422_naming_it(client, zone):
    flow = make_flow(client)
    deployment = make_deployment(client, flow)
    path = f"/deployments/{deployment['id']}/custom-run"
    response = post(client, path, {"start": "2030-01-01T00:00", "tz": zone})
    assert response.status_code == 422 and b"Invalid value for &#39;tz&#39;" in response.data
    assert "is not a time zone" in page(client, f"/flow-runs?tz={zone}", 422)
    assert "is not a time zone" in page(client, f"/?window=custom&tz={zone}", 422, headers=HX)


def test_flow_runs_filter_reads_its_times_in_the_forms_zone(client):
    flow = make_flow(client)
    # Two runs at 03:00 and 05:00 UTC; 13:30 in Tokyo (UTC+9, no DST) is 04:30 UTC.
    base = datetime.datetime(2026, 6, 1, tzinfo=UTC)
    early = scheduled(client, flow, base + datetime.timedelta(hours=3), name="early")
    late = scheduled(client, flow, base + datetime.timedelta(hours=5), name="late")
    html = page(client, "/flow-runs?start=2026-06-01T13:30&tz=Asia/Tokyo")
    assert late["id"] in html and early["id"] not in html
    # The input shows the time in that zone; data-utc is the instant, for the browser.
    assert time_input(html, "start") == ("2026-06-01T13:30:00", "2026-06-01T04:30:00+00:00")
    assert time_input(html, "end") == ("", "")
    # Without a zone the same text is UTC, and an offset always wins.
    assert early["id"] not in page(client, "/flow-runs?start=2026-06-01T04:30")
    assert early["id"] in page(client, "/flow-runs?start=2026-06-01T02:30")
    assert early["id"] in page(client, "/flow-runs?start=2026-06-01T11:30%2B09:00&tz=UTC")


def test_dashboard_custom_window_in_the_forms_zone(client):
    html = page(
        client, "/?window=custom&start=2026-01-01T00:00&end=2026-01-02T00:00&tz=America/New_York"
    )
    assert time_input(html, "start") == ("2026-01-01T00:00:00", "2026-01-01T05:00:00+00:00")
    assert time_input(html, "end") == ("2026-01-02T00:00:00", "2026-01-02T05:00:00+00:00")
    assert zone_of(html) == ("America/New_York", "America/New_York")
    # The window's end is before its start in UTC terms only if read in the wrong zone.
    assert "must be after the start" in page(
        client,
        "/?window=custom&start=2026-01-01T10:00%2B00:00&end=2026-01-01T06:00&tz=Asia/Tokyo",
        422,
    )
