"""Task run inputs (the dependency graph's edges) recorded by real flows on the real app (both
backends): an edge only from a task's future, its state or the very object it returned, never
from a value Python shares between unrelated objects; ``.map()`` and nested collections too.
"""

from client import flow, task, unmapped
from client.sdk.context import is_trackable


@task
def constant(value):
    return value


@task
def echo(value):
    return value


@task
def size(value):
    return len(value)


@task
def numbers(n):
    return list(range(n))


@task
def pair(x, y):
    return [x, y]


def _runs(orion):
    """The test's task runs by name."""
    return {run["name"]: run for run in orion.read_task_runs()}


def _upstream(run, name=None):
    """The ids of the task runs ``run`` records as inputs (of parameter ``name``, or all)."""
    inputs = run.task_inputs if name is None else {name: run.task_inputs[name]}
    return {
        ref["id"] for refs in inputs.values() for ref in refs if ref["input_type"] == "task_run"
    }


def _graph_edges(orion, flow_run_id):
    """What the server's graph draws: node id -> upstream ids."""
    return {
        node["id"]: {d["id"] for d in node["upstream_dependencies"]}
        for node in orion.read_flow_run_graph(flow_run_id)
    }


def test_shared_values_returned_by_a_task_make_no_edge(orion):
    """``0``, ``True``, ``None``, an interned string or a small tuple returned by one task is
    the very object the flow passes to another; that proves nothing and draws no edge."""
    shared = [0, 255, 1000, 2.5, True, None, "ok", "", (1, 2), ()]

    @flow
    def shares():
        for value in shared:
            constant(value)
        for value in shared:
            echo(value)

    shares()
    runs = _runs(orion)
    assert all(_upstream(runs[f"echo-{i}"]) == set() for i in range(len(shared)))
    assert runs["echo-0"].task_inputs == {"value": [{"input_type": "constant", "type": "int"}]}
    flow_run_id = runs["echo-0"]["flow_run_id"]
    assert all(upstream == set() for upstream in _graph_edges(orion, flow_run_id).values())


def test_the_very_object_a_task_returned_makes_an_edge(orion):
    @flow
    def chain():
        items = numbers(3)
        size(items)  # the object itself
        size(list(items))  # an equal list is another object: no edge
        size({"k": [items]})  # nested in a dict and a list
        size([items[-1]])  # an element of it is a small int: no edge
        echo(items)  # a task that returns the object it was given...
        size(items)  # ...is now where it came from, as in Prefect

    chain()
    runs = _runs(orion)
    source = runs["numbers-0"]["id"]
    assert _upstream(runs["size-0"]) == {source}
    assert _upstream(runs["size-1"]) == set()
    assert _upstream(runs["size-2"]) == {source}
    assert _upstream(runs["size-3"]) == set()
    assert _upstream(runs["size-4"]) == {runs["echo-0"]["id"]}
    edges = _graph_edges(orion, runs["size-0"]["flow_run_id"])
    assert edges[runs["size-0"]["id"]] == {source} and edges[runs["size-1"]["id"]] == set()


def test_futures_and_states_make_edges_at_any_depth(orion):
    @flow
    def fan_in():
        a, b = constant.submit(0), constant.submit(0)
        state = b.wait()
        echo.submit({"first": [a], "second": (state,)})
        pair(a, 0)

    fan_in()
    runs = _runs(orion)
    a, b = runs["constant-0"]["id"], runs["constant-1"]["id"]
    assert _upstream(runs["echo-0"]) == {a, b}
    assert _upstream(runs["pair-0"], "x") == {a}
    # The literal 0 is the object the upstream runs returned, yet no edge.
    assert runs["pair-0"].task_inputs["y"] == [{"input_type": "constant", "type": "int"}]


def test_map_records_where_each_element_came_from(orion):
    @flow
    def mapped():
        source = numbers.submit(3)
        per_element = [constant.submit(i) for i in range(3)]
        scale = constant.submit(10)
        over_future = pair.map(source, unmapped(scale))
        over_futures = pair.map(per_element, 0)
        over_result = echo.map(numbers(2))
        return over_future, over_futures, over_result

    mapped()
    runs = _runs(orion)
    source, scale = runs["numbers-0"]["id"], runs["constant-3"]["id"]
    elements = [runs[f"constant-{i}"]["id"] for i in range(3)]
    for i in range(3):
        assert _upstream(runs[f"pair-{i}"], "x") == {source}
        assert _upstream(runs[f"pair-{i}"], "y") == {scale}
    for i in range(3):
        run = runs[f"pair-{3 + i}"]
        assert _upstream(run, "x") == {elements[i]}
        assert run.task_inputs["y"] == [{"input_type": "constant", "type": "int"}]
    listed = runs["numbers-1"]["id"]
    assert _upstream(runs["echo-0"]) == _upstream(runs["echo-1"]) == {listed}
    edges = _graph_edges(orion, runs["pair-0"]["flow_run_id"])
    assert edges[runs["pair-4"]["id"]] == {elements[1]}
    assert edges[runs["pair-0"]["id"]] == {source, scale}


def test_trackable_values():
    assert not any(
        is_trackable(v)
        for v in (0, 10**6, 1.5, True, None, "s", b"", (1, "a"), frozenset(), Ellipsis)
    )
    assert all(is_trackable(v) for v in ([], {}, set(), ([],), object()))
