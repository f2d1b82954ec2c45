import pickle

import numpy as np
import pytest

from mrisr.core.safe_npy import load_npy
from mrisr.errors import UserError
from tests.conftest import object_array


def test_object_array_of_arrays_loads(tmp_path):
    items = [np.arange(6, dtype=np.int16).reshape(2, 3), np.ones((4, 4), dtype=bool)]
    np.save(tmp_path / "a.npy", object_array(items), allow_pickle=True)
    loaded = load_npy(tmp_path / "a.npy")
    assert loaded.dtype == object and len(loaded) == 2
    np.testing.assert_array_equal(loaded[0], items[0])
    assert loaded[0].dtype == np.int16 and loaded[1].dtype == bool


def test_plain_array_loads_without_pickle(tmp_path):
    np.save(tmp_path / "labels.npy", np.array([1, 2, 3]))
    np.testing.assert_array_equal(load_npy(tmp_path / "labels.npy"), [1, 2, 3])


class _Exploit:
    def __reduce__(self):
        import os

        return (os.system, ("touch EXPLOITED",))


def test_refuses_a_pickle_that_would_run_code(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    np.save(tmp_path / "evil.npy", object_array([_Exploit()]), allow_pickle=True)
    with pytest.raises(UserError, match="refused to load"):
        load_npy(tmp_path / "evil.npy")
    assert not (tmp_path / "EXPLOITED").exists()


def test_refuses_non_array_elements(tmp_path):
    np.save(tmp_path / "strings.npy", object_array(["a", "b"]), allow_pickle=True)
    with pytest.raises(UserError, match="not a numeric array"):
        load_npy(tmp_path / "strings.npy")


def test_not_an_npy_file(tmp_path):
    (tmp_path / "bad.npy").write_bytes(b"hello world")
    with pytest.raises(UserError, match="cannot read"):
        load_npy(tmp_path / "bad.npy")


def test_restricted_unpickler_directly_refuses_globals():
    import io

    from mrisr.core.safe_npy import RestrictedUnpickler

    payload = pickle.dumps(_Exploit())
    with pytest.raises(pickle.UnpicklingError):
        RestrictedUnpickler(io.BytesIO(payload)).load()
