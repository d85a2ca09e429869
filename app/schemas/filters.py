"""Bodies of the ``POST …/filter`` and ``…/count`` endpoints (ORION-REFERENCE.md §4).

Loaded data is plain dicts keyed exactly like the JSON, e.g. ``{"flow_runs": {"operator":
"and_", "state": {"operator": "and_", "type": {"any_": ["FAILED"]}}}, "sort": "ID_DESC",
"limit": 200, "offset": 0}``: ids are ``uuid.UUID``, times aware ``datetime``, sorts their
string names. ``null`` anywhere is the same as leaving the key out (Prefect clients send
``null`` for every criterion they do not use), so it never reaches the services.
:mod:`app.services.filters` turns these dicts into SQL.

Keys this server does not know (filters on features it lacks, such as ``work_pools`` or
``artifacts``, or criteria newer Prefect versions added) are dropped when *empty*: ``null``,
``{}``, or an object whose criteria are all empty, which is how clients send the filters they do
not use. A non-empty one is a 422 naming it: ignoring it would silently widen the result.
"""

from marshmallow import ValidationError, fields, post_load, pre_load, validate

from app.schemas import limits
from app.schemas.base import DateTime, InputSchema, List, String
from app.states import STATE_TYPE_VALUES

OPERATORS = ("and_", "or_")

FLOW_RUN_SORTS = (
    "ID_DESC",
    "START_TIME_ASC",
    "START_TIME_DESC",
    "EXPECTED_START_TIME_ASC",
    "EXPECTED_START_TIME_DESC",
    "NAME_ASC",
    "NAME_DESC",
    "NEXT_SCHEDULED_START_TIME_ASC",
    "END_TIME_DESC",
)
TASK_RUN_SORTS = tuple(s for s in FLOW_RUN_SORTS if not s.startswith("START_TIME_"))
FLOW_SORTS = ("CREATED_DESC", "UPDATED_DESC", "NAME_ASC", "NAME_DESC")
VARIABLE_SORTS = FLOW_SORTS
ARTIFACT_SORTS = ("CREATED_DESC", "UPDATED_DESC", "ID_DESC", "KEY_DESC", "KEY_ASC")
DEPLOYMENT_SORTS = FLOW_SORTS
LOG_SORTS = (
    "TIMESTAMP_ASC",
    "TIMESTAMP_DESC",
    "LEVEL_ASC",
    "LEVEL_DESC",
    "FLOW_RUN_ID_ASC",
    "FLOW_RUN_ID_DESC",
    "TASK_RUN_ID_ASC",
    "TASK_RUN_ID_DESC",
)


UNSUPPORTED_FILTER = (
    "Not supported by this server: it cannot apply this filter, and ignoring "
    "it would widen the result. Send null or leave it out."
)


def is_empty_filter(value):
    """True for a filter that asks nothing: null, or an object whose criteria (every key but
    ``operator``) are all empty. Lists, strings, numbers and booleans are constraints (an
    ``any_`` of ``[]`` matches nothing)."""
    if value is None:
        return True
    if isinstance(value, dict):
        return all(is_empty_filter(v) for k, v in value.items() if k != "operator")
    return False


class FilterSchema(InputSchema):
    """Base of every filter body and criterion: a ``null`` value is an absent key, an empty
    unknown key is dropped and a non-empty one refused (see the module docstring)."""

    @pre_load
    def drop_what_asks_nothing(self, data, **kwargs):
        if not isinstance(data, dict):
            return data
        known = self.load_fields
        unsupported = {
            key: [UNSUPPORTED_FILTER]
            for key, value in data.items()
            if key not in known and not is_empty_filter(value)
        }
        if unsupported:
            raise ValidationError(unsupported)
        return {key: value for key, value in data.items() if key in known and value is not None}


class OperatorSchema(FilterSchema):
    """A filter whose present criteria are combined with ``operator`` (default ``and_``)."""

    operator = fields.String(load_default="and_", validate=validate.OneOf(OPERATORS))


