"""Artifact pages through the Flask test client, on both backends: each key's latest, newest
first, with its versions and run, filtered and paged; a key's page with its latest shown and
its versions; one artifact's page; unknown keys and ids; escaping."""

import datetime
import re
import uuid

import pytest

from app.exceptions import ObjectNotFound
from app.models import Artifact
from app.services import artifacts, filters
from tests.ui.test_pages import EVIL, HX, is_full_page, make_flow, make_run, page


def make_artifact(client, **fields):
    response = client.post("/api/artifacts/", json=fields)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def listed_keys(html):
    return re.findall(r'href="/artifacts/key/([^"]+)"', html)


def test_each_key_is_listed_once_with_its_latest_newest_first(client):
    assert "No artifacts with a key yet" in page(client, "/artifacts")
    flow = make_flow(client)
    monday, tuesday = make_run(client, flow, name="monday"), make_run(client, flow, name="tuesday")
    make_artifact(
        client, key="daily-report", type="markdown", data="# Mon", flow_run_id=monday["id"]
    )
    make_artifact(client, key="sales", type="table", data=[{"region": "EU", "sales": 1}])
    make_artifact(client, type="link", data="[home](https://example.org)", flow_run_id=monday["id"])
    make_artifact(
        client,
        key="daily-report",
        type="markdown",
        data="# Tue",
        description="the second day",
        flow_run_id=tuesday["id"],
    )
    html = page(client, "/artifacts")
    assert listed_keys(html) == ["daily-report", "sales"]
    row = re.search(
        r"<tr>\s*<td><a href=\"/artifacts/key/daily-report\".*?</tr>", html, re.S
    ).group(0)
    assert ">markdown<" in row and "the second day" in row and ">2<" in row
    assert f'href="/flow-runs/{tuesday["id"]}">tuesday<' in row
    sales = re.search(r"<tr>\s*<td><a href=\"/artifacts/key/sales\".*?</tr>", html, re.S).group(0)
    assert "no run" in sales and ">1<" in sales

    assert listed_keys(page(client, "/artifacts?key=sal")) == ["sales"]
    assert "No artifact key contains “zzz”" in page(client, "/artifacts?key=zzz")
    fragment = page(client, "/artifacts?key=sal", headers=HX)
    assert not is_full_page(fragment) and listed_keys(fragment) == ["sales"]
    page(client, "/artifacts?page=0", status=422)


def test_the_list_pages_fifty_keys_at_a_time(client):
    for i in range(51):
        make_artifact(client, key=f"k{i:02d}", data=i)
    first = page(client, "/artifacts")
    assert len(listed_keys(first)) == 50 and listed_keys(first)[0] == "k50"
    assert "page=2" in first
    assert listed_keys(page(client, "/artifacts?page=2")) == ["k00"]


def test_a_key_page_shows_its_latest_and_its_versions(client):
    flow = make_flow(client)
    run = make_run(client, flow, name="nightly")
    first = make_artifact(
        client, key="report", type="markdown", data="# One", flow_run_id=run["id"]
    )
    make_artifact(client, key="report", type="markdown", data="# Two", flow_run_id=run["id"])
    html = page(client, "/artifacts/key/report")
    latest = html.split('id="latest-h"')[1].split('id="versions-h"')[0]
    assert "<h1>Two</h1>" in latest and "<h1>One</h1>" not in latest
    assert f'href="/flow-runs/{run["id"]}#artifacts-h">nightly<' in latest
    versions = html.split('id="versions-h"')[1]
    assert versions.count("<tr>") == 3 and versions.count("(latest)") == 1
    assert f'href="/artifacts/artifact/{first["id"]}"' in versions
    assert "No artifact has the key &#39;nope&#39;" in page(
        client, "/artifacts/key/nope", status=404
    )


def test_an_artifact_page_shows_it_with_its_key_and_runs(client):
    flow = make_flow(client)
    run = make_run(client, flow, name="nightly")
    task = client.post(
        "/api/task_runs/",
        json={"flow_run_id": run["id"], "task_key": "t", "dynamic_key": "0", "name": "tabulate-0"},
    ).get_json()
    table = make_artifact(
        client,
        key="sales",
        type="table",
        data=[{"region": "EU", "sales": 120}],
        flow_run_id=run["id"],
        task_run_id=task["id"],
    )
    html = page(client, f"/artifacts/artifact/{table['id']}")
    assert 'href="/artifacts/key/sales">sales</a>' in html
    assert '<table class="artifact-table">' in html and "<td>EU</td>" in html
    assert f'href="/task-runs/{task["id"]}">tabulate-0<' in html
    keyless = make_artifact(client, type="link", data="[home](https://example.org)")
    assert "Artifact without a key" in page(client, f"/artifacts/artifact/{keyless['id']}")
    page(client, f"/artifacts/artifact/{uuid.UUID(int=5)}", status=404)


