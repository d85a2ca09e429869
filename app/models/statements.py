"""Pre-built SQL for the statements every state transition runs.

peewee compiles a query by walking its expression tree on every execution: for a run with
thirty columns that is 0.15-0.4 ms per statement, a third of a ``set_state``'s server time.
The statements here have a fixed shape (read a run and its current state by id, insert a row,
update some columns of a row by id), so the SQL text of each shape is built once per database
type and only the parameters are converted per call, by each field's own ``db_value`` and
``python_value``: rows read and written here are exactly what peewee would read and write.
Single-row statements run prepared (``execute_prepared`` in ``app.db``): on PostgreSQL the
server then skips parsing and planning them too.
"""

import functools

from peewee import Entity, Function, Node

from app.db import database, is_sqlite
from app.models.base import utcnow
from app.models.runs import FlowRun, TaskRun


def _database_type():
    return type(database.obj)


def _compile(node):
    """(sql, params) of one peewee node on the bound database."""
    return database.get_sql_context().sql(node).query()


def _value_sql(field, value, params):
    """SQL for ``value`` bound to ``field`` (usually a placeholder); appends its params.

    Some values compile to an expression rather than a bare placeholder (SQLite's JSON
    columns are written as ``json(?)``), so each value is compiled on its own: cheap, unlike
    compiling the whole statement.
    """
    converted = field.db_value(value)
    if (
        type(converted) is Function
        and converted.name == "json"
        and len(converted.arguments) == 1
        and not isinstance(converted.arguments[0], Node)
    ):
        # SQLite's JSON value, json(<text>): the one wrapper worth not compiling every time.
        params.append(converted.arguments[0])
        return f"json({database.obj.param})"
    if isinstance(converted, Node):
        sql, node_params = _compile(converted)
        params.extend(node_params)
        return sql
    params.append(converted)
    return database.obj.param


@functools.cache
def _quoted(model, database_type):
    """The model's quoted table name and a {field name: quoted column} map."""
    table = _compile(Entity(model._meta.table_name))[0]
    columns = {f.name: _compile(Entity(f.column_name))[0] for f in model._meta.sorted_fields}
    return table, columns


@functools.cache
def _select_by_id_sql(model, lock, database_type):
    table, columns = _quoted(model, database_type)
    selected = ", ".join(columns[f.name] for f in model._meta.sorted_fields)
    sql = f"SELECT {selected} FROM {table} WHERE ({columns['id']} = {database.obj.param})"
    return sql + " FOR UPDATE" if lock else sql


@functools.cache
def _select_with_state_sql(model, state_model, database_type):
    run_table, run_columns = _quoted(model, database_type)
    state_table, state_columns = _quoted(state_model, database_type)
    selected = ", ".join(
        [f"r.{run_columns[f.name]}" for f in model._meta.sorted_fields]
        + [f"s.{state_columns[f.name]}" for f in state_model._meta.sorted_fields]
    )
    return (
        f"SELECT {selected} FROM {run_table} AS r "
        f"LEFT OUTER JOIN {state_table} AS s "
        f"ON (s.{state_columns['id']} = r.{run_columns['state_id']}) "
        f"WHERE (r.{run_columns['id']} = {database.obj.param})"
    )


def _instance(model, fields, values):
    """A clean (nothing dirty) model instance from raw column values, as peewee builds one."""
    instance = model(__no_default__=1)
    instance.__data__ = {f.name: f.python_value(v) for f, v in zip(fields, values)}
    return instance


def select_by_id(model, row_id, lock=False):
    """The row of ``model`` with this id, or None; ``lock`` holds it until the transaction
    ends (``FOR UPDATE`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` holds the write lock)."""
    fields = model._meta.sorted_fields
    sql = _select_by_id_sql(model, lock and not is_sqlite(), _database_type())
    row = database.execute_prepared(sql, (model.id.db_value(row_id),)).fetchone()
    return None if row is None else _instance(model, fields, row)


def select_run_with_state(model, state_model, run_id, lock=False):
    """The run ``run_id`` of ``model`` and its current state row: ``(run, state)``.

    ``state`` is None when the run has no state yet; ``(None, None)`` when there is no such
    run. ``lock`` as in :func:`select_by_id`.

    A locked read on PostgreSQL sends two statements in one round trip: the first locks the
    run row (deferred: its result is not needed), the second reads run and state. They cannot
    be one statement: a join would read the state table in the snapshot taken before waiting
    for the lock, and miss the state a concurrent transition just committed; each statement of
    the pair takes its own snapshot.
    """
    params = (model.id.db_value(run_id),)
    if lock and not is_sqlite():
        database.execute_deferred(_lock_sql(model, _database_type()), params, prepared=True)
    sql = _select_with_state_sql(model, state_model, _database_type())
    row = database.execute_prepared(sql, params).fetchone()
    if row is None:
        return None, None
    run_fields = model._meta.sorted_fields
    state_fields = state_model._meta.sorted_fields
    run = _instance(model, run_fields, row[: len(run_fields)])
    state_values = row[len(run_fields) :]
    state = None if state_values[0] is None else _instance(state_model, state_fields, state_values)
    return run, state


