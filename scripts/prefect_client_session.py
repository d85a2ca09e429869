"""Drive a real Prefect 2.x client through the API calls it makes (run by
capture_prefect_bodies.py).

Runs inside a Prefect venv (2.7.12 or 2.20.x) with PREFECT_API_URL pointing at the recording
proxy: a flow with tasks (retries, caching, a subflow, logs), then one call of each client method
that talks to an endpoint Orion serves, with every filter family the client knows, each left
empty as a client sends it by default. ``--api-only`` skips the flow.
"""

import asyncio
import datetime
import sys

import prefect
from prefect import flow, get_run_logger, task

VERSION = tuple(int(p) for p in prefect.__version__.split(".")[:2])
if VERSION >= (2, 10):
    from prefect.agent import PrefectAgent as Agent
    from prefect.client.orchestration import get_client
    from prefect.client.schemas import filters, sorting
    from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule, RRuleSchedule
    from prefect.states import Completed, Running, Scheduled
else:
    from prefect.agent import OrionAgent as Agent
    from prefect.client.orion import get_client
    from prefect.orion.schemas import filters, sorting
    from prefect.orion.schemas.schedules import CronSchedule, IntervalSchedule, RRuleSchedule
    from prefect.states import Completed, Running, Scheduled


@task(retries=1, retry_delay_seconds=0)
def flaky(state={"calls": 0}):  # noqa: B006 (counts calls across the retry)
    state["calls"] += 1
    if state["calls"] == 1:
        raise ValueError("first call fails")
    return 1


@task(cache_key_fn=lambda context, parameters: "wire-capture", tags=["wire-capture"])
def cached(x):
    return x + 1


@flow
def child(x):
    return x * 2


@flow(name="wire-capture")
def parent():
    get_run_logger().info("hello from the capture flow")
    a = flaky()
    b = cached(a)
    return child(b)


def every_filter():
    """One of each filter class the client has, all criteria empty (as a client builds them)."""
    out = {}
    for name in (
        "FlowFilter",
        "FlowRunFilter",
        "TaskRunFilter",
        "DeploymentFilter",
        "WorkPoolFilter",
        "WorkQueueFilter",
        "LogFilter",
    ):
        cls = getattr(filters, name, None)
        if cls is not None:
            out[name] = cls()
    return out


