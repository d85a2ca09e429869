"""app.services.runs.read_page: any page of any sort and filter holds the same runs, in the
same order and with the same states, as the one plain query (runs joined to their states,
filtered, sorted, ``LIMIT``/``OFFSET``); SQLite's deferred join (a page's rowids first)
reads its page's keys from an index alone for the dashboard's default sort."""

import datetime
import logging
import uuid

import pytest
from peewee import fn

from app.db import database, is_sqlite
from app.models import Flow, FlowRun, FlowRunState, TaskRun, TaskRunState
from app.schemas import filters as schemas
from app.services import filters, runs

UTC = datetime.UTC
T0 = datetime.datetime(2030, 1, 1, tzinfo=UTC)
HOUR = datetime.timedelta(hours=1)
RUNS = 40
STATE_TYPES = ("COMPLETED", "FAILED", "SCHEDULED", "RUNNING")
BODY_SCHEMAS = {FlowRun: schemas.FlowRunFilterBody(), TaskRun: schemas.TaskRunFilterBody()}
STATE_MODELS = {FlowRun: FlowRunState, TaskRun: TaskRunState}


def add_run(model, state_model, i, **link):
    """Run ``i`` of :data:`RUNS`: its sorted columns take few values (ties in every sort,
    across page boundaries) and are sometimes NULL; one run in seven has no state."""
    run_id = uuid.uuid4()
    state_type = None if i % 7 == 6 else STATE_TYPES[i % 4]
    state_id = None if state_type is None else uuid.uuid4()
    model.insert(
        id=run_id,
        name=f"run-{'abc'[i % 3]}",
        tags=["x"] if i % 2 else ["x", "y"],
        expected_start_time=None if i % 13 == 0 else T0 + (i % 4) * HOUR,
        start_time=None if i % 2 else T0 + (i % 3) * HOUR,
        next_scheduled_start_time=None if i % 5 == 0 else T0 + (i % 2) * HOUR,
        end_time=None if i % 3 == 0 else T0 + (i % 2) * HOUR,
        state_id=state_id,
        state_type=state_type,
        state_name=state_type and state_type.title(),
        **link,
    ).execute()
    if state_id is not None:
        link_field = "flow_run" if state_model is FlowRunState else "task_run"
        state_model.insert(
            id=state_id,
            type=state_type,
            name=state_type.title(),
            timestamp=T0 + i * HOUR,
            message=f"state of run {i}",
            state_details={"i": i},
            **{link_field: run_id},
        ).execute()
    return run_id


@pytest.fixture
def world(db):
    """:data:`RUNS` flow runs of two flows, and :data:`RUNS` task runs of two flow runs."""
    flows = [uuid.uuid4(), uuid.uuid4()]
    for i, flow_id in enumerate(flows):
        Flow.insert(id=flow_id, name=f"flow-{i}").execute()
    flow_runs = [add_run(FlowRun, FlowRunState, i, flow=flows[i % 2]) for i in range(RUNS)]
    for i in range(RUNS):
        add_run(TaskRun, TaskRunState, i, flow_run=flow_runs[i % 2], task_key="k", dynamic_key=i)
    return {"flows": flows, "flow_runs": flow_runs}


def bodies(model, world):
    """Filter bodies (JSON, before loading): none, and each kind the dashboard's list makes
    (state types, tags, a name, a flow, an expected-start window) or the API's task runs."""
    common = [
        {},
        {"state": {"type": {"any_": ["COMPLETED", "FAILED"]}}},
        {"state": {"type": {"any_": ["FAILED"]}}},
        {"state": {"type": {"any_": ["FAILED", "RUNNING", "SCHEDULED"]}}},
        {"state": {"type": {"any_": ["FAILED", "RUNNING"]}}, "name": {"like_": "run-b"}},
        {
            "operator": "or_",
            "state": {"type": {"any_": ["FAILED", "RUNNING"]}},
            "tags": {"all_": ["y"]},
        },
        {"tags": {"all_": ["y"]}},
        {"name": {"like_": "run-b"}},
    ]
    if model is TaskRun:
        return [{"task_runs": c} for c in common] + [
            {"task_runs": {"flow_run_id": {"any_": [str(world["flow_runs"][1])]}}}
        ]
    window = {"after_": (T0 + HOUR).isoformat(), "before_": (T0 + 3 * HOUR).isoformat()}
    return [{"flow_runs": c} for c in common] + [
        {"flows": {"id": {"any_": [str(world["flows"][0])]}}},
        {
            "flow_runs": {"state": {"type": {"any_": ["COMPLETED", "RUNNING"]}}},
            "flows": {"id": {"any_": [str(world["flows"][1])]}},
        },
        {"flow_runs": {"expected_start_time": window}},
    ]