@functools.cache
def _lock_sql(model, database_type):
    table, columns = _quoted(model, database_type)
    return (
        f"SELECT {columns['id']} FROM {table} "
        f"WHERE ({columns['id']} = {database.obj.param}) FOR UPDATE"
    )


@functools.cache
def _select_fields_sql(model, names, database_type):
    table, columns = _quoted(model, database_type)
    selected = ", ".join(columns[name] for name in names)
    return f"SELECT {selected} FROM {table} WHERE ({columns['id']} = {database.obj.param})"


def select_fields(model, names, row_id):
    """{name: value} of the fields ``names`` (a tuple) of the ``model`` row with this id, or
    None if there is no such row."""
    sql = _select_fields_sql(model, names, _database_type())
    row = database.execute_prepared(sql, (model.id.db_value(row_id),)).fetchone()
    if row is None:
        return None
    fields = model._meta.fields
    return {name: fields[name].python_value(value) for name, value in zip(names, row)}


@functools.cache
def _task_run_and_flow_run_sql(database_type):
    task_table, task_columns = _quoted(TaskRun, database_type)
    flow_table, flow_columns = _quoted(FlowRun, database_type)
    param = database.obj.param
    return (
        f"SELECT t.{task_columns['id']}, f.{flow_columns['state_type']}, "
        f"f.{flow_columns['run_count']} FROM {flow_table} AS f "
        f"LEFT OUTER JOIN {task_table} AS t ON (t.{task_columns['flow_run']} = "
        f"f.{flow_columns['id']} AND t.{task_columns['task_key']} = {param} "
        f"AND t.{task_columns['dynamic_key']} = {param}) "
        f"WHERE (f.{flow_columns['id']} = {param})"
    )


def find_task_run(flow_run_id, task_key, dynamic_key):
    """The id of the task run of this flow run with this task key and dynamic key (None if
    there is none), and what the task orchestration rules read of the flow run
    (``{"state_type", "run_count"}``; None, with no id, if the flow run does not exist).

    One statement, so that creating a task run and learning whether it was new (after an
    ``INSERT ... ON CONFLICT DO NOTHING`` sent deferred) costs the same round trip as the
    read of the flow run its first transition needs anyway.
    """
    sql = _task_run_and_flow_run_sql(_database_type())
    fields = FlowRun._meta.fields
    row = database.execute_prepared(
        sql,
        (
            TaskRun.task_key.db_value(task_key),
            TaskRun.dynamic_key.db_value(dynamic_key),
            FlowRun.id.db_value(flow_run_id),
        ),
    ).fetchone()
    if row is None:
        return None, None
    task_run_id = None if row[0] is None else TaskRun.id.python_value(row[0])
    return task_run_id, {
        "state_type": fields["state_type"].python_value(row[1]),
        "run_count": fields["run_count"].python_value(row[2]),
    }


@functools.cache
def _exists_sql(model, database_type):
    table, columns = _quoted(model, database_type)
    return f"SELECT 1 FROM {table} WHERE ({columns['id']} = {database.obj.param})"


def exists(model, row_id):
    """True if a row of ``model`` with this id exists."""
    sql = _exists_sql(model, _database_type())
    return database.execute_prepared(sql, (model.id.db_value(row_id),)).fetchone() is not None


def insert_row(model, values, ignore_conflict=False, deferred=False):
    """INSERT one row of ``model`` from ``values`` ({field name: python value}).

    With ``ignore_conflict``, a row that would break a unique constraint is silently not
    inserted. Returns the number of rows inserted (0 or 1), or None when ``deferred``: the
    statement is then sent with the transaction's next statement or its commit
    (``execute_deferred`` in ``app.db``), and an error it raises surfaces there.
    """
    table, columns = _quoted(model, _database_type())
    fields = model._meta.fields
    params = []
    placeholders = ", ".join(
        _value_sql(fields[name], value, params) for name, value in values.items()
    )
    names = ", ".join(columns[name] for name in values)
    verb, suffix = "INSERT", ""
    if ignore_conflict:
        verb, suffix = (
            ("INSERT OR IGNORE", "") if is_sqlite() else ("INSERT", " ON CONFLICT DO NOTHING")
        )
    sql = f"{verb} INTO {table} ({names}) VALUES ({placeholders}){suffix}"
    if deferred:
        database.execute_deferred(sql, params, prepared=True)
        return None
    return database.execute_prepared(sql, params).rowcount


