"""The blocks API: block types, schemas, documents, capabilities, secrets and system types."""

import json
import uuid

import pytest

from app.models import BlockDocument
from app.services.blocks import schema_checksum
from tests.conftest import assert_422

SECRET_FIELDS = {
    "title": "Vault",
    "type": "object",
    "properties": {
        "url": {"title": "Url", "type": "string"},
        "port": {"title": "Port", "type": "integer"},
        "token": {"title": "Token", "type": "string", "writeOnly": True, "format": "password"},
        "headers": {"title": "Headers", "type": "object"},
        "note": {"title": "Note", "type": "string"},
    },
    "required": ["url"],
    "secret_fields": ["token", "headers.*"],
    "block_type_slug": "vault",
    "block_schema_references": {},
}


@pytest.fixture
def system(client):
    """The system block types, registered as at server start."""
    assert client.post("/api/block_types/install_system_block_types").status_code == 200
    return client


def make_type(client, slug="vault", **extra):
    response = client.post("/api/block_types/", json={"name": slug.title(), "slug": slug, **extra})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def make_schema(client, block_type, fields=None, capabilities=(), version=None):
    body = {
        "fields": fields or SECRET_FIELDS,
        "block_type_id": block_type["id"],
        "capabilities": list(capabilities),
    }
    if version:
        body["version"] = version
    response = client.post("/api/block_schemas/", json=body)
    assert response.status_code in (200, 201), response.get_json()
    return response.get_json()