def _uuids(description):
    return List(fields.UUID(), metadata={"description": description})


def _strings(description):
    return List(String(limits.FILTER_STRING_MAX_LENGTH), metadata={"description": description})


def _flag(description):
    return fields.Boolean(metadata={"description": description})


def _like():
    return String(
        limits.FILTER_STRING_MAX_LENGTH,
        metadata={"description": "Case-insensitive substring match."},
    )


# Criteria: one object per column, keys are the operator suffixes it supports.
class UUIDAnyFilter(FilterSchema):
    any_ = _uuids("Only these ids.")


class UUIDAnyNotAnyFilter(FilterSchema):
    any_ = _uuids("Only these ids.")
    not_any_ = _uuids("None of these ids.")


class UUIDAnyOperatorFilter(OperatorSchema):
    any_ = _uuids("Only these ids.")


class UUIDAnyIsNullFilter(OperatorSchema):
    any_ = _uuids("Only these ids.")
    is_null_ = _flag("true: only rows without one; false: only rows with one.")


class StringAnyFilter(FilterSchema):
    any_ = _strings("Only these values.")


class StringAnyIsNullFilter(OperatorSchema):
    any_ = _strings("Only these values.")
    is_null_ = _flag("true: only rows without one; false: only rows with one.")


class StringAnyNotAnyFilter(FilterSchema):
    any_ = _strings("Only these values.")
    not_any_ = _strings("None of these values.")


class NameFilter(FilterSchema):
    any_ = _strings("Only these names.")
    like_ = _like()


class WorkQueueNameFilter(FilterSchema):
    any_ = _strings("Only these names.")
    startswith_ = _strings("Names starting with any of these prefixes (case-insensitive).")


class TagsFilter(OperatorSchema):
    all_ = _strings("Rows whose tags include every one of these.")
    is_null_ = _flag("true: only rows without tags; false: only rows with tags.")


class StateTypeFilter(FilterSchema):
    any_ = List(
        fields.String(validate=validate.OneOf(STATE_TYPE_VALUES)),
        metadata={"description": "Only these state types."},
    )


class StateFilter(OperatorSchema):
    type = fields.Nested(StateTypeFilter)
    name = fields.Nested(StringAnyFilter)


class TimeRangeFilter(FilterSchema):
    before_ = DateTime(metadata={"description": "At or before this time."})
    after_ = DateTime(metadata={"description": "At or after this time."})


class NullableTimeFilter(TimeRangeFilter):
    is_null_ = _flag("true: only rows without this time; false: only rows with it.")


class BoolEqFilter(FilterSchema):
    eq_ = fields.Boolean()


class ExistsFilter(FilterSchema):
    exists_ = _flag("true: only rows that have one; false: only rows that have none.")


class LevelFilter(FilterSchema):
    ge_ = fields.Integer(metadata={"description": "Level at least this."})
    le_ = fields.Integer(metadata={"description": "Level at most this."})


# Object filters.
class FlowFilter(OperatorSchema):
    """Criteria on flows."""

    id = fields.Nested(UUIDAnyFilter)
    name = fields.Nested(NameFilter)
    tags = fields.Nested(TagsFilter)


class FlowRunFilter(OperatorSchema):
    """Criteria on flow runs."""

    id = fields.Nested(UUIDAnyNotAnyFilter)
    name = fields.Nested(NameFilter)
    tags = fields.Nested(TagsFilter)
    deployment_id = fields.Nested(UUIDAnyIsNullFilter)
    work_queue_name = fields.Nested(StringAnyIsNullFilter)
    state = fields.Nested(StateFilter)
    flow_version = fields.Nested(StringAnyFilter)
    start_time = fields.Nested(NullableTimeFilter)
    expected_start_time = fields.Nested(TimeRangeFilter)
    next_scheduled_start_time = fields.Nested(TimeRangeFilter)
    parent_task_run_id = fields.Nested(UUIDAnyIsNullFilter)
    parent_flow_run_id = fields.Nested(
        UUIDAnyOperatorFilter, metadata={"description": "Subflow runs of these flow runs."}
    )
    idempotency_key = fields.Nested(StringAnyNotAnyFilter)


