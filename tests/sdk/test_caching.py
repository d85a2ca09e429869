"""Cache keys: task_input_hash and hash_objects."""

from types import SimpleNamespace

from client.sdk.caching import hash_objects, task_input_hash


def _context(fn, key="mod.fn"):
    return SimpleNamespace(task=SimpleNamespace(task_key=key, fn=fn))


def add(x, y):
    return x + y


def sub(x, y):
    return x - y


def test_equal_inputs_equal_keys_and_any_difference_changes_it():
    key = task_input_hash(_context(add), {"x": 1, "y": 2})
    assert key == task_input_hash(_context(add), {"y": 2, "x": 1})
    assert key != task_input_hash(_context(add), {"x": 1, "y": 3})
    assert key != task_input_hash(_context(add, "mod.other"), {"x": 1, "y": 2})
    assert key != task_input_hash(_context(sub), {"x": 1, "y": 2})


def test_unjsonable_inputs_fall_back_to_pickle_and_unhashable_give_none():
    assert hash_objects({1, 2}) == hash_objects({1, 2})
    assert hash_objects(lambda: 1) is None