def make_document(client, schema, name="main", data=None, **extra):
    response = client.post(
        "/api/block_documents/",
        json={
            "name": name,
            "block_schema_id": schema["id"],
            "block_type_id": schema["block_type_id"],
            "data": data
            if data is not None
            else {"url": "https://vault", "token": "s3cr3t", "headers": {"X-Key": "k1"}},
            **extra,
        },
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


@pytest.fixture
def vault(client):
    """A block type ``vault`` with a schema that has secret fields."""
    block_type = make_type(client)
    return block_type, make_schema(client, block_type)


class TestBlockTypes:
    def test_create_read_by_id_and_slug(self, client):
        created = make_type(
            client, "my-store", description="stores", logo_url="https://example.com/logo.png"
        )
        assert created["is_protected"] is False
        assert set(created) >= {
            "id",
            "created",
            "updated",
            "name",
            "slug",
            "logo_url",
            "documentation_url",
            "description",
            "code_example",
        }
        by_id = client.get(f"/api/block_types/{created['id']}").get_json()
        by_slug = client.get("/api/block_types/slug/my-store").get_json()
        assert by_id == by_slug == created

    def test_duplicate_is_409_and_unknown_is_404(self, client):
        make_type(client, "dup")
        response = client.post("/api/block_types/", json={"name": "Other", "slug": "dup"})
        assert response.status_code == 409
        assert "slug" in response.get_json()["detail"]
        assert client.get("/api/block_types/slug/nope").status_code == 404
        assert client.get(f"/api/block_types/{uuid.uuid4()}").status_code == 404

    @pytest.mark.parametrize("slug", ["Has-Upper", "under_score", "sp ace", "dot.ted"])
    def test_slug_outside_the_rule_is_422_saying_which(self, client, slug):
        body = assert_422(
            client.post("/api/block_types/", json={"name": "X", "slug": slug}), "body", "slug"
        )
        assert "lowercase letters, numbers, and dashes" in json.dumps(body)

    def test_names_beginning_with_prefect_are_reserved(self, client):
        response = client.post(
            "/api/block_types/", json={"name": "Prefect Thing", "slug": "prefect-thing"}
        )
        assert response.status_code == 403

    def test_update_and_filter(self, client):
        a = make_type(client, "alpha")
        make_type(client, "beta")
        assert (
            client.patch(f"/api/block_types/{a['id']}", json={"description": "new"}).status_code
            == 204
        )
        assert client.get(f"/api/block_types/{a['id']}").get_json()["description"] == "new"
        names = [
            t["slug"]
            for t in client.post(
                "/api/block_types/filter", json={"block_types": {"name": {"like_": "alp"}}}
            ).get_json()
        ]
        assert names == ["alpha"]
        slugs = [
            t["slug"]
            for t in client.post(
                "/api/block_types/filter",
                json={"block_types": {"slug": {"any_": ["beta", "alpha"]}}},
            ).get_json()
        ]
        assert slugs == ["alpha", "beta"]

    def test_filter_by_schema_capabilities(self, client):
        a = make_type(client, "alpha")
        make_schema(client, a, capabilities=["read-path"])
        b = make_type(client, "beta")
        make_schema(client, b, fields={**SECRET_FIELDS, "title": "B"})
        slugs = [
            t["slug"]
            for t in client.post(
                "/api/block_types/filter",
                json={"block_schemas": {"block_capabilities": {"all_": ["read-path"]}}},
            ).get_json()
        ]
        assert slugs == ["alpha"]

    def test_delete_removes_schemas_and_documents(self, client, vault):
        block_type, schema = vault
        document = make_document(client, schema)
        assert client.delete(f"/api/block_types/{block_type['id']}").status_code == 204
        assert client.get(f"/api/block_schemas/{schema['id']}").status_code == 404
        assert client.get(f"/api/block_documents/{document['id']}").status_code == 404


class TestProtectedTypes:
    def test_system_types_are_installed_idempotently(self, system):
        first = system.post("/api/block_types/filter", json={}).get_json()
        assert system.post("/api/block_types/install_system_block_types").status_code == 200
        second = system.post("/api/block_types/filter", json={}).get_json()
        assert first == second
        # A system type that was deleted (only unprotected ones can be) comes back.
        s3 = system.get("/api/block_types/slug/s3").get_json()
        assert system.delete(f"/api/block_types/{s3['id']}").status_code == 204
        assert system.post("/api/block_types/install_system_block_types").status_code == 200
        assert system.get("/api/block_types/slug/s3").status_code == 200
        slugs = {t["slug"] for t in first}
        assert slugs >= {
            "local-file-system",
            "remote-file-system",
            "s3",
            "gcs",
            "azure",
            "smb",
            "process",
            "docker-container",
            "kubernetes-job",
            "secret",
            "json",
            "string",
            "date-time",
            "slack-webhook",
            "webhook",
        }

    def test_protected_type_cannot_be_deleted_nor_its_schemas(self, system):
        secret = system.get("/api/block_types/slug/secret").get_json()
        assert secret["is_protected"] is True
        response = system.delete(f"/api/block_types/{secret['id']}")
        assert response.status_code == 403
        assert "protected" in response.get_json()["detail"]
        schema = system.post(
            "/api/block_schemas/filter",
            json={"block_schemas": {"block_type_id": {"any_": [secret["id"]]}}},
        ).get_json()[0]
        assert system.delete(f"/api/block_schemas/{schema['id']}").status_code == 403
        assert system.get("/api/block_types/slug/secret").get_json() == secret

    def test_protected_type_takes_descriptive_changes_but_keeps_its_identity(self, system):
        """A Prefect 2.20 client registering ``Secret`` syncs its own logo and description
        (Prefect's server allows it); name, slug and protection cannot be changed."""
        secret = system.get("/api/block_types/slug/secret").get_json()
        url = f"/api/block_types/{secret['id']}"
        assert (
            system.patch(url, json={"logo_url": "https://example.com/new.png"}).status_code == 204
        )
        for field in ("name", "slug", "is_protected"):
            assert_422(system.patch(url, json={field: "x"}), "body", field)
        # A restart (install) keeps the synced fields and the protection.
        assert system.post("/api/block_types/install_system_block_types").status_code == 200
        after = system.get(url).get_json()
        assert after["logo_url"] == "https://example.com/new.png"
        assert (after["name"], after["slug"], after["is_protected"]) == ("Secret", "secret", True)


class TestBlockSchemas:
    def test_create_is_idempotent_by_checksum_and_version(self, client):
        block_type = make_type(client)
        body = {
            "fields": SECRET_FIELDS,
            "block_type_id": block_type["id"],
            "capabilities": ["notify"],
        }
        first = client.post("/api/block_schemas/", json=body)
        again = client.post("/api/block_schemas/", json=body)
        assert (first.status_code, again.status_code) == (201, 200)
        assert first.get_json() == again.get_json()
        assert first.get_json()["checksum"] == schema_checksum(SECRET_FIELDS)
        assert first.get_json()["version"] == "non-versioned"
        assert first.get_json()["block_type"]["slug"] == "vault"
        v2 = client.post("/api/block_schemas/", json={**body, "version": "2.0"})
        assert v2.status_code == 201 and v2.get_json()["id"] != first.get_json()["id"]

    def test_read_by_id_and_checksum(self, client, vault):
        _, schema = vault
        assert client.get(f"/api/block_schemas/{schema['id']}").get_json() == schema
        by_checksum = client.get(f"/api/block_schemas/checksum/{schema['checksum']}")
        assert by_checksum.get_json() == schema
        versioned = client.get(
            f"/api/block_schemas/checksum/{schema['checksum']}",
            query_string={"version": "non-versioned"},
        )
        assert versioned.get_json() == schema
        assert (
            client.get(
                f"/api/block_schemas/checksum/{schema['checksum']}", query_string={"version": "9"}
            ).status_code
            == 404
        )

    def test_unknown_block_type_is_404(self, client):
        response = client.post(
            "/api/block_schemas/", json={"fields": {}, "block_type_id": str(uuid.uuid4())}
        )
        assert response.status_code == 404

    def test_filter_capabilities_and_delete(self, client, vault):
        block_type, _schema = vault
        other = make_schema(
            client,
            block_type,
            fields={**SECRET_FIELDS, "title": "V2"},
            capabilities=["read-path", "write-path"],
        )
        found = client.post(
            "/api/block_schemas/filter",
            json={"block_schemas": {"block_capabilities": {"all_": ["read-path", "write-path"]}}},
        )
        assert [s["id"] for s in found.get_json()] == [other["id"]]
        assert client.get("/api/block_capabilities/").get_json() == ["read-path", "write-path"]
        assert client.delete(f"/api/block_schemas/{other['id']}").status_code == 204
        assert client.get(f"/api/block_schemas/{other['id']}").status_code == 404
        assert client.delete(f"/api/block_schemas/{other['id']}").status_code == 404

    def test_system_checksums_are_prefects(self, system):
        """Our checksum function gives, for every system schema, the checksum Prefect
        computed (recorded in the data file by the real library)."""
        schemas = system.post("/api/block_schemas/filter", json={}).get_json()
        assert len(schemas) >= 15
        for schema in schemas:
            assert schema_checksum(schema["fields"]) == schema["checksum"], schema["block_type"]


class TestBlockDocuments:
    def test_create_and_read_obfuscates_secrets(self, client, vault):
        _, schema = vault
        document = make_document(client, schema)
        assert document["data"] == {
            "url": "https://vault",
            "token": "**********",
            "headers": {"X-Key": "**********"},
        }
        assert document["block_schema"]["id"] == schema["id"]
        assert document["block_type"]["slug"] == "vault"
        assert document["block_type_name"] == document["block_type"]["name"]
        assert document["block_document_references"] == {}
        assert document["is_anonymous"] is False
        shown = client.get(
            f"/api/block_documents/{document['id']}", query_string={"include_secrets": "true"}
        ).get_json()
        assert shown["data"]["token"] == "s3cr3t"
        assert shown["data"]["headers"] == {"X-Key": "k1"}
        by_name = client.get("/api/block_types/slug/vault/block_documents/name/main")
        assert by_name.get_json()["data"]["token"] == "**********"
        listed = client.get("/api/block_types/slug/vault/block_documents").get_json()
        assert [d["id"] for d in listed] == [document["id"]]
        assert listed[0]["data"]["token"] == "**********"

    def test_data_is_encrypted_at_rest(self, client, vault):
        _, schema = vault
        document = make_document(client, schema)
        raw = BlockDocument.get_by_id(uuid.UUID(document["id"])).data
        assert "s3cr3t" not in raw and "https://vault" not in raw
        assert raw.startswith("gAAAAA")  # a Fernet token

    def test_duplicate_name_is_409(self, client, vault):
        _, schema = vault
        make_document(client, schema)
        response = client.post(
            "/api/block_documents/",
            json={
                "name": "main",
                "block_schema_id": schema["id"],
                "block_type_id": schema["block_type_id"],
                "data": {"url": "u"},
            },
        )
        assert response.status_code == 409

    def test_data_not_matching_the_schema_is_422_naming_the_field(self, client, vault):
        _, schema = vault
        body = {
            "name": "bad",
            "block_schema_id": schema["id"],
            "block_type_id": schema["block_type_id"],
        }
        response = client.post(
            "/api/block_documents/",
            json={**body, "data": {"url": "u", "port": "SECRETPORT", "token": "hunter2"}},
        )
        error = assert_422(response, "body", "data", "port")
        assert "SECRETPORT" not in response.get_data(as_text=True)
        assert "hunter2" not in response.get_data(as_text=True)
        assert error["request_body"] is None
        assert_422(
            client.post("/api/block_documents/", json={**body, "data": {}}), "body", "data", "url"
        )
        # Optional fields may be null (pydantic v1 writes Optional[str] as a plain string).
        assert (
            client.post(
                "/api/block_documents/", json={**body, "data": {"url": "u", "note": None}}
            ).status_code
            == 201
        )

    def test_a_json_patch_field_takes_any_operation_values(self, system):
        """``kubernetes-job``'s ``customizations`` (``format: rfc6902``): Prefect's schema
        says the operations' values are strings, yet Prefect saves objects there."""
        block_type = system.get("/api/block_types/slug/kubernetes-job").get_json()
        [schema] = system.post(
            "/api/block_schemas/filter",
            json={"block_schemas": {"block_type_id": {"any_": [block_type["id"]]}}},
        ).get_json()
        patch = [{"op": "add", "path": "/spec/x", "value": {"limits": {"memory": "1Gi"}}}]
        document = make_document(system, schema, "patched", {"customizations": patch})
        assert document["data"]["customizations"] == patch
        body = {"name": "unpatched", "block_schema_id": schema["id"]}
        body["block_type_id"] = block_type["id"]
        for bad in ({"op": "add"}, ["add"]):
            response = system.post(
                "/api/block_documents/", json={**body, "data": {"customizations": bad}}
            )
            assert_422(response, "body", "data", "customizations")

    @pytest.mark.parametrize("name", ["Upper", "with space", "under_score"])
    def test_name_outside_the_rule_is_422_saying_which(self, client, vault, name):
        _, schema = vault
        response = client.post(
            "/api/block_documents/",
            json={
                "name": name,
                "block_schema_id": schema["id"],
                "block_type_id": schema["block_type_id"],
                "data": {"url": "u"},
            },
        )
        body = assert_422(response, "body", "name")
        assert "lowercase letters, numbers, and dashes" in json.dumps(body)

    def test_schema_of_another_type_is_422(self, client, vault):
        _, schema = vault
        other = make_type(client, "other")
        response = client.post(
            "/api/block_documents/",
            json={
                "name": "x",
                "block_schema_id": schema["id"],
                "block_type_id": other["id"],
                "data": {"url": "u"},
            },
        )
        assert_422(response, "body", "block_schema_id")

    def test_anonymous_documents(self, client, vault):
        _, schema = vault
        anonymous = make_document(client, schema, name=None, is_anonymous=True)
        assert anonymous["name"].startswith("anonymous-")
        named = make_document(client, schema, name="named")
        listed = client.post("/api/block_documents/filter", json={}).get_json()
        assert [d["id"] for d in listed] == [named["id"]]
        only_anonymous = client.post(
            "/api/block_documents/filter", json={"block_documents": {"is_anonymous": {"eq_": True}}}
        ).get_json()
        assert [d["id"] for d in only_anonymous] == [anonymous["id"]]
        assert client.post("/api/block_documents/count", json={}).get_json() == 1
        assert (
            client.post(
                "/api/block_documents/count",
                json={"block_documents": {"is_anonymous": {"eq_": True}}},
            ).get_json()
            == 1
        )
        assert client.get(f"/api/block_documents/{anonymous['id']}").status_code == 200
        missing_name = client.post(
            "/api/block_documents/",
            json={
                "block_schema_id": schema["id"],
                "block_type_id": schema["block_type_id"],
                "data": {"url": "u"},
            },
        )
        assert_422(missing_name, "body", "name")

    def test_count_ignores_paging(self, client, vault):
        """Prefect 2.20's UI counts block documents with its page size ({"limit": 50});
        Prefect's server counts every match whatever the paging, and so does Orion."""
        _, schema = vault
        for name in ("a", "b", "c"):
            make_document(client, schema, name=name)
        for paging in ({"limit": 50}, {"limit": 1, "offset": 2}, {"limit": None}):
            response = client.post("/api/block_documents/count", json=paging)
            assert (response.status_code, response.get_json()) == (200, 3), paging
        assert_422(client.post("/api/block_documents/count", json={"limit": "x"}), "body", "limit")

    def test_filter_by_type_and_name_with_secrets(self, client, vault):
        _, schema = vault
        make_document(client, schema, name="a")
        make_document(client, schema, name="b")
        found = client.post(
            "/api/block_documents/filter",
            json={
                "block_documents": {"name": {"any_": ["b"]}},
                "block_types": {"slug": {"any_": ["vault"]}},
                "include_secrets": True,
                "block_schema_type": None,
                "limit": 5,
                "offset": 0,
            },
        ).get_json()
        assert [d["name"] for d in found] == ["b"]
        assert found[0]["data"]["token"] == "s3cr3t"
        assert (
            client.post(
                "/api/block_documents/filter", json={"block_types": {"slug": {"any_": ["nope"]}}}
            ).get_json()
            == []
        )

    def test_filter_by_name_like_as_prefect_220(self, client, vault):
        """Prefect 2.20's ``BlockDocumentFilterName`` has ``like_``: a case-insensitive
        substring, combined with the other criteria by the filter's operator."""
        _, schema = vault
        for name in ("prod-db", "staging-db", "prod-cache", "preprod-queue"):
            make_document(client, schema, name=name)

        def names(criteria):
            response = client.post(
                "/api/block_documents/filter", json={"block_documents": criteria}
            )
            assert response.status_code == 200, response.get_json()
            return [d["name"] for d in response.get_json()]

        assert names({"name": {"like_": "PROD"}}) == ["preprod-queue", "prod-cache", "prod-db"]
        assert names({"name": {"like_": "-db", "any_": ["prod-db", "prod-cache"]}}) == ["prod-db"]
        assert names({"name": {"like_": "%"}}) == []
        assert_422(
            client.post(
                "/api/block_documents/filter", json={"block_documents": {"name": {"like_": 1}}}
            ),
            "body",
            "block_documents",
        )

    def test_filter_sorts_as_prefect_220(self, client, vault):
        _, schema = vault
        archive_fields = {**SECRET_FIELDS, "title": "Archive", "block_type_slug": "archive"}
        archive = make_schema(client, make_type(client, "archive"), fields=archive_fields)
        for name in ("b", "c"):
            make_document(client, schema, name=name)
        make_document(client, archive, name="z")

        def names(sort=None):
            body = {"block_types": {"slug": {"any_": ["vault", "archive"]}}}
            if sort:
                body["sort"] = sort
            response = client.post("/api/block_documents/filter", json=body)
            assert response.status_code == 200, response.get_json()
            return [d["name"] for d in response.get_json()]

        assert names() == names("NAME_ASC") == ["b", "c", "z"]
        assert names("NAME_DESC") == ["z", "c", "b"]
        assert names("BLOCK_TYPE_AND_NAME_ASC") == ["z", "b", "c"]
        assert_422(
            client.post("/api/block_documents/filter", json={"sort": "NEWEST"}), "body", "sort"
        )

    def test_update_merges_and_keeps_obfuscated_secrets(self, client, vault):
        _, schema = vault
        document = make_document(client, schema)
        url = f"/api/block_documents/{document['id']}"
        read = client.get(url).get_json()
        # Posting back what was read (obfuscated secrets) changes only what changed.
        assert (
            client.patch(url, json={"data": {**read["data"], "url": "https://new"}}).status_code
            == 204
        )
        shown = client.get(url, query_string={"include_secrets": True}).get_json()
        assert shown["data"] == {
            "url": "https://new",
            "token": "s3cr3t",
            "headers": {"X-Key": "k1"},
        }
        assert client.patch(url, json={"data": {"port": 8200}}).status_code == 204
        shown = client.get(url, query_string={"include_secrets": True}).get_json()
        assert shown["data"]["port"] == 8200 and shown["data"]["token"] == "s3cr3t"
        assert (
            client.patch(
                url, json={"data": {"url": "https://only"}, "merge_existing_data": False}
            ).status_code
            == 204
        )
        shown = client.get(url, query_string={"include_secrets": True}).get_json()
        assert shown["data"] == {"url": "https://only"}
        assert_422(client.patch(url, json={"data": {"port": "x"}}), "body", "data", "port")
        assert (
            client.patch(f"/api/block_documents/{uuid.uuid4()}", json={"data": {}}).status_code
            == 404
        )

    def test_update_moves_to_another_schema_of_the_type_only(self, client, vault):
        block_type, schema = vault
        document = make_document(client, schema)
        v2 = make_schema(client, block_type, fields={**SECRET_FIELDS, "title": "V2"})
        url = f"/api/block_documents/{document['id']}"
        assert (
            client.patch(
                url, json={"block_schema_id": v2["id"], "merge_existing_data": False}
            ).status_code
            == 204
        )
        moved = client.get(url, query_string={"include_secrets": True}).get_json()
        assert moved["block_schema_id"] == v2["id"]
        # Without ``data`` the data stays, even with merge_existing_data false.
        assert moved["data"] == {
            "url": "https://vault",
            "token": "s3cr3t",
            "headers": {"X-Key": "k1"},
        }
        other = make_schema(
            client, make_type(client, "other"), fields={**SECRET_FIELDS, "title": "O"}
        )
        assert_422(
            client.patch(url, json={"block_schema_id": other["id"]}), "body", "block_schema_id"
        )

    def test_delete(self, client, vault):
        _, schema = vault
        document = make_document(client, schema)
        url = f"/api/block_documents/{document['id']}"
        assert client.delete(url).status_code == 204
        assert client.get(url).status_code == 404
        assert client.delete(url).status_code == 404

    def test_delete_of_a_document_a_deployment_uses_is_409_naming_it(self, client, flow, vault):
        _, schema = vault
        document = make_document(client, schema)
        response = client.post(
            "/api/deployments/",
            json={"name": "nightly", "flow_id": flow["id"], "storage_document_id": document["id"]},
        )
        assert response.status_code in (200, 201), response.get_json()
        conflict = client.delete(f"/api/block_documents/{document['id']}")
        assert conflict.status_code == 409
        assert "etl/nightly" in conflict.get_json()["detail"]
        assert client.get(f"/api/block_documents/{document['id']}").status_code == 200


class TestNestedDocuments:
    @pytest.fixture
    def registry_and_container(self, system):
        registry = system.get("/api/block_types/slug/docker-registry").get_json()
        container = system.get("/api/block_types/slug/docker-container").get_json()

        def schema_of(block_type):
            return system.post(
                "/api/block_schemas/filter",
                json={"block_schemas": {"block_type_id": {"any_": [block_type["id"]]}}},
            ).get_json()[0]

        return schema_of(registry), schema_of(container)

    def test_references_are_resolved_on_read(self, system, registry_and_container):
        registry_schema, container_schema = registry_and_container
        registry = make_document(
            system,
            registry_schema,
            name="hub",
            data={"username": "me", "password": "pw", "registry_url": "https://hub"},
        )
        container = make_document(
            system,
            container_schema,
            name="job",
            data={
                "image": "python:3.11",
                "type": "docker-container",
                "image_registry": {"$ref": {"block_document_id": registry["id"]}},
            },
        )
        assert container["data"]["image_registry"] == {
            "username": "me",
            "password": "**********",
            "registry_url": "https://hub",
        }
        reference = container["block_document_references"]["image_registry"]
        assert reference["block_document"]["id"] == registry["id"]
        assert reference["block_document"]["name"] == "hub"
        assert reference["block_document"]["block_type"]["slug"] == "docker-registry"
        shown = system.get(
            f"/api/block_documents/{container['id']}", query_string={"include_secrets": True}
        ).get_json()
        assert shown["data"]["image_registry"]["password"] == "pw"
        # The parent's own row holds only the reference, not the nested data.
        raw = BlockDocument.get_by_id(uuid.UUID(container["id"])).data
        assert "image_registry" not in json.dumps(raw)
        # A merge that does not mention the nested field keeps it.
        assert (
            system.patch(
                f"/api/block_documents/{container['id']}", json={"data": {"image": "python:3.12"}}
            ).status_code
            == 204
        )
        again = system.get(f"/api/block_documents/{container['id']}").get_json()
        assert again["data"]["image"] == "python:3.12"
        assert (
            again["block_document_references"]["image_registry"]["block_document"]["id"]
            == registry["id"]
        )

    def test_reference_to_a_missing_document_is_422(self, system, registry_and_container):
        _, container_schema = registry_and_container
        response = system.post(
            "/api/block_documents/",
            json={
                "name": "job",
                "block_schema_id": container_schema["id"],
                "block_type_id": container_schema["block_type_id"],
                "data": {"image_registry": {"$ref": {"block_document_id": str(uuid.uuid4())}}},
            },
        )
        assert_422(response, "body", "data", "image_registry")