class TaskRunFilter(OperatorSchema):
    """Criteria on task runs; ``subflow_runs.exists_`` selects subflows' parent task runs."""

    id = fields.Nested(UUIDAnyFilter)
    name = fields.Nested(NameFilter)
    tags = fields.Nested(TagsFilter)
    state = fields.Nested(StateFilter)
    start_time = fields.Nested(NullableTimeFilter)
    subflow_runs = fields.Nested(ExistsFilter)
    flow_run_id = fields.Nested(UUIDAnyIsNullFilter)


class DeploymentFilter(OperatorSchema):
    """Criteria on deployments."""

    id = fields.Nested(UUIDAnyFilter)
    name = fields.Nested(NameFilter)
    is_schedule_active = fields.Nested(BoolEqFilter)
    paused = fields.Nested(BoolEqFilter)
    tags = fields.Nested(TagsFilter)
    work_queue_name = fields.Nested(StringAnyFilter)


class LogFilter(OperatorSchema):
    """Criteria on log records."""

    level = fields.Nested(LevelFilter)
    timestamp = fields.Nested(TimeRangeFilter)
    flow_run_id = fields.Nested(UUIDAnyFilter)
    task_run_id = fields.Nested(UUIDAnyFilter)


class WorkQueueFilter(OperatorSchema):
    """Criteria on work queues.

    Prefect 2.20's UI looks several queues up by name in one request and its filter mapper
    sends the names as ids too (``id.any_`` equal to ``name.any_``, which no queue's id can
    match); such an ``id`` criterion is dropped, so the names select the queues it asks for.
    """

    id = fields.Nested(UUIDAnyFilter)
    name = fields.Nested(WorkQueueNameFilter)

    @pre_load
    def drop_names_sent_as_ids(self, data, **kwargs):
        if not isinstance(data, dict):
            return data
        ids, names = data.get("id"), data.get("name")
        if (
            isinstance(ids, dict)
            and isinstance(names, dict)
            and set(ids) == {"any_"}
            and ids["any_"]
            and ids["any_"] == names.get("any_")
        ):
            return {key: value for key, value in data.items() if key != "id"}
        return data


class WorkPoolFilter(OperatorSchema):
    """Criteria on work pools."""

    id = fields.Nested(UUIDAnyFilter)
    name = fields.Nested(StringAnyFilter)
    type = fields.Nested(StringAnyFilter)


class WorkerFilter(OperatorSchema):
    """Criteria on a pool's workers."""

    name = fields.Nested(StringAnyFilter)
    last_heartbeat_time = fields.Nested(TimeRangeFilter)


class AgentFilter(OperatorSchema):
    """Criteria on agents."""

    id = fields.Nested(UUIDAnyFilter)
    name = fields.Nested(StringAnyFilter)
    work_queue_id = fields.Nested(UUIDAnyFilter)


class PageLimit(validate.Range):
    """``limit`` of a paged body: 0..``PagedBody.max_limit``, read when checked and when the
    OpenAPI document is built (both after start-up set the setting)."""

    def __init__(self):
        super().__init__(min=0, max=limits.LIMIT_MAX)

    @property
    def max(self):
        return PagedBody.max_limit

    @max.setter
    def max(self, value):
        """The bound is the class setting; Range's constructor's value is not kept."""

    def __call__(self, value):
        if value < 0:
            raise ValidationError("Invalid limit: must be greater than or equal to 0.")
        if value > self.max:
            raise ValidationError(f"Invalid limit: must be less than or equal to {self.max}.")
        return value


def _offset(**kwargs):
    return fields.Integer(validate=validate.Range(min=0, max=limits.OFFSET_MAX), **kwargs)


