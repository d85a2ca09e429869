"""Orion: a self-hosted workflow orchestration server (Prefect 2 Orion API compatible).

Versions are pinned exactly: this is the set checked to work together (see
../shared/DEPENDENCIES.md); a fresh machine installs what was tested.
"""

from setuptools import find_packages, setup

INSTALL_REQUIRES = [
    "flask==3.1.3",
    "werkzeug==3.1.9",
    "flask-smorest==0.47.0",
    "marshmallow==4.4.0",
    "apispec==6.10.1",
    "webargs==8.7.1",
    "peewee==4.5.3",
    "psycopg2-binary==2.9.13",
    "gunicorn==27.0.1",
    "rq==3.0.0",
    "redis==8.1.0",
    # redis-py's C reply parser: about 30 % off the CPU of each Redis read, which the throttle
    # makes on every authenticated request (bench/bench_security.py).
    "hiredis==3.5.0",
    "click==8.5.1",
    "croniter==7.0.0",
    # 2.9, not 4.0: botocore (the s3 extra) requires python-dateutil<3; the schedule tests
    # pass on both.
    "python-dateutil==2.9.0.post0",
    "fsspec==2026.9.0",
    "httpx==0.28.1",
    "pydantic==2.14.3",
    # Block documents: validated against their block schema (JSON Schema), secret data
    # encrypted at rest (Fernet).
    "jsonschema==4.26.0",
    "cryptography==50.0.2",
    # Cron schedules in words on the dashboard ("At 09:00, Monday through Friday").
    "cron-descriptor==2.2.1",
    # Artifacts' markdown on the dashboard, with raw HTML off (no hand-written sanitising).
    "markdown-it-py==4.3.0",
    # Throttling failed API keys and sign-ins per client address: fixed-window counts in Redis
    # or memory (app/security.py's Throttle), one read per authenticated request.
    "limits==5.8.0",
    # /metrics in Prometheus' format, summed over gunicorn's workers (multiprocess mode).
    "prometheus-client==0.26.0",
]

# Remote storage blocks (client.blocks.filesystems): each object store's fsspec driver, the
# release made for (or compatible with) the fsspec pinned above. Imported only when used.
STORAGE_EXTRAS = {
    "s3": ["s3fs==2026.9.0"],
    "gcs": ["gcsfs==2026.8.2"],
    "azure": ["adlfs==2026.8.0"],
    # fsspec's SMB driver (client.blocks.SMB).
    "smb": ["smbprotocol==1.15.0"],
}

# Task runners on real engines (client/task_runners/), each an extra imported only when a
# flow run starts one: `orion[dask]`, `orion[ray]`.
DASK_REQUIRES = [
    "dask==2026.8.0",
    "distributed==2026.8.0",
]
RAY_REQUIRES = [
    "ray==2.60.0",
]

# Optional extras: ``pip install orion[docker]`` for docker-container infrastructure.
DOCKER_REQUIRES = ["docker==7.2.0"]
# ``pip install orion[kubernetes]`` for kubernetes-job infrastructure: the official client.
# 36, not 37: 37 requires python-dateutil>=3, which botocore (the s3 extra) refuses.
KUBERNETES_REQUIRES = ["kubernetes==36.0.3"]

TEST_REQUIRES = [
    "pytest==9.2.0",
    "playwright==1.65.2",
    "hypothesis==6.170.15",
    "pytest-xdist==3.8.0",
    # The object stores the storage tests run against, as local processes: S3 (moto's
    # server) and GCS (an emulator); Azure's (azurite) comes from npm (scripts/test).
    "moto[server]==5.2.6",
    "gcp-storage-emulator==2026.7.19",
    *(pin for pins in STORAGE_EXTRAS.values() for pin in pins),
    # The task runner tests run real Dask and Ray clusters.
    *DASK_REQUIRES,
    *RAY_REQUIRES,
    # tests/api/test_fuzz.py: generates requests from the OpenAPI document (issue 18).
    "schemathesis==4.32.5",
    # tests/agent/test_docker_infrastructure.py runs flows in containers of a real dockerd.
    *DOCKER_REQUIRES,
    # tests/agent/test_kubernetes_infrastructure.py: the real client against a fake API
    # server, and the Job manifests validated strictly against Kubernetes 1.37's schemas.
    *KUBERNETES_REQUIRES,
    "kubernetes-validate==1.37.0",
]

# The static checks scripts/test runs before pytest (settings in pyproject.toml).
CHECK_REQUIRES = [
    "ruff==0.17.5",
    "mypy==2.4.1",
]

setup(
    name="orion",
    version="0.1.0",
    description="Workflow orchestration server with the Prefect 2 Orion REST API",
    python_requires=">=3.11",
    packages=find_packages(include=["app", "app.*", "workers", "workers.*", "client", "client.*"]),
    # The ``orion`` command: joins the client's commands and the server's (see its docstring).
    py_modules=["orion_cli"],
    include_package_data=True,
    package_data={"app": ["templates/**/*", "static/**/*", "migrations/*.py", "data/*.json"]},
    install_requires=INSTALL_REQUIRES,
    extras_require={
        "test": TEST_REQUIRES + CHECK_REQUIRES,
        **STORAGE_EXTRAS,
        "dask": DASK_REQUIRES,
        "ray": RAY_REQUIRES,
        "docker": DOCKER_REQUIRES,
        "kubernetes": KUBERNETES_REQUIRES,
    },
    entry_points={
        "console_scripts": ["orion = orion_cli:orion_cli"],
        # ``flask orion``: Flask loads the commands of this group (Flask 3.1 CLI, "Plugins").
        "flask.commands": ["orion = orion_cli:orion_cli"],
    },
)