def plain_page(model, body):
    """The one plain query: runs joined to their states, filtered, sorted and paged."""
    state_model = STATE_MODELS[model]
    query = filters.apply_filters(runs.with_state(model, state_model), model, body)
    return runs.fetch_runs(filters.sort_and_page(query, model, body), model, state_model)


CASES = [(model, sort) for model in (FlowRun, TaskRun) for sort in filters.SORTS[model]]


@pytest.mark.parametrize("model, sort", CASES, ids=[f"{m.__name__}.{s}" for m, s in CASES])
def test_every_page_equals_the_plain_query(world, model, sort):
    for json_body in bodies(model, world):
        everything = plain_page(model, BODY_SCHEMAS[model].load({**json_body, "sort": sort}))
        assert everything, json_body
        for offset in (0, 1, 5, 7, 17, len(everything) - 1, len(everything) + 3):
            body = BODY_SCHEMAS[model].load(
                {**json_body, "sort": sort, "limit": 7, "offset": offset}
            )
            page = runs.read_page(model, STATE_MODELS[model], body)
            assert page == plain_page(model, body), (json_body, offset)
            assert page == everything[offset : offset + 7], (json_body, offset)


def test_the_data_has_ties_in_every_sort_key(world):
    """The case above is only meaningful if the sort keys tie: every key column holds each of
    its values several times."""
    for column in ("name", "expected_start_time", "start_time", "end_time"):
        counts = [
            count
            for (count,) in FlowRun.select(fn.COUNT(FlowRun.id))
            .group_by(getattr(FlowRun, column))
            .tuples()
        ]
        assert min(counts) > 1, column


def statements(caplog, call):
    """The SQL statements (with parameters) ``call()`` runs, from peewee's debug log."""
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="peewee"):
        call()
    return [r.msg for r in caplog.records if r.name == "peewee" and isinstance(r.msg, tuple)]


def plan_of(sql, params):
    return [row[-1] for row in database.execute_sql("EXPLAIN QUERY PLAN " + sql, params)]


def test_a_deep_pages_keys_are_chosen_before_any_state_is_read(world, caplog):
    """The dashboard's default sort, 100 pages deep: on SQLite one statement whose subquery
    choosing the page's rowids reads migration 0028's index alone (no row of the table: 59 ms
    p95 before for page 100 of 1,000,000 runs, bench/README.md; only runs tied on the start
    are sorted by id), and whose outer part reads only the chosen runs, by rowid. PostgreSQL
    keeps 0002's index and chooses the page's ids first the same way, joining no state for
    the skipped runs (page 100 of one state: 40-54 ms p50 before, 9-10 after)."""
    body = {"flow_runs": {}, "sort": "START_TIME_DESC", "limit": 51, "offset": 4950}
    if not is_sqlite():
        names = {index.name for index in database.get_indexes("flow_run")}
        assert "flow_run_start_time_or_expected" in names
        assert "flow_run_start_time_or_expected_id" not in names
        (statement,) = statements(caplog, lambda: runs.read_page(FlowRun, FlowRunState, body))
        sql, _ = statement
        assert 'WHERE ("t1"."id" IN (SELECT "t1"."id" FROM "flow_run" AS "t1" ORDER BY' in sql
        return
    assert plan_of(*runs.page_keys(FlowRun, body).sql()) == [
        "SCAN t1 USING COVERING INDEX flow_run_start_time_or_expected_id",
        "USE TEMP B-TREE FOR RIGHT PART OF ORDER BY",
    ]
    (statement,) = statements(caplog, lambda: runs.read_page(FlowRun, FlowRunState, body))
    plan = plan_of(*statement)
    assert "SEARCH t1 USING INTEGER PRIMARY KEY (rowid=?)" in plan, plan
    assert "SCAN t1 USING COVERING INDEX flow_run_start_time_or_expected_id" in plan, plan
    assert not any(step.startswith("SCAN t1 USING INDEX") for step in plan), plan