# Request bodies.
class PagedBody(FilterSchema):
    """``limit`` (0..max_limit, default max_limit) and ``offset`` (0..2⁶³-1, default 0).

    ``max_limit`` is the ``API_DEFAULT_LIMIT`` setting. Schemas cannot read Flask config, so
    the API layer sets it on this class at start-up (``PagedBody.max_limit = ...``); every
    paged body reads it at load time.
    """

    max_limit = 200

    limit = fields.Integer(
        validate=PageLimit(),
        metadata={"description": "Most rows returned; defaults to the largest allowed."},
    )
    offset = _offset(load_default=0)

    @post_load
    def default_limit(self, data, **kwargs):
        data.setdefault("limit", self.max_limit)
        return data


def _sort(names, default):
    return fields.String(load_default=default, validate=validate.OneOf(names))


class ObjectFilters(FilterSchema):
    """The four object filters a flow, flow run, task run or deployment query combines."""

    flows = fields.Nested(FlowFilter)
    flow_runs = fields.Nested(FlowRunFilter)
    task_runs = fields.Nested(TaskRunFilter)
    deployments = fields.Nested(DeploymentFilter)


def _work_pools(description):
    return fields.Nested(WorkPoolFilter, metadata={"description": description})


class QueuedObjectFilters(ObjectFilters):
    """Flow runs and deployments may also be filtered by their work queue and its pool."""

    work_pools = _work_pools(
        "Only objects in a work queue of a matching pool (see WorkPoolFilter)."
    )

    work_pool_queues = fields.Nested(
        WorkQueueFilter,
        metadata={
            "description": "Only objects whose work_queue_name is a queue matching this filter "
            "(Prefect sends its work queue filter under this key)."
        },
    )


class WorkQueuesFilters(QueuedObjectFilters):
    """:class:`QueuedObjectFilters` where the work queue filter may also come as
    ``work_queues``, as Prefect 2.20's flow run history and dashboard bodies name it."""

    work_queues = fields.Nested(
        WorkQueueFilter, metadata={"description": "Prefect 2.20's name of work_pool_queues."}
    )

    @post_load
    def fold_work_queues(self, data, **kwargs):
        queues = data.pop("work_queues", None)
        if queues is not None:
            if data.get("work_pool_queues") is not None:
                raise ValidationError(
                    "Send the work queue filter once, as work_queues or work_pool_queues.",
                    "work_queues",
                )
            data["work_pool_queues"] = queues
        return data


class PooledFlowFilters(ObjectFilters):
    """Flows may also be filtered by the pools their deployments' queues are in."""

    work_pools = _work_pools("Prefect 2.20: only flows with a deployment in a matching pool.")


class CountBody(FilterSchema):
    """``sort``, ``limit`` and ``offset`` on a count are accepted and checked for type, as
    Prefect clients and its UI send them, but do not change the count (Prefect's server ignores
    them too)."""

    sort = String()
    limit = fields.Integer(validate=validate.Range(min=0, max=limits.LIMIT_MAX))
    offset = _offset()

    @post_load
    def drop_paging(self, data, **kwargs):
        for key in ("sort", "limit", "offset"):
            data.pop(key, None)
        return data


class FlowCountBody(PooledFlowFilters, CountBody):
    """Body of ``POST /api/flows/count``."""


class FlowRunCountBody(QueuedObjectFilters, CountBody):
    """Body of ``POST /api/flow_runs/count``."""


class TaskRunCountBody(ObjectFilters, CountBody):
    """Body of ``POST /api/task_runs/count``."""


class DeploymentCountBody(QueuedObjectFilters, CountBody):
    """Body of ``POST /api/deployments/count``."""


class FlowFilterBody(PooledFlowFilters, PagedBody):
    """Body of ``POST /api/flows/filter``."""

    sort = _sort(FLOW_SORTS, "NAME_ASC")


class FlowRunFilterBody(QueuedObjectFilters, PagedBody):
    """Body of ``POST /api/flow_runs/filter``."""

    sort = _sort(FLOW_RUN_SORTS, "ID_DESC")


class TaskRunFilterBody(ObjectFilters, PagedBody):
    """Body of ``POST /api/task_runs/filter``."""

    sort = _sort(TASK_RUN_SORTS, "ID_DESC")


