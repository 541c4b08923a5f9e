"""Mutation testing with mutmut: ``make mutation`` (all modules below) or
``make mutation MODULES="sb3_ext/per sb3_ext/common/td.py"``.

mutmut changes one small thing at a time in the code (an operator, a constant, an argument,
a returned value) and runs the tests that execute the changed function; a mutant the tests do
not notice ("survived") points at behaviour no test pins down. This script:

1. copies the working tree (tracked and untracked, not ignored files), or the commit given with
   ``--ref``, into ``.mutation/`` (or ``--work DIR``, so that runs of different modules can go side
   by side), which is kept between runs so that mutmut re-tests only the functions that changed;
2. configures mutmut (the ``[tool.mutmut]`` table of ``pyproject.toml``) to mutate the chosen
   modules with the tests selected there (``--tests`` narrows them to some files: faster, and a
   kill rate that can only be lower than the whole suite's), and runs it with ``HYPOTHESIS_PROFILE=ci`` (the property tests' fixed examples, so a
   verdict does not depend on a random draw);
3. prints, per module, the mutants, the killed ones (a timeout counts as killed: the mutant made
   the code loop), the survivors, those no test executes, those not checked (a run stopped early),
   the accepted equivalents listed in ``tests/mutation_equivalents/*.txt`` (each with its reason)
   and the kill rate among the checked, non-equivalent mutants; then every survivor that is not an accepted equivalent, to be either
   killed by a new test or added to that file with a one-line reason (``.venv/bin/mutmut show NAME``
   in the working folder prints its diff).

Functions with decorators other than ``staticmethod``/``classmethod`` (numba kernels, properties)
are not mutated by mutmut; ``tests/planted_bugs.py`` covers the compiled sum tree instead.
"""

from __future__ import annotations

import argparse
import filecmp
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".mutation"
# One file per area (``per.txt``, ``common.txt``, ...), so that reviews of different modules do not
# edit the same file.
EQUIVALENTS = ROOT / "tests" / "mutation_equivalents"
DEFAULT_MODULES = (
    "sb3_ext/common",
    "sb3_ext/per",
    "sb3_ext/dyna",
    "sb3_ext/option_critic",
    "sb3_ext/aux_dqn",
    "sb3_ext/mpc",
    "gym_advrl/envs",
)
COPIED = ("gym_advrl", "sb3_ext", "tests", "examples", "benchmarks", "pyproject.toml")
KILLED = {"killed", "timeout", "caught by type check", "segfault"}
# Not run (yet): a run stopped early, or mutmut's "pragma: no mutate" skips.
UNCHECKED = {"not checked", "skipped", "check was interrupted by user"}


def module_glob(module: str) -> str:
    """mutmut's ``only_mutate`` pattern for a package directory or a single ``.py`` file."""
    path = module.rstrip("/")
    if not (ROOT / path).exists():
        raise SystemExit(f"error: MODULES: no such file or directory: {path!r}")
    return path if path.endswith(".py") else f"{path}/*"


def module_prefix(module: str) -> str:
    """Dotted prefix of the mutant names mutmut gives to the functions of ``module``."""
    path = module.rstrip("/")
    return path.removesuffix(".py").replace("/", ".") + "."


def sync_tree(ref: str | None) -> None:
    """Mirror ``COPIED`` into ``WORK``: from the working tree (tracked and untracked files that are
    not ignored), or from commit ``ref``."""
    if ref is None:
        source_root = ROOT
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z", *COPIED],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split("\0")
        wanted = {name for name in listed if name and (ROOT / name).is_file()}
    else:
        source_root = Path(tempfile.mkdtemp(prefix="mutation-"))
        archive = subprocess.run(
            ["git", "archive", "--format=tar", ref, *COPIED], cwd=ROOT, check=True, capture_output=True
        ).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(source_root, filter="data")
            wanted = {member.name for member in tar.getmembers() if member.isfile()}
    for name in wanted:
        source, target = source_root / name, WORK / name
        if not target.exists() or not filecmp.cmp(source, target, shallow=False):
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    for top in COPIED:
        base = WORK / top
        if base.is_dir():
            for path in base.rglob("*"):
                relative = path.relative_to(WORK).as_posix()
                if path.is_file() and "__pycache__" not in relative and relative not in wanted:
                    path.unlink()
    if ref is not None:
        shutil.rmtree(source_root)
    # mutmut copies the tests and scripts into mutants/ on every run but never deletes one there.
    for copied in ("tests", "examples", "benchmarks"):
        shutil.rmtree(WORK / "mutants" / copied, ignore_errors=True)