def test_a_name_searchs_first_page_chooses_its_keys_first_on_postgres(world, caplog):
    """On PostgreSQL the first page of a "name contains" search is a deferred join, so the
    planner weighs the trigram index against the newest-first walk without the states'
    join (90-130 ms before for a rare name among 1,000,000 runs, 9 after: bench/README.md);
    SQLite keeps the one query its counted search plans well."""
    body = BODY_SCHEMAS[FlowRun].load({"flow_runs": {"name": {"like_": "run-b"}}, "limit": 7})
    # The last statement reads the page (SQLite's search counts the matches before).
    sql, _ = statements(caplog, lambda: runs.read_page(FlowRun, FlowRunState, body))[-1]
    deferred = 'WHERE ("t1"."id" IN (SELECT "t1"."id" FROM "flow_run" AS "t1" WHERE' in sql
    assert deferred == (not is_sqlite()), sql


# SQLite's statistics of the bench database's 1,000,000 flow runs (bench_ui.py, ANALYZE) for
# every index of ``flow_run``.
BENCH_STATS = {
    "flow_run_start_time_or_expected_id": "1000000 1 1 1 1",
    "flow_run_deployment_id": "1000000 6212",
    "flow_run_deployment_id_expected_start_time": "1000000 6212 1",
    "flow_run_deployment_id_scheduled": "100000 5000 1",
    "flow_run_end_time": "1000000 2",
    "flow_run_end_time_id": "1000000 2 1",
    "flow_run_expected_start_time": "1000000 1",
    "flow_run_expected_start_time_state": "1000000 1 1 1 1",
    "flow_run_failed_expected_start_time": "63000 1",
    "flow_run_finished_state_timestamp": "894000 1",
    "flow_run_flow_id": "1000000 20000",
    "flow_run_flow_id_end_time_id": "1000000 20000 2 1",
    "flow_run_flow_id_expected_start_time": "1000000 20000 1",
    "flow_run_flow_id_idempotency_key": "1000000 20000 20000",
    "flow_run_flow_id_name_id": "1000000 20000 1 1",
    "flow_run_flow_id_start_or_expected": "1000000 20000 1",
    "flow_run_flow_version": "1000000 100000",
    "flow_run_name": "1000000 1",
    "flow_run_next_scheduled_start_time": "1000000 10",
    "flow_run_start_time": "1000000 2",
    "flow_run_state_id": "1000000 1",
    "flow_run_state_name": "1000000 125000",
    "flow_run_state_type": "1000000 142858",
    "flow_run_state_type_next_scheduled_start_time": "1000000 142858 10",
    "flow_run_state_type_start_or_expected": "1000000 142858 1",
    "flow_run_state_type_end_time_id": "1000000 142858 2 1",
    "flow_run_state_type_name_id": "1000000 142858 1 1",
    "flow_run_updated": "1000000 50000",
    "flow_run_work_queue_id_state_type_next_scheduled_start_time": "1000000 111112 25642 10",
    "flow_run_work_queue_name": "1000000 111112",
    "flow_run_work_queue_name_state_type_due_queue_id": "1000000 111112 25642 10 10",
    "sqlite_autoindex_flow_run_1": "1000000 1",
}


def plan_with_bench_stats(caplog, body):
    """The SQLite plan of ``read_page``'s one statement for the flow runs ``body`` with the
    statistics of the bench's 1,000,000 runs (:data:`BENCH_STATS`), written inside a
    transaction rolled back afterwards."""
    with database.atomic() as transaction:
        database.execute_sql("ANALYZE")
        for index, stat in BENCH_STATS.items():
            database.execute_sql(
                "UPDATE sqlite_stat1 SET stat = ? WHERE tbl = 'flow_run' AND idx = ?",
                (stat, index),
            )
        database.execute_sql("ANALYZE sqlite_master")  # reload the statistics
        (statement,) = statements(caplog, lambda: runs.read_page(FlowRun, FlowRunState, body))
        plan = plan_of(*statement)
        transaction.rollback()
    database.execute_sql("ANALYZE sqlite_master")
    return plan


