"""``tests/mutation.py``'s bookkeeping of a working folder (no mutmut run)."""

from __future__ import annotations

import json

import pytest

from tests import mutation

PYPROJECT = '[tool.mutmut]\npytest_add_cli_args_test_selection = [\n    "tests",\n    "--ignore=tests/test_docs.py",\n]\n'


@pytest.fixture
def work(tmp_path, monkeypatch):
    monkeypatch.setattr(mutation, "WORK", tmp_path)
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    return tmp_path


def configure_fresh_copy(work, modules, tests):
    (work / "pyproject.toml").write_text(PYPROJECT)  # as every run's copy of the tree brings it
    mutation.configure(modules, tests)
    return (work / "pyproject.toml").read_text()


def test_the_same_test_files_keep_the_first_runs_order(work):
    first = configure_fresh_copy(work, ["sb3_ext/per"], ["tests/test_per_exact.py", "tests/test_per.py"])
    assert '"tests/test_per_exact.py", "tests/test_per.py",' in first
    assert 'only_mutate = ["sb3_ext/per/*"]' in first
    (work / "mutants").mkdir()
    # mutmut hashes the selection in order: another order would drop every verdict.
    again = configure_fresh_copy(work, ["sb3_ext/per"], ["tests/test_per.py", "tests/test_per_exact.py"])
    assert again == first
    assert (work / "mutants").is_dir()
    record = json.loads((work / "modules.json").read_text())
    assert record["test_order"] == ["tests/test_per_exact.py", "tests/test_per.py"]


def test_other_test_files_or_modules_start_from_fresh_mutants(work):
    configure_fresh_copy(work, ["sb3_ext/per"], ["tests/test_per.py"])
    (work / "mutants").mkdir()
    text = configure_fresh_copy(work, ["sb3_ext/per"], ["tests/test_per.py", "tests/test_per_exact.py"])
    assert not (work / "mutants").exists()
    assert '"tests/test_per.py", "tests/test_per_exact.py",' in text
    (work / "mutants").mkdir()
    configure_fresh_copy(work, ["sb3_ext/dyna"], ["tests/test_per.py", "tests/test_per_exact.py"])
    assert not (work / "mutants").exists()


def test_a_selection_without_tests_is_refused(work):
    (work / "pyproject.toml").write_text("[tool.mutmut]\npytest_add_cli_args_test_selection = []\n")
    with pytest.raises(SystemExit, match="must start with"):
        mutation.configure(["sb3_ext/per"], ["tests/test_per.py"])
