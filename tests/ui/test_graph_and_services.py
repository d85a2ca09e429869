"""The radar's data, and the dashboard's services: keyset log reads, bulk cancel and delete."""

import datetime
import uuid
from collections import namedtuple

import pytest

from app.blueprints.ui.graph import radar
from app.models import FlowRun, Log, utcnow
from app.services import dashboard, flow_runs
from app.services.flows import create_flow

Run = namedtuple("Run", "id name task_key state_type state_name upstream")
Child = namedtuple("Child", "id parent_task_run_id")


def runs(count, task_key_of, upstream_of, state="COMPLETED"):
    ids = [str(uuid.uuid4()) for _ in range(count)]
    return [
        Run(
            ids[i],
            f"{task_key_of(i)}-{i}",
            task_key_of(i),
            state,
            state.title(),
            [ids[j] for j in upstream_of(i)],
        )
        for i in range(count)
    ]


def graph_of(tasks, subflows=()):
    return radar(tasks, lambda r: r.upstream, subflows)


def test_the_radar_groups_the_runs_of_a_task_and_counts_the_edges_between_tasks():
    # 1 extract, 500 mapped transforms each fed by extract, 500 loads each fed by a transform.
    tasks = runs(
        1001,
        lambda i: "extract" if i == 0 else "transform" if i <= 500 else "load",
        lambda i: [] if i == 0 else [0] if i <= 500 else [i - 500],
    )
    graph = graph_of(tasks)
    assert [(n["id"], n["name"], len(n["members"])) for n in graph["nodes"]] == [
        ("extract", "extract-0", 1),
        ("transform", "transform", 500),
        ("load", "load", 500),
    ]
    assert graph["edges"] == [["extract", "transform", 500], ["transform", "load", 500]]
    first = graph["nodes"][1]["members"][0]
    assert first == [tasks[1].id, "transform-1", "COMPLETED", "Completed", None]


def test_the_radar_leaves_out_edges_within_a_task_and_to_unknown_runs():
    chain = runs(5, lambda i: "step", lambda i: [i - 1] if i else [])
    stranger = Run(str(uuid.uuid4()), "other", "other", None, None, [str(uuid.uuid4())])
    graph = graph_of([*chain, stranger])
    assert graph["edges"] == []
    assert graph["nodes"][1]["members"][0][2:4] == ["PENDING", ""]
    # Runs of one task with other names keep the first run's name.
    mixed = runs(2, lambda i: "t", lambda i: [])
    mixed[1] = mixed[1]._replace(name="renamed")
    assert graph_of(mixed)["nodes"][0]["name"] == "t-0"
    assert graph_of([]) == {"nodes": [], "edges": []}


def test_a_task_run_that_started_a_subflow_names_it():
    tasks = runs(2, lambda i: f"call-{i}", lambda i: [])
    child = Child(uuid.uuid4(), uuid.UUID(tasks[1].id))
    graph = graph_of(tasks, [child])
    assert [n["members"][0][4] for n in graph["nodes"]] == [None, str(child.id)]


