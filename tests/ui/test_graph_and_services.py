"""The graph layout, and the dashboard's services: keyset log reads, bulk cancel and delete."""

import datetime
import uuid
from collections import namedtuple

import pytest

from app.blueprints.ui.graph import COLUMN_GAP, NODE_HEIGHT, NODE_WIDTH, layout
from app.models import FlowRun, Log, utcnow
from app.services import dashboard, flow_runs
from app.services.flows import create_flow

Run = namedtuple("Run", "id name state_type state_name upstream")


def runs(count, upstream_of):
    ids = [str(uuid.uuid4()) for _ in range(count)]
    return [
        Run(ids[i], f"task-{i}", "COMPLETED", "Completed", [ids[j] for j in upstream_of(i)])
        for i in range(count)
    ]


def overlapping(nodes):
    boxes = {(n.x, n.y) for n in nodes}
    return len(boxes) != len(nodes)


def test_layout_columns_follow_the_longest_upstream_chain():
    tasks = runs(4, lambda i: {0: [], 1: [0], 2: [1], 3: [0, 2]}[i])
    graph = layout(tasks, lambda r: r.upstream)
    columns = {n.name: n.column for n in graph.nodes}
    assert columns == {"task-0": 0, "task-1": 1, "task-2": 2, "task-3": 3}
    assert len(graph.edges) == 4
    assert graph.width == 8 + 3 * (NODE_WIDTH + COLUMN_GAP) + NODE_WIDTH + 8


def test_layout_of_500_tasks_keeps_full_size_nodes_without_overlap():
    # A fan-out and fan-in: 1 source, 498 parallel tasks, 1 sink.
    tasks = runs(500, lambda i: [] if i == 0 else [0] if i < 499 else list(range(1, 499)))
    graph = layout(tasks, lambda r: r.upstream)
    assert not overlapping(graph.nodes)
    assert {n.column for n in graph.nodes} == {0, 1, 2}
    assert graph.height >= 498 * NODE_HEIGHT
    assert len(graph.edges) == 498 * 2
    assert max(n.x for n in graph.nodes) + NODE_WIDTH <= graph.width
    # A long chain is laid out left to right, one column per task.
    chain = layout(runs(500, lambda i: [i - 1] if i else []), lambda r: r.upstream)
    assert [n.column for n in chain.nodes] == list(range(500))
    assert chain.height == 8 + NODE_HEIGHT + 8


def test_layout_orders_columns_to_follow_upstream_rows():
    # Sources a0, a1 feed b1 and b0 crosswise; b's are listed in the opposite order.
    ids = [str(uuid.uuid4()) for _ in range(4)]
    tasks = [
        Run(ids[0], "a0", "RUNNING", "", []),
        Run(ids[1], "a1", "RUNNING", "", []),
        Run(ids[2], "b-of-a1", "PENDING", "", [ids[1]]),
        Run(ids[3], "b-of-a0", "PENDING", "", [ids[0]]),
    ]
    rows = {n.name: n.row for n in layout(tasks, lambda r: r.upstream).nodes}
    assert rows["b-of-a0"] == 0 and rows["b-of-a1"] == 1


def test_layout_ignores_unknown_upstreams_and_survives_cycles():
    ids = [str(uuid.uuid4()) for _ in range(3)]
    tasks = [
        Run(ids[0], "x" * 40, None, None, [ids[1], str(uuid.uuid4())]),
        Run(ids[1], "y", "FAILED", "Failed", [ids[0]]),
        Run(ids[2], "z", "FAILED", "Failed", [ids[2]]),
    ]
    graph = layout(tasks, lambda r: r.upstream)
    assert [n.column for n in graph.nodes] == [0, 0, 0]
    assert graph.nodes[0].label.endswith("…") and len(graph.nodes[0].label) == 26
    assert graph.nodes[0].state_type == "PENDING"
    assert not overlapping(graph.nodes)
    assert layout([], lambda r: []).width == 0


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
    assert not truncated and [r.id for r in everything] == [r.id for r in read]


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
