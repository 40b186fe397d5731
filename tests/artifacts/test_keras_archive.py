"""A .keras file is checked before Keras reads it: only the entries Keras writes, each no larger
than its bytes can hold."""

from __future__ import annotations

import zipfile

import pytest

from gender_cls.artifacts.keras_archive import MAX_JSON_BYTES, check_keras_archive
from gender_cls.errors import UserError
from tests.helpers import declare_size


def keras_file(path, **extra):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("metadata.json", "{}")
        archive.writestr("config.json", "{}")
        archive.writestr("model.weights.h5", bytes(4096))
        archive.writestr("assets/vocabulary.txt", "a\nb\n")
        for name, data in extra.items():
            archive.writestr(name, data)
    return path


def test_the_entries_keras_writes_pass(tmp_path):
    check_keras_archive(keras_file(tmp_path / "m.keras"))
    (tmp_path / "not_a_zip.keras").write_bytes(b"junk")
    check_keras_archive(tmp_path / "not_a_zip.keras")  # left to Keras, which names it


def test_an_entry_keras_does_not_write_is_refused_by_name(tmp_path):
    path = keras_file(tmp_path / "m.keras", **{"payload.py": "import os"})
    with pytest.raises(UserError, match=r"m.keras: holds 'payload.py', which Keras does not"):
        check_keras_archive(path)


@pytest.mark.parametrize("entry, size", [("model.weights.h5", 1_500_000_000),
                                         ("config.json", MAX_JSON_BYTES + 1)])  # fmt: skip
def test_an_entry_declaring_more_than_its_bytes_can_hold_is_refused(tmp_path, entry, size):
    path = keras_file(tmp_path / "m.keras")
    declare_size(path, entry, size)
    with pytest.raises(UserError, match=f"its entry '{entry}' declares {size:,} bytes"):
        check_keras_archive(path)


@pytest.mark.slow
def test_loading_checks_the_archive_before_keras_reads_it(trained_run, tmp_path):
    import shutil

    from gender_cls.predict.runners import load_keras_model

    path = tmp_path / "model.keras"
    shutil.copy(trained_run.run_dir / "model.keras", path)
    assert load_keras_model(path) is not None
    declare_size(path, "config.json", 2_000_000_000)
    with pytest.raises(UserError, match="its entry 'config.json' declares 2,000,000,000 bytes"):
        load_keras_model(path)