def test_iter_logs_reads_every_record_in_order_across_batches(db):
    run_id, other = uuid.uuid4(), uuid.uuid4()
    start = utcnow()
    rows = []
    for i in range(25):
        # Groups of equal timestamps straddle the batch boundaries.
        rows.append(
            {
                "name": "n",
                "level": 10 + 10 * (i % 3),
                "message": f"m{i}",
                "timestamp": start + datetime.timedelta(seconds=i // 4),
                "flow_run_id": run_id,
                "task_run_id": None,
            }
        )
    rows.append(
        {
            "name": "n",
            "level": 20,
            "message": "elsewhere",
            "timestamp": start,
            "flow_run_id": other,
            "task_run_id": None,
        }
    )
    with db.atomic():
        Log.insert_many([{**r, "id": uuid.uuid4()} for r in rows]).execute()
    read = list(dashboard.iter_logs(run_id, batch_size=4))
    assert len(read) == 25 and len({r.id for r in read}) == 25
    assert [r.timestamp for r in read] == sorted(r.timestamp for r in read)
    assert len(list(dashboard.iter_logs(run_id, batch_size=4, min_level=30))) == 8
    tail, truncated = dashboard.tail_logs(run_id, 5)
    assert truncated and len(tail) == 5 and tail[-1].message in {"m24", "m23", "m22", "m21"}
    everything, truncated = dashboard.tail_logs(run_id, 100)
    assert not truncated and [r.id for r in everything] == [str(r.id) for r in read]


def _deployment(flow):
    from app.models import Deployment

    return Deployment.create(id=uuid.uuid4(), name=f"d-{uuid.uuid4().hex[:6]}", flow=flow.id)


def test_bulk_cancel_retry_and_delete_services(db):
    from app.services import bulk

    flow, _ = create_flow("f")
    deployment = _deployment(flow)
    pending, _ = flow_runs.create_flow_run({"flow_id": flow.id})
    running, _ = flow_runs.create_flow_run(
        {"flow_id": flow.id, "state": {"type": "RUNNING", "name": "Running"}}
    )
    missing = str(uuid.uuid4())
    outcome = bulk.cancel([pending.id, running.id, missing, pending.id])
    assert outcome == {
        str(pending.id): bulk.DONE,
        str(running.id): bulk.DONE,
        missing: "no longer exists",
    }
    assert flow_runs.read_flow_run(pending.id).state_type == "CANCELLED"
    assert flow_runs.read_flow_run(running.id).state_type == "CANCELLING"
    assert bulk.cancel([pending.id]) == {str(pending.id): "already finished or cancelling"}

    failed, _ = flow_runs.create_flow_run(
        {
            "flow_id": flow.id,
            "deployment_id": deployment.id,
            "state": {"type": "FAILED", "name": "Failed"},
        }
    )
    crashed, _ = flow_runs.create_flow_run(
        {
            "flow_id": flow.id,
            "deployment_id": deployment.id,
            "state": {"type": "CRASHED", "name": "Crashed"},
        }
    )
    adhoc, _ = flow_runs.create_flow_run(
        {"flow_id": flow.id, "state": {"type": "FAILED", "name": "Failed"}}
    )
    now = utcnow()
    outcome = bulk.retry([failed.id, crashed.id, adhoc.id, pending.id], now)
    assert outcome == {
        str(failed.id): bulk.DONE,
        str(crashed.id): bulk.DONE,
        str(adhoc.id): "not a deployment's run (nothing would run it again)",
        str(pending.id): "not failed or crashed",
    }
    for run in (failed, crashed):
        again = flow_runs.read_flow_run(run.id)
        assert (again.state_type, again.state_name) == ("SCHEDULED", "AwaitingRetry")
        assert again.next_scheduled_start_time == now
    assert flow_runs.read_flow_run(adhoc.id).state_type == "FAILED"

    assert bulk.delete([pending.id, missing]) == {
        str(pending.id): bulk.DONE,
        missing: "no longer exists",
    }
    assert bulk.delete([]) == {}
    assert FlowRun.select().count() == 4


def test_bulk_batches_walk_the_whole_filter_once(db):
    from app.services import bulk

    flow, _ = create_flow("f")
    other, _ = create_flow("other")
    ids = {str(flow_runs.create_flow_run({"flow_id": flow.id})[0].id) for _ in range(7)}
    flow_runs.create_flow_run({"flow_id": other.id})
    body = {"flows": {"id": {"any_": [str(flow.id)]}}}
    as_of = utcnow()
    while utcnow() <= as_of:  # the late run's creation time must come strictly after
        pass
    late, _ = flow_runs.create_flow_run({"flow_id": flow.id})
    assert bulk.count_matching(body, as_of) == 7
    seen, after = [], None
    while True:
        batch = bulk.next_batch(body, as_of, after, size=3)
        seen += batch
        # Deleting as we go does not disturb the walk.
        bulk.delete(batch)
        if len(batch) < 3:
            break
        after = batch[-1]
    assert seen == sorted(ids) and len(seen) == 7
    # Created after the count: left alone.
    assert flow_runs.read_flow_run(late.id)


def test_saved_searches_upsert_by_name(db):
    from app.exceptions import ObjectNotFound
    from app.services import saved_searches

    first, created = saved_searches.upsert_saved_search("a", [{"object": "flow_run"}])
    assert created
    again, created = saved_searches.upsert_saved_search("a", [])
    assert not created and again.id == first.id and again.filters == []
    saved_searches.upsert_saved_search("b", [])
    assert [s.name for s in saved_searches.read_saved_searches(10)] == ["a", "b"]
    assert [s.name for s in saved_searches.read_saved_searches(1, 1)] == ["b"]
    saved_searches.delete_saved_search(first.id)
    with pytest.raises(ObjectNotFound):
        saved_searches.read_saved_search(first.id)
    with pytest.raises(ObjectNotFound):
        saved_searches.delete_saved_search(first.id)


def test_subflows_of_a_run_are_read_by_the_partial_parent_index(db):
    """The run page's subflows: oldest first, looked up by ``parent_task_run_id`` through
    its partial index (migration 0025) even when statistics say nearly every run has no
    parent (SQLite then walked every run by expected start time with the full index)."""

    from app.db import is_sqlite
    from app.models import TaskRun

    flow, _ = create_flow("parents")
    now = utcnow()
    parent, _ = flow_runs.create_flow_run({"flow_id": flow.id})
    tasks = [uuid.uuid4(), uuid.uuid4()]
    TaskRun.insert_many(
        [
            {"id": t, "flow_run": parent.id, "task_key": "t", "dynamic_key": str(i), "name": "t"}
            for i, t in enumerate(tasks)
        ]
    ).execute()
    FlowRun.insert_many(
        [
            {"id": uuid.uuid4(), "flow": flow.id, "name": f"plain-{i}", "expected_start_time": now}
            for i in range(500)
        ]
    ).execute()
    later, earlier = uuid.uuid4(), uuid.uuid4()
    FlowRun.insert_many(
        [
            {
                "id": run_id,
                "flow": flow.id,
                "name": name,
                "parent_task_run_id": task,
                "expected_start_time": now + datetime.timedelta(seconds=offset),
            }
            for run_id, name, task, offset in (
                (later, "later", tasks[0], 60),
                (earlier, "earlier", tasks[1], 30),
            )
        ]
    ).execute()
    assert [str(r.id) for r in dashboard.subflow_runs_of(parent.id, 10)] == [
        str(earlier),
        str(later),
    ]

    if is_sqlite():
        db.execute_sql("ANALYZE flow_run")
        try:
            parents = TaskRun.select(TaskRun.id).where(TaskRun.flow_run == parent.id)
            query = (
                FlowRun.select(FlowRun.id)
                .where(FlowRun.parent_task_run_id.in_(parents))
                .order_by(FlowRun.expected_start_time, FlowRun.id)
                .limit(10)
            )
            sql, params = query.sql()
            plan = " ".join(row[-1] for row in db.execute_sql("EXPLAIN QUERY PLAN " + sql, params))
            assert "USING INDEX flow_run_parent_task_run_id" in plan, plan
        finally:
            FlowRun.delete().execute()
            db.execute_sql("ANALYZE flow_run")
    else:
        (definition,) = db.execute_sql(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'flow_run_parent_task_run_id'"
        ).fetchone()
        assert "WHERE (parent_task_run_id IS NOT NULL)" in definition, definition


def test_failed_runs_filter_names_its_states_in_the_sql_so_sqlite_uses_the_partial_index(db):
    """``state_type IN`` FAILED and CRASHED (in any order, from the dashboard or a filter)
    is written as the partial index's condition: SQLite uses the index only then; other
    states stay bound parameters. Same runs either way on both backends."""
    from app.db import is_sqlite
    from app.models.runs import state_type_in
    from app.services.filters import OPERATORS

    flow, _ = create_flow("states")
    now = utcnow()
    FlowRun.insert_many(
        [
            {
                "id": uuid.uuid4(),
                "flow": flow.id,
                "name": f"run-{i}-{state}",
                "state_type": state,
                "expected_start_time": now - datetime.timedelta(seconds=i),
            }
            for i, state in enumerate(["FAILED", "CRASHED", "COMPLETED", "RUNNING"] * 5)
        ]
    ).execute()

    def failed(condition):
        query = (
            FlowRun.select(FlowRun.name)
            .where(condition)
            .order_by(FlowRun.expected_start_time.desc())
            .limit(51)
        )
        return query, [name for (name,) in query.tuples()]

    expected = [
        f"run-{i}-{s}"
        for i, s in enumerate(["FAILED", "CRASHED", "COMPLETED", "RUNNING"] * 5)
        if s in ("FAILED", "CRASHED")
    ]
    for condition in (
        state_type_in(FlowRun.state_type, ["FAILED", "CRASHED"]),
        OPERATORS["any_"](FlowRun.state_type, ["CRASHED", "FAILED"]),
    ):
        query, names = failed(condition)
        assert names == expected
        sql, params = query.sql()
        assert "IN ('FAILED', 'CRASHED')" in sql and "FAILED" not in params
        if is_sqlite():
            # INDEXED BY fails ("no query solution") unless the index is usable.
            forced = sql.replace(
                'FROM "flow_run" AS "t1"',
                'FROM "flow_run" AS "t1" INDEXED BY flow_run_failed_expected_start_time',
            )
            assert len(db.execute_sql(forced, params).fetchall()) == len(expected)
    query, names = failed(OPERATORS["any_"](FlowRun.state_type, ["FAILED", "COMPLETED"]))
    assert len(names) == 10 and "FAILED" in query.sql()[1]


def test_a_filter_on_related_ids_alone_is_the_foreign_key_condition(db):
    """``flows: {id: {any_: ids}}`` on flow runs is ``flow_id IN ids`` (an index on
    ``(flow_id, ...)`` serves it; SQLite walked every run by start time through the
    sub-query), with the same runs as before; a filter on more than ids keeps the
    sub-query."""
    from app.db import is_sqlite
    from app.services.filters import apply_filters

    chosen, other = create_flow("chosen")[0], create_flow("other")[0]
    for flow in (chosen, other, chosen):
        flow_runs.create_flow_run({"flow_id": flow.id})
    by_id = apply_filters(
        FlowRun.select(FlowRun.id), FlowRun, {"flows": {"id": {"any_": [str(chosen.id)]}}}
    )
    sql, params = by_id.sql()
    assert '"flow"' not in sql.split(" FROM ", 1)[1], sql
    assert len(list(by_id)) == 2
    by_name = apply_filters(
        FlowRun.select(FlowRun.id),
        FlowRun,
        {"flows": {"id": {"any_": [str(chosen.id)]}, "name": {"any_": ["chosen"]}}},
    )
    assert '"flow"' in by_name.sql()[0].split(" FROM ", 1)[1]
    assert len(list(by_name)) == 2
    if is_sqlite():
        forced = sql.replace(
            'FROM "flow_run" AS "t1"',
            'FROM "flow_run" AS "t1" INDEXED BY flow_run_flow_id_start_or_expected',
        )
        assert len(db.execute_sql(forced, params).fetchall()) == 2