def test_a_state_page_keeps_the_state_type_index_on_sqlite(world, caplog):
    """The first page of FAILED runs, START_TIME_DESC, reads the FAILED runs through the
    state type index on SQLite with the statistics of 1,000,000 runs: 0028's index must
    not hold the sort's whole order (one with the id right after the expression did, and
    SQLite walked it testing every run's state: 250-350 ms instead of 5-6, bench/README.md)."""
    if not is_sqlite():
        return
    body = {
        "flow_runs": {"state": {"type": {"any_": ["FAILED"]}}},
        "sort": "START_TIME_DESC",
        "limit": 51,
        "offset": 0,
    }
    plan = plan_with_bench_stats(caplog, body)
    assert plan[0].startswith("SEARCH t1 USING INDEX flow_run_state_type_start_or_expected"), plan


STATE_SORT_INDEXES = {
    "END_TIME_DESC": "flow_run_state_type_end_time_id",
    "NAME_ASC": "flow_run_state_type_name_id",
    "NAME_DESC": "flow_run_state_type_name_id",
}


@pytest.mark.parametrize("sort", list(STATE_SORT_INDEXES))
def test_a_state_page_by_end_time_or_name_searches_its_index_on_sqlite(world, caplog, sort):
    """The first page of FAILED runs by end time or by name, with the statistics of 1,000,000
    runs, searches migration 0029's index in the sort's order (no sort step) and reads the
    rows of the page's runs only: SQLite walked the sort's index testing each run's state
    instead (170-680 ms, bench/README.md)."""
    if not is_sqlite():
        return
    body = {
        "flow_runs": {"state": {"type": {"any_": ["FAILED"]}}},
        "sort": sort,
        "limit": 51,
        "offset": 0,
    }
    plan = plan_with_bench_stats(caplog, body)
    index = STATE_SORT_INDEXES[sort]
    assert plan[0] == f"SEARCH t1 USING INDEX {index} (state_type=?)", plan
    assert not any("TEMP B-TREE" in step for step in plan), plan


SPLIT_SORTS = list(runs.STATE_ORDERED_SORTS[FlowRun])


def page_statement(caplog, json_body):
    """The one statement (SQL, parameters) of ``read_page`` for a flow runs body (JSON)."""
    body = BODY_SCHEMAS[FlowRun].load(json_body)
    (statement,) = statements(caplog, lambda: runs.read_page(FlowRun, FlowRunState, body))
    return statement


@pytest.mark.parametrize("sort", SPLIT_SORTS)
def test_several_states_are_one_sorted_part_per_state(world, caplog, sort):
    """A page of flow runs in several states, under a sort that follows the state type in an
    index, is chosen among one part per state, each limited to ``offset + limit`` runs (the
    pages equal the plain query: :func:`test_every_page_equals_the_plain_query`); past
    :data:`runs.STATE_PARTS_MAX_RUNS` in all, or under another sort, it is one query."""
    listed = ["FAILED", "RUNNING", "SCHEDULED"]
    json_body = {"flow_runs": {"state": {"type": {"any_": listed}}}, "sort": sort}
    for offset in (0, 7):
        sql, params = page_statement(caplog, {**json_body, "limit": 7, "offset": offset})
        assert sql.count("UNION ALL") == len(listed) - 1, sql
        assert [p for p in params if p in listed or p == offset + 7][: 2 * len(listed)] == [
            value for state_type in listed for value in (state_type, offset + 7)
        ], params
        assert [p for p in params if p in listed] == listed, params
    deep = runs.STATE_PARTS_MAX_RUNS // len(listed)
    for json_deep in (
        {**json_body, "limit": 7, "offset": deep},
        {**json_body, "sort": "EXPECTED_START_TIME_DESC", "limit": 7, "offset": 0},
    ):
        sql, _ = page_statement(caplog, json_deep)
        assert "UNION ALL" not in sql, json_deep


@pytest.mark.parametrize("sort", ["START_TIME_DESC", "END_TIME_DESC", "NAME_ASC"])
def test_failed_and_crashed_pages_search_one_range_per_state_on_sqlite(world, caplog, sort):
    """The first page of FAILED+CRASHED runs newest first, by end time and by name, with the
    statistics of 1,000,000 runs: each state's part searches its range of the index that
    follows the state type with the sort key, and the page reads only the parts' runs by
    rowid (one query walked the sort's index testing each run's state: 270-290 ms p50,
    bench/README.md)."""
    if not is_sqlite():
        return
    body = {
        "flow_runs": {"state": {"type": {"any_": ["FAILED", "CRASHED"]}}},
        "sort": sort,
        "limit": 51,
        "offset": 0,
    }
    plan = plan_with_bench_stats(caplog, body)
    index = {
        "START_TIME_DESC": "flow_run_state_type_start_or_expected",
        "END_TIME_DESC": "flow_run_state_type_end_time_id",
        "NAME_ASC": "flow_run_state_type_name_id",
    }[sort]
    searches = [step for step in plan if f"INDEX {index} (state_type=?)" in step]
    assert len(searches) == 2, plan
    assert "SEARCH t1 USING INTEGER PRIMARY KEY (rowid=?)" in plan, plan
    assert not any(step.startswith("SCAN t1") for step in plan), plan