def configure(modules: list[str], tests: list[str] | None = None) -> None:
    """Write ``only_mutate`` for ``modules`` into the copy's ``[tool.mutmut]`` table.

    mutmut keeps its mutants and its map of tests to functions between runs, but does not notice
    when the set of mutated files changes: a file copied unmutated by the last run stays so, and
    its functions stay without tests. A run of other modules than the last one therefore starts
    from a fresh ``mutants/``.
    """
    record = WORK / "modules.json"
    wanted = {"modules": sorted(modules), "tests": sorted(tests or [])}
    last = json.loads(record.read_text()) if record.exists() else None
    if last is not None and {k: last.get(k) for k in wanted} != wanted:
        shutil.rmtree(WORK / "mutants", ignore_errors=True)
    elif last is not None and last.get("test_order"):
        # mutmut hashes the test selection in order and drops every verdict when the hash
        # changes: the same files keep the order of the folder's first run.
        tests = last["test_order"]
    record.write_text(json.dumps({**wanted, "test_order": list(tests or [])}))
    text = (WORK / "pyproject.toml").read_text()
    if "[tool.mutmut]" not in text:
        raise SystemExit("error: pyproject.toml has no [tool.mutmut] table")
    text = re.sub(r"(?m)^only_mutate\s*=.*\n", "", text)
    patterns = json.dumps([module_glob(m) for m in modules])
    text = text.replace("[tool.mutmut]\n", f"[tool.mutmut]\nonly_mutate = {patterns}\n", 1)
    if tests:
        # Replace the selection's directory ("tests") by the chosen files; keep its --ignore flags.
        text, count = re.subn(
            r'(pytest_add_cli_args_test_selection = \[\s*)"tests",',
            lambda m: m.group(1) + ", ".join(json.dumps(t) for t in tests) + ",",
            text,
            count=1,
        )
        if count != 1:
            raise SystemExit(
                'error: [tool.mutmut] pytest_add_cli_args_test_selection must start with "tests"'
            )
    (WORK / "pyproject.toml").write_text(text)