def test_the_run_page_links_a_keyed_artifact_to_its_key(client):
    flow = make_flow(client)
    run = make_run(client, flow)
    make_artifact(client, key="report", type="markdown", data="# Hi", flow_run_id=run["id"])
    assert 'href="/artifacts/key/report">report</a>' in page(client, f"/flow-runs/{run['id']}")


def test_artifact_text_is_escaped(client):
    artifact = make_artifact(client, key="evil", type="markdown", data=EVIL, description=EVIL)
    for path in ("/artifacts", "/artifacts/key/evil", f"/artifacts/artifact/{artifact['id']}"):
        html = page(client, path)
        assert "<script>" not in html.split("</header>")[1]


# The artifact sorts, as (column, descending); each ties on the id the same way.
SORTED_BY = {
    "CREATED_DESC": ("created", True),
    "UPDATED_DESC": ("updated", True),
    "ID_DESC": ("id", True),
    "KEY_DESC": ("key", True),
    "KEY_ASC": ("key", False),
}


def test_a_keys_latest_is_its_newest_through_ties_late_commits_and_deletes(db, monkeypatch):
    """Each key's latest (in lists, by key, on the radar's per-row test) is its newest by
    creation time, then id: through a create that commits after a newer one, two versions
    created at one instant, deletes, and a refresh of rows written around the service."""
    now = datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC)
    day, second = datetime.timedelta(days=1), datetime.timedelta(seconds=1)
    clock = iter([now + second, now - 2 * day, now - day, now, now, now + day])
    monkeypatch.setattr(artifacts, "utcnow", lambda: next(clock))

    def create(key):
        return artifacts.create_artifact({"key": key, "type": "markdown", "data": key})

    assert set(SORTED_BY) == set(filters.SORTS[Artifact])
    newest, older = create("new"), create("new")
    old = create("old")
    ties = sorted((create("tie"), create("tie")), key=lambda a: a.id)
    create(None)

    def latest_ids():
        listed = artifacts.read_artifacts({"sort": "CREATED_DESC"}, latest=True)
        per_row = Artifact.select().where(artifacts.latest_of_its_key())
        assert sorted(a.id for a in listed) == sorted(a.id for a in per_row)
        for artifact in listed:
            assert artifacts.read_latest_artifact(artifact.key).id == artifact.id
        for sort, (column, descending) in SORTED_BY.items():
            expected = sorted(listed, key=lambda a: (getattr(a, column), a.id), reverse=descending)
            got = artifacts.read_artifacts({"sort": sort}, latest=True)
            assert [a.id for a in got] == [a.id for a in expected], sort
        return [(a.key, a.id) for a in listed]

    assert latest_ids() == [("new", newest.id), ("tie", ties[1].id), ("old", old.id)]
    page_two = artifacts.read_artifacts({"sort": "CREATED_DESC", "limit": 1, "offset": 1}, True)
    assert [a.key for a in page_two] == ["tie"]
    matching = artifacts.read_artifacts({"artifacts": {"key": {"like_": "e"}}}, latest=True)
    assert sorted(a.key for a in matching) == ["new", "tie"]
    assert artifacts.count_artifacts({}, latest=True) == 3
    assert artifacts.version_counts(["tie", "new", "nope"]) == {"tie": 2, "new": 2}

    artifacts.delete_artifact(newest.id)
    artifacts.delete_artifact(ties[1].id)
    artifacts.delete_artifact(old.id)
    assert latest_ids() == [("tie", ties[0].id), ("new", older.id)]
    with pytest.raises(ObjectNotFound):
        artifacts.read_latest_artifact("old")

    written = Artifact.create(key="tie", created=now + 5 * second, updated=now)
    artifacts.refresh_latest(["tie", "nope"])
    assert latest_ids() == [("tie", written.id), ("new", older.id)]