def postgres_plan(statement):
    """PostgreSQL's plan of ``statement`` (SQL, params) with sequential and bitmap scans and
    sorts priced out: the plan reads the runs in the sort's order from an index, or sorts."""
    with database.atomic() as transaction:
        for setting in ("seqscan", "bitmapscan", "sort", "incremental_sort"):
            database.execute_sql(f"SET LOCAL enable_{setting} = off")
        sql, params = statement
        plan = [row[0] for row in database.execute_sql("EXPLAIN " + sql, params)]
        transaction.rollback()
    return plan


FLOW_SORT_INDEXES = {
    "END_TIME_DESC": "flow_run_flow_id_end_time_id",
    "NAME_ASC": "flow_run_flow_id_name_id",
    "NAME_DESC": "flow_run_flow_id_name_id",
}


@pytest.mark.parametrize("sort", list(FLOW_SORT_INDEXES))
def test_a_flow_page_by_end_time_or_name_searches_its_index(world, caplog, sort):
    """The first page of one flow's runs by end time or by name reads migration 0030's index
    range of that flow in the sort's order, with no sort step: both backends walked the sort's
    index testing each run's flow instead (SQLite 120-260 ms, PostgreSQL 530-2,600 with
    1,000,000 runs, bench/README.md). SQLite's plan is the one it makes with the bench's
    statistics; on PostgreSQL, whose plans follow its statistics of the rows present, the
    test shows the index serves the sort (NULLs and the id's direction included): the
    bench's plans choose it."""
    body = {
        "flows": {"id": {"any_": [str(world["flows"][0])]}},
        "sort": sort,
        "limit": 51,
        "offset": 0,
    }
    index = FLOW_SORT_INDEXES[sort]
    if is_sqlite():
        plan = plan_with_bench_stats(caplog, body)
        assert plan[0] == f"SEARCH t1 USING INDEX {index} (flow_id=?)", plan
        assert not any("TEMP B-TREE" in step for step in plan), plan
        return
    (statement,) = statements(caplog, lambda: runs.read_page(FlowRun, FlowRunState, body))
    plan = postgres_plan(statement)
    assert any(f"using {index} on flow_run t1" in step for step in plan), plan
    assert any("Index Cond: (flow_id = " in step for step in plan), plan
    assert not any("Sort" in step for step in plan), plan


POSTGRES_STATE_SORT_INDEXES = {
    **STATE_SORT_INDEXES,
    "EXPECTED_START_TIME_ASC": "flow_run_state_type_expected_start_time_id",
    "EXPECTED_START_TIME_DESC": "flow_run_state_type_expected_start_time_id",
}


@pytest.mark.parametrize("sort", list(POSTGRES_STATE_SORT_INDEXES))
def test_a_state_page_by_end_time_name_or_expected_start_searches_its_index_on_postgres(
    world, caplog, sort
):
    """On PostgreSQL the first page of RUNNING runs by end time, by name or by expected start
    reads migration 0030's index range of that state in the sort's order, with no sort step:
    it walked the sort's index testing each run's state instead (240-2,500 ms with 1,000,000
    runs, bench/README.md). As above, the test shows the index serves the sort."""
    if is_sqlite():
        return
    body = {
        "flow_runs": {"state": {"type": {"any_": ["RUNNING"]}}},
        "sort": sort,
        "limit": 51,
        "offset": 0,
    }
    (statement,) = statements(caplog, lambda: runs.read_page(FlowRun, FlowRunState, body))
    plan = postgres_plan(statement)
    index = POSTGRES_STATE_SORT_INDEXES[sort]
    assert any(f"using {index} on flow_run t1" in step for step in plan), plan
    assert any("Index Cond: ((state_type)::text = " in step for step in plan), plan
    assert not any("Sort" in step for step in plan), plan
