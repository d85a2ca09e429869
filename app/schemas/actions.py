"""Request bodies that create or change objects (Orion's ``schemas/actions.py``).

Loaded data is a plain dict ready for the services: defaults filled, names validated,
states normalised (see :mod:`app.schemas.states`), policies completed with Orion's defaults.
"""

from marshmallow import ValidationError, fields, post_load, validate, validates_schema

from app.schemas import limits
from app.schemas.base import (
    ActionSchema,
    DateTime,
    InputSchema,
    Integer,
    List,
    Name,
    Refused,
    RunName,
    String,
    Tags,
    Text,
)
from app.schemas.filters import CountBody, TaskRunCountBody, WorkQueuesFilters
from app.schemas.states import StateCreateSchema


class RetryDelay(fields.Field):
    """Seconds between retries: one number, or a list of up to 50 (one per attempt)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool):
            raise ValidationError("Must be a number of seconds or a list of them.")
        if isinstance(value, (int, float)):
            if not 0 <= value <= limits.SECONDS_MAX:
                raise ValidationError(f"Must be from 0 to {limits.SECONDS_MAX:.0f} seconds.")
            return value
        if isinstance(value, list):
            if len(value) > 50:
                raise ValidationError("Can not configure more than 50 retry delays per task.")
            if not all(
                isinstance(v, (int, float))
                and not isinstance(v, bool)
                and 0 <= v <= limits.SECONDS_MAX
                for v in value
            ):
                raise ValidationError(
                    f"Every retry delay must be a number from 0 to {limits.SECONDS_MAX:.0f}."
                )
            return value
        raise ValidationError("Must be a number of seconds or a list of them.")


# Seconds a delay may be: 0 to about 68 years.
_SECONDS = validate.Range(min=0, max=limits.SECONDS_MAX)


class FlowRunPolicySchema(ActionSchema):
    """Retry and pause settings of a flow run."""

    max_retries = Integer(0, load_default=0)
    retry_delay_seconds = fields.Float(load_default=0.0, validate=_SECONDS)
    retries = Integer(0, load_default=None, allow_none=True)
    retry_delay = Integer(0, load_default=None, allow_none=True)
    pause_keys = List(Text(), load_default=list, allow_none=True)
    resuming = fields.Boolean(load_default=False, allow_none=True)

    @post_load
    def complete(self, data, **kwargs):
        data["pause_keys"] = sorted(set(data["pause_keys"] or ()))
        data["resuming"] = bool(data["resuming"])
        return data


class TaskRunPolicySchema(ActionSchema):
    """Retry settings of a task run."""

    max_retries = Integer(0, load_default=0)
    retry_delay_seconds = fields.Float(load_default=0.0, validate=_SECONDS)
    retries = Integer(0, load_default=None, allow_none=True)
    retry_delay = RetryDelay(load_default=None, allow_none=True)
    retry_jitter_factor = fields.Float(load_default=None, allow_none=True, validate=_SECONDS)


FLOW_RUN_POLICY_DEFAULTS = FlowRunPolicySchema().load({})
TASK_RUN_POLICY_DEFAULTS = TaskRunPolicySchema().load({})


class FlowCreateSchema(ActionSchema):
    """Body of ``POST /api/flows/``."""

    name = Name()
    tags = Tags()


class FlowUpdateSchema(ActionSchema):
    """Body of ``PATCH /api/flows/{id}``."""

    tags = List(String())
    name = Refused("A flow's name cannot be changed.")


class FlowRunCreateSchema(ActionSchema):
    """Body of ``POST /api/flow_runs/``; ``state`` defaults to Pending."""

    name = RunName(allow_none=True)
    flow_id = fields.UUID(required=True)
    deployment_id = fields.UUID(allow_none=True)
    state = fields.Nested(StateCreateSchema, allow_none=True)
    flow_version = String(allow_none=True)
    parameters = fields.Dict(load_default=dict)
    context = fields.Dict(load_default=dict)
    parent_task_run_id = fields.UUID(allow_none=True)
    infrastructure_document_id = fields.UUID(allow_none=True)
    empirical_policy = fields.Nested(FlowRunPolicySchema, load_default=dict)
    tags = Tags()
    idempotency_key = String(limits.IDEMPOTENCY_KEY_MAX_LENGTH, min_length=1, allow_none=True)
    work_queue_name = String(allow_none=True)
    created_by = fields.Dict(allow_none=True)

    @post_load
    def complete(self, data, **kwargs):
        data["empirical_policy"] = data["empirical_policy"] or dict(FLOW_RUN_POLICY_DEFAULTS)
        return data


# Keys a PATCH must refuse rather than drop: the client would think the state changed.
RUN_STATE_BY_SET_STATE = "A run's state changes through set_state, not PATCH."


class FlowRunUpdateSchema(ActionSchema):
    """Body of ``PATCH /api/flow_runs/{id}``: only the fields given are changed."""

    name = RunName()
    flow_version = String(allow_none=True)
    parameters = fields.Dict()
    empirical_policy = fields.Nested(FlowRunPolicySchema)
    tags = List(String())
    infrastructure_pid = String(allow_none=True)
    infrastructure_exit_code = Integer(
        strict=True,
        allow_none=True,
        metadata={
            "description": "The code the run's infrastructure ended with, as the agent that "
            "started it saw it (Orion extension): a process's exit status, negative for a "
            "signal or for infrastructure that could no longer be reached."
        },
    )
    job_variables = fields.Dict(
        keys=Text(),
        allow_none=True,
        metadata={
            "description": "Prefect 2.20: replaces the run's job variables; only while it is "
            "Scheduled, checked against its work pool's template."
        },
    )
    state = Refused(RUN_STATE_BY_SET_STATE)
    state_type = Refused(RUN_STATE_BY_SET_STATE)
    state_name = Refused(RUN_STATE_BY_SET_STATE)


class TaskRunCreateSchema(ActionSchema):
    """Body of ``POST /api/task_runs/``; ``state`` defaults to Pending."""

    name = RunName(allow_none=True)
    flow_run_id = fields.UUID(required=True)
    task_key = String(min_length=1, required=True)
    dynamic_key = String(required=True)
    cache_key = Text(allow_none=True)
    cache_expiration = DateTime(allow_none=True)
    task_version = String(allow_none=True)
    empirical_policy = fields.Nested(TaskRunPolicySchema, load_default=dict)
    tags = Tags()
    task_inputs = fields.Dict(
        keys=Text(),
        # A task given many futures has one input per future: no SQL parameter per item.
        values=List(fields.Dict(), max_items=limits.TEXT_MAX_LENGTH),
        load_default=dict,
    )
    state = fields.Nested(StateCreateSchema, allow_none=True)

    # Set per app from API_TASK_CACHE_KEY_MAX_LENGTH by the API layer.
    cache_key_max_length = 2000

    @validates_schema
    def check_cache_key(self, data, **kwargs):
        key = data.get("cache_key")
        if key is not None and len(key) > self.cache_key_max_length:
            raise ValidationError(
                f"Cache key exceeded maximum allowed length of {self.cache_key_max_length} "
                "characters.",
                "cache_key",
            )

    @post_load
    def complete(self, data, **kwargs):
        data["empirical_policy"] = data["empirical_policy"] or dict(TASK_RUN_POLICY_DEFAULTS)
        return data


class TaskRunCreateAndSetStateSchema(TaskRunCreateSchema):
    """Body of ``POST /api/task_runs/create_and_set_state``: a TaskRunCreate plus the state to
    propose once the run exists."""

    proposed_state = fields.Nested(
        StateCreateSchema,
        required=True,
        metadata={
            "description": "Proposed through the task orchestration rules, as set_state would."
        },
    )


class TaskRunUpdateSchema(ActionSchema):
    """Body of ``PATCH /api/task_runs/{id}``."""

    name = RunName()
    tags = Refused("A task run's tags are set when it is created.")
    state = Refused(RUN_STATE_BY_SET_STATE)
    state_type = Refused(RUN_STATE_BY_SET_STATE)
    state_name = Refused(RUN_STATE_BY_SET_STATE)


class LogCreateSchema(ActionSchema):
    """One record in the list body of ``POST /api/logs/``."""

    id = fields.UUID(
        allow_none=True,
        metadata={
            "description": "Client-chosen id (Orion extension): a record whose id is already "
            "stored is skipped, so a retried batch never stores a line twice."
        },
    )
    name = String(required=True)
    level = Integer(0, required=True)
    message = Text(required=True)
    timestamp = DateTime(required=True)
    flow_run_id = fields.UUID(required=True)
    task_run_id = fields.UUID(allow_none=True)


class _HistoryRange(InputSchema):
    """The time buckets of a history body."""

    history_start = DateTime(required=True)
    history_end = DateTime(required=True)
    history_interval_seconds = fields.Float(
        required=True,
        validate=validate.Range(
            min=limits.HISTORY_INTERVAL_MIN_SECONDS, max=limits.HISTORY_INTERVAL_MAX_SECONDS
        ),
    )

    # Most buckets one history call may ask for.
    max_intervals = limits.HISTORY_MAX_INTERVALS

    @validates_schema
    def check_range(self, data, **kwargs):
        start, end = data.get("history_start"), data.get("history_end")
        interval = data.get("history_interval_seconds")
        if start is None or end is None or interval is None:
            return
        if end < start:
            raise ValidationError("history_end must not be before history_start.", "history_end")
        if (end - start).total_seconds() / interval > self.max_intervals:
            raise ValidationError(
                f"History interval must not produce more than {self.max_intervals} intervals.",
                "history_interval_seconds",
            )


class FlowRunHistorySchema(_HistoryRange, WorkQueuesFilters, CountBody):
    """Body of ``POST /api/flow_runs/history``: time buckets plus the usual filters (the work
    queue filter as ``work_queues`` too, as Prefect 2.20 sends it)."""


class TaskRunHistorySchema(_HistoryRange, TaskRunCountBody):
    """Body of ``POST /api/task_runs/history``: time buckets plus the usual filters."""


# Longest tag a concurrency limit accepts (the column is a VARCHAR(255) on PostgreSQL).
TAG_MAX_LENGTH = limits.NAME_MAX_LENGTH


def _validate_tag(value):
    if not value.strip():
        raise ValidationError("Tag must not be empty.")
    if len(value) > TAG_MAX_LENGTH:
        raise ValidationError(f"Tag must be at most {TAG_MAX_LENGTH} characters long.")


class ConcurrencyLimitCreateSchema(ActionSchema):
    """Body of ``POST /api/concurrency_limits/``: an upsert by tag."""

    tag = fields.String(
        required=True, validate=[validate.Length(max=TAG_MAX_LENGTH), _validate_tag]
    )
    concurrency_limit = fields.Integer(
        required=True,
        strict=True,
        validate=validate.Range(min=0, max=limits.INT32_MAX),
        metadata={"description": "Most task runs with this tag RUNNING at once (0: none)."},
    )


class ConcurrencyLimitResetSchema(ActionSchema):
    """Body of ``POST /api/concurrency_limits/tag/{tag}/reset`` (may be empty)."""

    slot_override = fields.List(
        fields.UUID(),
        load_default=None,
        allow_none=True,
        metadata={
            "description": "Task runs given the tag's slots after every lease is "
            "dropped; none if omitted."
        },
    )


class SetStateSchema(ActionSchema):
    """Body of ``POST /api/{flow_runs,task_runs}/{id}/set_state``."""

    state = fields.Nested(StateCreateSchema, required=True)
    force = fields.Boolean(load_default=False)


class ResumeFlowRunSchema(ActionSchema):
    """Body of ``POST /api/flow_runs/{id}/resume``, optional: Prefect 2.20 sends the input a
    run paused for (``{"run_input": {...}}``), Prefect 2.7 no body."""

    run_input = fields.Dict(keys=fields.String(), allow_none=True, load_default=None)


class WorkQueueFilterCriteriaSchema(ActionSchema):
    """The deprecated filter of Orion 2.0 queues: runs of deployments carrying all ``tags``,
    or of the listed deployments."""

    tags = List(String(), allow_none=True, load_default=None)
    deployment_ids = List(fields.UUID(), allow_none=True, load_default=None)


def _queue_limit(**kwargs):
    return fields.Integer(
        strict=True,
        allow_none=True,
        validate=validate.Range(min=0, max=limits.INT32_MAX),
        metadata={
            "description": "Most of the queue's flow runs PENDING or RUNNING at once; "
            "null: no limit. Enforced when an agent claims a run."
        },
        **kwargs,
    )


def _queue_priority(**kwargs):
    return fields.Integer(
        strict=True,
        allow_none=True,
        validate=validate.Range(min=1, max=limits.INT32_MAX),
        metadata={
            "description": "The queue's rank, 1 the highest: an agent polling several "
            "queues serves them in this order. null: on create, the "
            "first rank no queue holds; on update, unchanged."
        },
        **kwargs,
    )


class WorkQueueCreateSchema(ActionSchema):
    """Body of ``POST /api/work_queues/``."""

    name = Name()
    description = Text(load_default="", allow_none=True)
    is_paused = fields.Boolean(load_default=False)
    concurrency_limit = _queue_limit(load_default=None)
    priority = _queue_priority(load_default=None)
    filter = fields.Nested(WorkQueueFilterCriteriaSchema, allow_none=True, load_default=None)


class WorkQueueUpdateSchema(ActionSchema):
    """Body of ``PATCH /api/work_queues/{id}``: only the fields given change."""

    name = Name(required=False)
    description = Text(allow_none=True)
    is_paused = fields.Boolean()
    concurrency_limit = _queue_limit()
    priority = _queue_priority()
    filter = fields.Nested(WorkQueueFilterCriteriaSchema, allow_none=True)
    last_polled = DateTime(allow_none=True)

    @post_load
    def drop_null_priority(self, data, **kwargs):
        if data.get("priority", 0) is None:
            del data["priority"]
        return data


class WorkQueueGetRunsSchema(ActionSchema):
    """Body of ``POST /api/work_queues/{id}/get_runs``."""

    scheduled_before = DateTime(
        load_default=None,
        allow_none=True,
        metadata={"description": "Only runs scheduled up to this time (default: now)."},
    )
    limit = Integer(0, limits.LIMIT_MAX, load_default=None, allow_none=True)
    agent_id = fields.UUID(
        load_default=None,
        allow_none=True,
        metadata={"description": "The polling agent: its row records this queue and the time."},
    )
    agent_name = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Length(min=1, max=200),
        metadata={"description": "The agent's name (default agent-<agent_id>); needs agent_id."},
    )

    @validates_schema
    def check_agent(self, data, **kwargs):
        if data.get("agent_name") is not None and data.get("agent_id") is None:
            raise ValidationError("agent_name needs agent_id.", "agent_name")


class AgentHeartbeatSchema(ActionSchema):
    """Body of ``POST /api/agents/{id}/heartbeat`` (Orion extension)."""

    name = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Length(min=1, max=200),
        metadata={"description": "The agent's name (default agent-<id>, or the name it has)."},
    )


class SavedSearchFilterSchema(InputSchema):
    """One condition of a saved search, stored as given (the dashboard interprets it)."""

    object = fields.String(required=True, metadata={"description": 'e.g. "flow_run"'})
    property = fields.String(required=True, metadata={"description": 'e.g. "state_type"'})
    type = fields.String(required=True, metadata={"description": 'e.g. "state"'})
    operation = fields.String(required=True, metadata={"description": 'e.g. "any"'})
    value = fields.Raw(required=True, allow_none=True)


class SavedSearchCreateSchema(InputSchema):
    """Body of ``PUT /api/saved_searches/``: saved under ``name``, replacing a search of that
    name."""

    name = Name()
    filters = fields.List(fields.Nested(SavedSearchFilterSchema), load_default=list)
