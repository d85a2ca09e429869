"""Dump Prefect's system block types, schemas and checksums into app/data/system_blocks.json.

Run it with a real Prefect's interpreter (the server never imports prefect):

    /tmp/prefect-2.7/bin/python scripts/dump_system_blocks.py
    /tmp/prefect-2.20/bin/python scripts/dump_system_blocks.py --only-missing

Each entry holds what Prefect's own server stores for the class: the block type (as
``Block._to_block_type()`` gives it, with ``is_protected`` as Prefect's server sets it), the
schema fields, checksum, version and capabilities (``Block._to_block_schema()``). Block classes
nested in a listed one (``docker-registry`` in ``docker-container``) are dumped too, before
their parents, so a server registering the entries in order never meets a reference to a
type it has not registered. ``--only-missing`` keeps the entries already in the file and adds
the slugs this Prefect has that the file lacks (``webhook`` first appeared after 2.7.12).
"""

import argparse
import importlib
import json
import os
import sys

import prefect
from prefect.blocks.core import Block

OUTPUT = os.path.join(os.path.dirname(__file__), os.pardir, "app", "data", "system_blocks.json")

# slug -> "module:Class"; the first importable location wins (modules moved between versions).
CLASSES = {
    "local-file-system": ["prefect.filesystems:LocalFileSystem"],
    "remote-file-system": ["prefect.filesystems:RemoteFileSystem"],
    "s3": ["prefect.filesystems:S3"],
    "gcs": ["prefect.filesystems:GCS"],
    "azure": ["prefect.filesystems:Azure"],
    "smb": ["prefect.filesystems:SMB"],
    "process": ["prefect.infrastructure:Process"],
    "docker-container": ["prefect.infrastructure:DockerContainer"],
    "kubernetes-job": ["prefect.infrastructure:KubernetesJob"],
    "secret": ["prefect.blocks.system:Secret"],
    "json": ["prefect.blocks.system:JSON"],
    "string": ["prefect.blocks.system:String"],
    "date-time": ["prefect.blocks.system:DateTime"],
    "slack-webhook": ["prefect.blocks.notifications:SlackWebhook"],
    "webhook": ["prefect.blocks.webhook:Webhook"],
}

# The block types Prefect's server installs as protected (models/block_registration.py).
PROTECTED = {"json", "date-time", "secret", "local-file-system", "process"}


def load_class(locations):
    """The first of ``locations`` that imports, or None."""
    for location in locations:
        module_name, _, class_name = location.partition(":")
        try:
            return getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError):
            continue
    return None


def nested_block_classes(cls):
    """Block classes used as field types of ``cls`` (directly or in a Union)."""
    found = []
    for field in cls.__fields__.values():
        candidates = [field.type_, *getattr(field.type_, "__args__", ())]
        for candidate in candidates:
            if isinstance(candidate, type) and issubclass(candidate, Block):
                found.append(candidate)
    return found


def entry(cls):
    """The block type and schema Prefect's server would store for ``cls``."""
    block_type = json.loads(
        cls._to_block_type().json(
            include={"name", "slug", "logo_url", "documentation_url", "description", "code_example"}
        )
    )
    block_type["is_protected"] = block_type["slug"] in PROTECTED
    schema = cls._to_block_schema(block_type_id=None)
    return {
        "prefect_version": prefect.__version__,
        "block_type": block_type,
        "block_schema": {
            "checksum": schema.checksum,
            "version": schema.version,
            "capabilities": sorted(schema.capabilities),
            "fields": json.loads(json.dumps(schema.fields)),
        },
    }


def collect(cls, entries, seen):
    """Add ``cls``'s nested blocks, then ``cls``, to ``entries`` (each slug once)."""
    for nested in nested_block_classes(cls):
        collect(nested, entries, seen)
    slug = cls.get_block_type_slug()
    if slug not in seen:
        seen.add(slug)
        entries.append(entry(cls))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only-missing",
        action="store_true",
        help="keep the file's entries; add only slugs it lacks",
    )
    args = parser.parse_args()
    entries, seen = [], set()
    if args.only_missing and os.path.exists(OUTPUT):
        with open(OUTPUT) as f:
            entries = json.load(f)
        seen = {e["block_type"]["slug"] for e in entries}
    missing = []
    for slug, locations in CLASSES.items():
        if slug in seen:
            continue
        cls = load_class(locations)
        if cls is None:
            missing.append(slug)
            continue
        collect(cls, entries, seen)
    with open(OUTPUT, "w") as f:
        json.dump(entries, f, indent=1, sort_keys=True)
        f.write("\n")
    print(
        f"{len(entries)} block types in {os.path.normpath(OUTPUT)} (prefect {prefect.__version__})"
    )
    if missing:
        print("not in this prefect: " + ", ".join(missing), file=sys.stderr)


if __name__ == "__main__":
    main()
