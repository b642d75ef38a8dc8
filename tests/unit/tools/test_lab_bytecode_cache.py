"""The lab guests' bytecode cache for zip imports (extensions/molecule/lab/guest/lab_bytecode_cache.py)."""

import importlib.util
import os
import sys
import traceback
import zipfile
import zipimport

import pytest

HOOK = os.path.join(os.path.dirname(__file__), "..", "..", "..", "extensions", "molecule", "lab", "guest",
                    "lab_bytecode_cache.py")
SOURCE = b"def boom():\n    raise RuntimeError('from the zip')\n\nVALUE = 42\n"


@pytest.fixture
def hook(tmp_path, monkeypatch):
    """The hook module, installed over zipimport for this test only, caching under tmp_path."""
    original = zipimport._compile_source
    spec = importlib.util.spec_from_file_location("lab_bytecode_cache_under_test", HOOK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    zipimport._compile_source = original  # importing it as root installed it process-wide
    compiles = []

    def counting(pathname, source):
        compiles.append(pathname)
        return original(pathname, source)

    monkeypatch.setattr(module, "_compile_source", counting)
    monkeypatch.setattr(module, "CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(zipimport, "_compile_source", module._cached_compile)
    module.compiles = compiles
    return module


def import_from_new_zip(tmp_path, name, source):
    """Import module ``name`` from a fresh zip on sys.path, as each AnsiballZ payload is."""
    archive = tmp_path / ("%s-%d.zip" % (name, len(os.listdir(tmp_path))))
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("%s.py" % name, source)
    sys.path.insert(0, str(archive))
    try:
        module = importlib.import_module(name)
    finally:
        sys.path.remove(str(archive))
        sys.path_importer_cache.pop(str(archive), None)
        sys.modules.pop(name, None)
    return archive, module


def test_second_import_of_the_same_source_skips_the_compile(hook, tmp_path):
    import_from_new_zip(tmp_path, "cached_mod", SOURCE)
    assert len(hook.compiles) == 1
    assert len(os.listdir(hook.CACHE_DIR)) == 1
    archive, module = import_from_new_zip(tmp_path, "cached_mod", SOURCE)
    assert len(hook.compiles) == 1
    assert module.VALUE == 42


def test_cached_code_names_the_current_zip_in_tracebacks(hook, tmp_path):
    import_from_new_zip(tmp_path, "traced_mod", SOURCE)
    archive, module = import_from_new_zip(tmp_path, "traced_mod", SOURCE)
    with pytest.raises(RuntimeError) as info:
        module.boom()
    frames = traceback.extract_tb(info.value.__traceback__)
    assert frames[-1].filename.startswith(str(archive))


def test_changed_source_is_compiled_again(hook, tmp_path):
    import_from_new_zip(tmp_path, "changing_mod", SOURCE)
    archive, module = import_from_new_zip(tmp_path, "changing_mod", SOURCE.replace(b"42", b"43"))
    assert len(hook.compiles) == 2
    assert module.VALUE == 43


def test_corrupt_cache_entry_falls_back_to_compiling(hook, tmp_path):
    import_from_new_zip(tmp_path, "corrupt_mod", SOURCE)
    (entry,) = os.listdir(hook.CACHE_DIR)
    with open(os.path.join(hook.CACHE_DIR, entry), "wb") as handle:
        handle.write(b"not marshal data")
    archive, module = import_from_new_zip(tmp_path, "corrupt_mod", SOURCE)
    assert len(hook.compiles) == 2
    assert module.VALUE == 42