def read_equivalents(folder: Path = EQUIVALENTS) -> dict[str, str]:
    """Accepted equivalent mutants from every ``*.txt`` in ``folder``: ``name  # reason`` per line
    (blank lines and ``#`` lines skipped)."""
    accepted = {}
    for path in sorted(folder.glob("*.txt")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            name, _, reason = line.partition("#")
            if not reason.strip():
                raise SystemExit(f"error: {path.name}:{number}: an equivalent needs '# reason'")
            if name.strip() in accepted:
                raise SystemExit(f"error: {path.name}:{number}: {name.strip()} is listed twice")
            accepted[name.strip()] = reason.strip()
    return accepted


def mutant_statuses() -> dict[str, str]:
    """Every mutant's verdict, as ``mutmut results --all true`` prints it."""
    out = subprocess.run(
        [sys.executable, "-m", "mutmut", "results", "--all", "true"],
        cwd=WORK,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    statuses = {}
    for line in out.splitlines():
        name, sep, status = line.strip().rpartition(": ")
        if sep and "__mutmut_" in name:
            statuses[name] = status
    return statuses


def summarize(modules: list[str], statuses: dict[str, str], accepted: dict[str, str]) -> dict:
    rows, open_survivors = [], []
    for module in modules:
        prefix = module_prefix(module)
        mine = {n: s for n, s in statuses.items() if n.startswith(prefix)}
        counts = Counter("killed" if s in KILLED else s for s in mine.values())
        checked = {n: s for n, s in mine.items() if s not in UNCHECKED}
        equivalent = sum(1 for n, s in checked.items() if n in accepted and s not in KILLED)
        candidates = len(checked) - equivalent
        rate = counts["killed"] / candidates if candidates else float("nan")
        rows.append(
            {
                "module": module,
                "mutants": len(mine),
                "killed": counts["killed"],
                "survived": counts["survived"],
                "no tests": counts["no tests"],
                "not checked": counts["not checked"],
                "equivalent": equivalent,
                "kill rate": rate,
                "candidates": candidates,
            }
        )
        open_survivors += sorted(n for n, s in checked.items() if s not in KILLED and n not in accepted)
    total = {key: sum(r[key] for r in rows) for key in rows[0] if key not in ("module", "kill rate")}
    candidates = total["candidates"]
    total["kill rate"] = total["killed"] / candidates if candidates else float("nan")
    return {"rows": rows, "total": total, "open": open_survivors}


def print_summary(summary: dict, seconds: float) -> None:
    keys = ["mutants", "killed", "survived", "no tests", "not checked", "equivalent", "kill rate"]
    print("| module | " + " | ".join(keys) + " |")
    print("|---|" + "---:|" * len(keys))
    for row in [*summary["rows"], {"module": "**all**", **summary["total"]}]:
        cells = [f"{row[k]:.1%}" if k == "kill rate" else str(row[k]) for k in keys]
        print(f"| {row['module']} | " + " | ".join(cells) + " |")
    print(f"\nwall time {seconds / 60:.1f} min; details: {WORK / 'summary.json'}")
    if summary["total"]["not checked"]:
        print("the run did not check every mutant: the kill rate is among those it checked")
    if summary["open"]:
        print(f"\n{len(summary['open'])} survivors to kill or to accept in {EQUIVALENTS.relative_to(ROOT)}/:")
        for name in summary["open"]:
            print(f"  {name}")


def main(argv: list[str] | None = None) -> int:
    global WORK
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", default=list(DEFAULT_MODULES))
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="mutants tested at once")
    parser.add_argument("--ref", help="mutate this commit instead of the working tree")
    parser.add_argument("--report-only", action="store_true", help="summarize the last run, run nothing")
    parser.add_argument(
        "--rerun-survivors",
        action="store_true",
        help="re-test the last run's survivors, mutants without tests and mutants not checked yet (after "
        "new tests or changed code: mutmut keeps every verdict of a function that did not change); "
        "without --tests, the folder's last test files, in their order",
    )
    parser.add_argument("--work", type=Path, default=WORK, help="working folder (default .mutation/)")
    parser.add_argument("--tests", nargs="+", help="run only these test files (default: the whole selection)")
    args = parser.parse_args(argv)
    WORK = args.work.resolve()
    record = WORK / "modules.json"
    if args.rerun_survivors and not args.tests and record.exists():
        last = json.loads(record.read_text())
        args.tests = last.get("test_order") or last.get("tests") or None
    for test in args.tests or []:
        if not (ROOT / test).exists():
            parser.error(f"--tests: no such file or directory: {test!r}")
    if args.jobs < 1:
        parser.error(f"--jobs must be >= 1, got {args.jobs}")
    modules = args.modules
    for module in modules:
        module_glob(module)
    start = time.perf_counter()
    if not args.report_only:
        WORK.mkdir(exist_ok=True)
        sync_tree(args.ref)
        configure(modules, args.tests)
        # One thread per test process: mutmut runs --jobs of them at once.
        threads = {name: "1" for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")}
        env = {**os.environ, **threads, "HYPOTHESIS_PROFILE": "ci"}
        command = [sys.executable, "-m", "mutmut", "run", "--max-children", str(args.jobs)]
        if args.rerun_survivors and (WORK / "mutants").is_dir():
            # mutmut maps a test to the functions it ran when the test was first seen: a test
            # edited since still runs only against those. A fresh map (the selected tests run once
            # more) lets the edited tests reach the survivors; the verdicts stay.
            (WORK / "mutants" / "mutmut-stats.json").unlink(missing_ok=True)
            accepted = read_equivalents()
            prefixes = tuple(module_prefix(m) for m in modules)
            command += sorted(
                name
                for name, status in mutant_statuses().items()
                if name.startswith(prefixes)
                and (status in UNCHECKED or (status in ("survived", "no tests") and name not in accepted))
            )
        with open(WORK / "run.log", "w") as log:
            run = subprocess.run(command, cwd=WORK, env=env, check=False, stdout=log, stderr=log)
        if run.returncode != 0:
            tail = (WORK / "run.log").read_text()[-3000:]
            print(f"mutmut run failed (exit {run.returncode}); end of {WORK / 'run.log'}:\n{tail}")
            return 1
    if not (WORK / "mutants").is_dir():
        parser.error(f"--report-only: no run in {WORK} yet")
    summary = summarize(modules, mutant_statuses(), read_equivalents())
    (WORK / "summary.json").write_text(json.dumps(summary, indent=1))
    print_summary(summary, time.perf_counter() - start)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
