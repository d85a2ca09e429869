"""Results storage: references, serializers, fsspec URLs and the default location."""

import pickle

import pytest

from client.sdk import results


def test_persist_and_load_round_trip_in_a_local_folder(tmp_path):
    ref = results.persist_result({"a": [1, 2]}, str(tmp_path / "store"))
    assert ref["type"] == "reference" and ref["serializer"] == "pickle"
    assert ref["storage"] == str(tmp_path / "store")
    stored = (tmp_path / "store" / ref["key"]).read_bytes()
    assert pickle.loads(stored) == {"a": [1, 2]}
    assert results.load_result(ref) == {"a": [1, 2]}


def test_json_serializer_writes_json(tmp_path):
    ref = results.persist_result([1, "x"], str(tmp_path), serializer="json")
    assert (tmp_path / ref["key"]).read_text() == '[1, "x"]'
    assert results.load_result(ref) == [1, "x"]


def test_any_fsspec_url_works(tmp_path):
    ref = results.persist_result(42, "memory://orion-results/test")
    assert ref["storage"] == "memory://orion-results/test"
    assert results.load_result(ref) == 42
    ref = results.persist_result(43, f"file://{tmp_path}/x")
    assert (tmp_path / "x" / ref["key"]).exists()
    assert results.load_result(ref) == 43


def test_default_storage_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("ORION_RESULTS_STORAGE", raising=False)
    monkeypatch.setenv("ORION_HOME", str(tmp_path / "home"))
    assert results.default_storage_url() == str(tmp_path / "home" / "storage")
    ref = results.persist_result("v", None)
    assert (tmp_path / "home" / "storage" / ref["key"]).exists()
    monkeypatch.setenv("ORION_RESULTS_STORAGE", "memory://elsewhere")
    assert results.get_storage().url == "memory://elsewhere"


def test_errors_are_clear(tmp_path):
    with pytest.raises(results.ResultError, match="Unknown result serializer 'yaml'"):
        results.persist_result(1, str(tmp_path), serializer="yaml")
    with pytest.raises(results.ResultError, match="Could not serialise the result"):
        results.persist_result(lambda: 1, str(tmp_path))
    with pytest.raises(results.ResultError, match="is missing from storage"):
        results.load_result({"type": "reference", "storage": str(tmp_path), "key": "nope"})
    with pytest.raises(results.ResultError, match="Not a result reference"):
        results.load_result({"value": 1})
    assert not results.is_reference(None)