def update_dirty(instance, deferred=False):
    """UPDATE the columns of ``instance`` assigned since it was read; True if any were.

    The same contract as ``BaseModel.save()`` on an existing row (``updated`` is stamped
    too), without compiling the statement: afterwards nothing is dirty. ``deferred`` as for
    :func:`insert_row`.
    """
    if not instance._dirty:
        return False
    instance.updated = utcnow()
    names = [name for name in instance._dirty if name != "id"]
    model = type(instance)
    table, columns = _quoted(model, _database_type())
    fields = model._meta.fields
    params = []
    assignments = ", ".join(
        f"{columns[name]} = {_value_sql(fields[name], instance.__data__[name], params)}"
        for name in names
    )
    where = _value_sql(model.id, instance.id, params)
    sql = f"UPDATE {table} SET {assignments} WHERE ({columns['id']} = {where})"
    if deferred:
        database.execute_deferred(sql, params, prepared=True)
    else:
        database.execute_prepared(sql, params)
    instance._dirty.clear()
    return True


@functools.cache
def _delete_by_sql(model, field_name, database_type):
    table, columns = _quoted(model, database_type)
    return f"DELETE FROM {table} WHERE ({columns[field_name]} = {database.obj.param})"


def delete_by(model, field_name, value, deferred=False):
    """DELETE the rows of ``model`` whose ``field_name`` equals ``value``; returns the count
    (None when ``deferred``, as for :func:`insert_row`)."""
    field = model._meta.fields[field_name]
    sql = _delete_by_sql(model, field_name, _database_type())
    if deferred:
        database.execute_deferred(sql, (field.db_value(value),), prepared=True)
        return None
    return database.execute_prepared(sql, (field.db_value(value),)).rowcount


def insert_rows(model, rows, ignore_conflict=False):
    """INSERT many rows of ``model`` in one statement; ``rows`` are dicts with the same keys
    ({field name: python value}), as for :func:`insert_row`.

    With ``ignore_conflict``, rows that would break a unique constraint are silently left
    out. Returns the number of rows inserted. Callers keep ``len(rows) * columns`` under the
    backend's parameter limit (32,766 on SQLite, 65,535 on PostgreSQL).
    """
    if not rows:
        return 0
    table, columns = _quoted(model, _database_type())
    names = list(rows[0])
    fields = [model._meta.fields[name] for name in names]
    params = []
    values = ", ".join(
        "("
        + ", ".join(_value_sql(field, row[name], params) for field, name in zip(fields, names))
        + ")"
        for row in rows
    )
    verb, suffix = "INSERT", ""
    if ignore_conflict:
        verb, suffix = (
            ("INSERT OR IGNORE", "") if is_sqlite() else ("INSERT", " ON CONFLICT DO NOTHING")
        )
    cursor = database.execute_sql(
        f"{verb} INTO {table} ({', '.join(columns[n] for n in names)}) VALUES {values}{suffix}",
        params,
    )
    return cursor.rowcount


def update_rows(model, rows, per_row, constants):
    """UPDATE many rows of ``model`` by id in one statement (``UPDATE ... FROM (VALUES ...)``,
    a join rather than a CASE per column, so its cost grows linearly with the rows).

    ``rows`` are dicts holding ``id`` and the fields named in ``per_row`` (each row's own
    value); ``constants`` ({field name: python value}) are set on every row. Returns the
    number of rows updated. Keep ``len(rows) * (len(per_row) + 1)`` under the backend's
    parameter limit.
    """
    if not rows:
        return 0
    table, columns = _quoted(model, _database_type())
    fields = model._meta.fields
    names = ["id", *per_row]
    # VALUES columns are column1, column2 ... on both backends; PostgreSQL types bare
    # parameters as text, so each is cast to its column's type where it is used.
    types = None if is_sqlite() else database.obj.field_types

    def value(name, position):
        ref = f"v.column{position}"
        if types is None:
            return ref
        field = fields[name]
        return f"CAST({ref} AS {types.get(field.field_type, field.field_type)})"

    params = []  # in the order of the statement's text: the constants, then the VALUES
    assignments = [f"{columns[name]} = {value(name, i + 2)}" for i, name in enumerate(per_row)]
    assignments += [
        f"{columns[name]} = {_value_sql(fields[name], v, params)}" for name, v in constants.items()
    ]
    values = ", ".join(
        "(" + ", ".join(_value_sql(fields[name], row[name], params) for name in names) + ")"
        for row in rows
    )
    cursor = database.execute_sql(
        f"UPDATE {table} SET {', '.join(assignments)} FROM (VALUES {values}) AS v "
        f"WHERE {table}.{columns['id']} = {value('id', 1)}",
        params,
    )
    return cursor.rowcount