async def main(run_flow=True):
    if run_flow:
        parent()
    now = datetime.datetime.now(datetime.UTC)
    f = every_filter()
    async with get_client() as client:
        flow_id = await client.create_flow_from_name("wire-capture-api")
        await client.read_flow(flow_id)
        await client.read_flow_by_name("wire-capture-api")
        await client.read_flows(
            flow_filter=f["FlowFilter"],
            flow_run_filter=f["FlowRunFilter"],
            task_run_filter=f["TaskRunFilter"],
            deployment_filter=f["DeploymentFilter"],
            work_pool_filter=f["WorkPoolFilter"],
            work_queue_filter=f["WorkQueueFilter"],
            sort=sorting.FlowSort.NAME_ASC,
            limit=10,
        )
        await client.read_flows(
            flow_filter=filters.FlowFilter(name=filters.FlowFilterName(any_=["wire-capture"]))
        )
        queue = await client.create_work_queue(
            name="wire-queue", description="made by the capture", concurrency_limit=5, priority=3
        )
        await client.create_work_queue(name="wire-queue-2", priority=1)
        await client.read_work_queue(queue.id)
        await client.read_work_queue_by_name("wire-queue")
        await client.update_work_queue(queue.id, is_paused=False, priority=2, description="updated")
        await client.match_work_queues(["wire"])
        if hasattr(client, "read_work_queue_status"):
            await client.read_work_queue_status(queue.id)
        if hasattr(client, "read_work_queues"):
            await client.read_work_queues(work_queue_filter=f["WorkQueueFilter"])
        deployment_args = dict(
            flow_id=flow_id,
            name="wire-deployment",
            version="1",
            schedule=CronSchedule(cron="0 9 * * *", timezone=None),
            parameters={"x": 1},
            tags=["wire"],
            work_queue_name="wire-queue",
            path="/tmp",
            entrypoint="flows.py:parent",
            parameter_openapi_schema={"type": "object", "properties": {}},
        )
        if VERSION >= (2, 10):
            deployment_args.update(
                paused=False, enforce_parameter_schema=False, job_variables={"env": {"A": "1"}}
            )
        else:
            deployment_args.update(infra_overrides={"env": {"A": "1"}})
        deployment_id = await client.create_deployment(**deployment_args)
        for name, schedule in (
            (
                "wire-interval",
                IntervalSchedule(interval=datetime.timedelta(hours=1), timezone=None),
            ),
            ("wire-rrule", RRuleSchedule(rrule="FREQ=DAILY", timezone=None)),
        ):
            await client.create_deployment(flow_id=flow_id, name=name, schedule=schedule)
        deployment = await client.read_deployment(deployment_id)
        await client.read_deployment_by_name("wire-capture-api/wire-deployment")
        if VERSION >= (2, 10):
            await client.update_deployment(deployment, schedule=deployment.schedule)
            await client.set_deployment_paused_state(deployment_id, True)
            await client.set_deployment_paused_state(deployment_id, False)
        else:
            await client.update_deployment(
                deployment, schedule=deployment.schedule, is_schedule_active=True
            )
        await client.read_deployments(
            flow_filter=f["FlowFilter"],
            flow_run_filter=f["FlowRunFilter"],
            task_run_filter=f["TaskRunFilter"],
            deployment_filter=f["DeploymentFilter"],
            work_pool_filter=f["WorkPoolFilter"],
            work_queue_filter=f["WorkQueueFilter"],
            limit=10,
            sort=sorting.DeploymentSort.NAME_ASC,
        )
        run = await client.create_flow_run_from_deployment(
            deployment_id, parameters={"x": 2}, tags=["extra"], state=Scheduled(scheduled_time=now)
        )
        await client.get_runs_in_work_queue(queue.id, limit=10, scheduled_before=now)
        await client.read_flow_run(run.id)
        await client.update_flow_run(run.id, name="renamed", tags=["a"])
        await client.read_flow_runs(
            flow_filter=f["FlowFilter"],
            flow_run_filter=f["FlowRunFilter"],
            task_run_filter=f["TaskRunFilter"],
            deployment_filter=f["DeploymentFilter"],
            work_pool_filter=f["WorkPoolFilter"],
            work_queue_filter=f["WorkQueueFilter"],
            sort=sorting.FlowRunSort.EXPECTED_START_TIME_DESC,
            limit=10,
        )
        await client.read_flow_runs(
            flow_run_filter=filters.FlowRunFilter(
                state=filters.FlowRunFilterState(
                    type=filters.FlowRunFilterStateType(any_=["SCHEDULED"])
                ),
                deployment_id=filters.FlowRunFilterDeploymentId(any_=[deployment_id]),
            )
        )
        await client.set_flow_run_state(run.id, Running(), force=True)
        await client.read_flow_run_states(run.id)
        task_run = await client.create_task_run(
            task=cached, flow_run_id=run.id, dynamic_key="capture-0"
        )
        await client.set_task_run_state(task_run.id, Running())
        await client.set_task_run_state(task_run.id, Completed())
        await client.read_task_run(task_run.id)
        await client.read_task_run_states(task_run.id)
        await client.read_task_runs(
            flow_filter=f["FlowFilter"],
            flow_run_filter=f["FlowRunFilter"],
            task_run_filter=f["TaskRunFilter"],
            deployment_filter=f["DeploymentFilter"],
            sort=sorting.TaskRunSort.EXPECTED_START_TIME_DESC,
            limit=10,
        )
        if hasattr(client, "set_task_run_name"):
            await client.set_task_run_name(task_run.id, "renamed-task")
        await client.read_task_runs(
            task_run_filter=filters.TaskRunFilter(
                name=filters.TaskRunFilterName(like_="cached"),
                state=filters.TaskRunFilterState(
                    type=filters.TaskRunFilterStateType(any_=["COMPLETED"])
                ),
            )
        )
        if VERSION >= (2, 10):
            # Criteria the 2.20 client has and 2.7.12 has not.
            await client.read_task_runs(
                task_run_filter=filters.TaskRunFilter(
                    flow_run_id=filters.TaskRunFilterFlowRunId(any_=[run.id])
                )
            )
            await client.read_flow_runs(
                flow_run_filter=filters.FlowRunFilter(
                    parent_flow_run_id=filters.FlowRunFilterParentFlowRunId(any_=[run.id]),
                    idempotency_key=filters.FlowRunFilterIdempotencyKey(not_any_=["x"]),
                )
            )
            await client.read_deployments(
                work_queue_filter=filters.WorkQueueFilter(
                    name=filters.WorkQueueFilterName(any_=["wire-queue"])
                )
            )
        await client.set_flow_run_state(run.id, Completed())
        paused = await client.create_flow_run(flow=child, state=Running())
        await client.resume_flow_run(paused.id)
        # An agent's poll and cancellation check, on a queue with nothing due.
        async with Agent(work_queues=["wire-queue-2", "wire-agent-queue"]) as agent:
            await agent.get_and_submit_flow_runs()
            await agent.check_for_cancelled_flow_runs()
        await client.create_logs(
            [
                {
                    "name": "wire",
                    "level": 20,
                    "message": "a log line",
                    "timestamp": now.isoformat(),
                    "flow_run_id": str(run.id),
                    "task_run_id": None,
                }
            ]
        )
        await client.read_logs(
            log_filter=filters.LogFilter(flow_run_id=filters.LogFilterFlowRunId(any_=[run.id])),
            limit=10,
        )
        await client.create_concurrency_limit(tag="wire-tag", concurrency_limit=2)
        await client.read_concurrency_limit_by_tag("wire-tag")
        await client.read_concurrency_limits(limit=10, offset=0)
        if hasattr(client, "reset_concurrency_limit_by_tag"):
            await client.reset_concurrency_limit_by_tag("wire-tag")
        await client.delete_concurrency_limit_by_tag("wire-tag")
        if hasattr(client, "delete_task_run"):
            await client.delete_task_run(task_run.id)
        await client.delete_flow_run(run.id)
        if hasattr(client, "delete_flow"):
            await client.delete_flow(await client.create_flow_from_name("wire-delete-me"))
        await client.delete_deployment(deployment_id)
        await client.delete_work_queue_by_id(queue.id)
        # Bodies the Prefect UI sends to /count (sort, limit and offset included).
        for path in ("/flows/count", "/flow_runs/count", "/task_runs/count", "/deployments/count"):
            response = await client._client.post(
                path,
                json={
                    "flows": None,
                    "flow_runs": None,
                    "task_runs": None,
                    "deployments": None,
                    "sort": None,
                    "limit": 200,
                    "offset": 0,
                },
            )
            response.raise_for_status()
        await client._client.post(
            "/flow_runs/history",
            json={
                "history_start": (now - datetime.timedelta(hours=1)).isoformat(),
                "history_end": now.isoformat(),
                "history_interval_seconds": 600,
                "flows": None,
                "flow_runs": None,
                "task_runs": None,
                "deployments": None,
                "work_pools": None,
                "work_queues": None,
            },
        )


if __name__ == "__main__":
    # --api-only skips the flow (it needs the blocks API for results) to point the session at
    # a server without blocks and watch it for refused bodies.
    asyncio.run(main(run_flow="--api-only" not in sys.argv[1:]))
    sys.exit(0)