class DeploymentFilterBody(QueuedObjectFilters, PagedBody):
    """Body of ``POST /api/deployments/filter``."""

    sort = _sort(DEPLOYMENT_SORTS, "NAME_ASC")


class LogFilterBody(PagedBody):
    """Body of ``POST /api/logs/filter``."""

    logs = fields.Nested(LogFilter)
    sort = _sort(LOG_SORTS, "TIMESTAMP_ASC")


class WorkQueueFilterBody(PagedBody):
    """Body of ``POST /api/work_queues/filter`` (always sorted by name)."""

    work_queues = fields.Nested(WorkQueueFilter)


class WorkPoolFilterBody(PagedBody):
    """Body of ``POST /api/work_pools/filter`` (always sorted by name)."""

    work_pools = fields.Nested(WorkPoolFilter)


class WorkPoolCountBody(CountBody):
    """Body of ``POST /api/work_pools/count``."""

    work_pools = fields.Nested(WorkPoolFilter)


class WorkerFilterBody(PagedBody):
    """Body of ``POST /api/work_pools/{name}/workers/filter`` (most recently seen first)."""

    workers = fields.Nested(WorkerFilter)


class AgentFilterBody(PagedBody):
    """Body of ``POST /api/agents/filter`` (always sorted by name)."""

    agents = fields.Nested(AgentFilter)


class ValueFilter(NameFilter):
    any_ = _strings("Only these values.")


class VariableFilter(OperatorSchema):
    """Criteria on variables."""

    id = fields.Nested(UUIDAnyFilter)
    name = fields.Nested(NameFilter)
    value = fields.Nested(ValueFilter)
    tags = fields.Nested(TagsFilter)


class VariableFilterBody(PagedBody):
    """Body of ``POST /api/variables/filter``."""

    variables = fields.Nested(VariableFilter)
    sort = _sort(VARIABLE_SORTS, "NAME_ASC")


class VariableCountBody(CountBody):
    """Body of ``POST /api/variables/count``."""

    variables = fields.Nested(VariableFilter)


class ArtifactKeyFilter(FilterSchema):
    any_ = _strings("Only these keys.")
    like_ = _like()
    exists_ = _flag("true: only artifacts with a key; false: only those without.")

    @post_load
    def as_is_null(self, data, **kwargs):
        exists = data.pop("exists_", None)
        if exists is not None:
            data["is_null_"] = not exists
        return data


class _ArtifactCriteria(OperatorSchema):
    key = fields.Nested(ArtifactKeyFilter)
    flow_run_id = fields.Nested(UUIDAnyFilter)
    task_run_id = fields.Nested(UUIDAnyFilter)
    type = fields.Nested(StringAnyNotAnyFilter)


class ArtifactFilter(_ArtifactCriteria):
    """Criteria on artifacts."""

    id = fields.Nested(UUIDAnyFilter)


class ArtifactCollectionFilter(_ArtifactCriteria):
    """Criteria on the latest artifact of each key (``latest_id``: its id)."""

    latest_id = fields.Nested(UUIDAnyFilter)


class ArtifactFilterBody(ObjectFilters, PagedBody):
    """Body of ``POST /api/artifacts/filter``."""

    artifacts = fields.Nested(ArtifactFilter)
    sort = _sort(ARTIFACT_SORTS, "ID_DESC")


class ArtifactCollectionFilterBody(ObjectFilters, PagedBody):
    """Body of ``POST /api/artifacts/latest/filter``."""

    artifacts = fields.Nested(ArtifactCollectionFilter)
    sort = _sort(ARTIFACT_SORTS, "ID_DESC")


class ArtifactCountBody(ObjectFilters, CountBody):
    """Body of ``POST /api/artifacts/count``."""

    artifacts = fields.Nested(ArtifactFilter)


class ArtifactCollectionCountBody(ObjectFilters, CountBody):
    """Body of ``POST /api/artifacts/latest/count``."""

    artifacts = fields.Nested(ArtifactCollectionFilter)
