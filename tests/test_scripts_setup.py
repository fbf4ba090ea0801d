"""The set-up decisions of scripts/odoo_env.sh, without installing anything.

The scripts run with PREPAID_BOOTSTRAP_DRY_RUN=1: whatever they would install,
fetch or start is printed as a ``DRY-RUN:`` line. Interpreters, apt-get, git
and the PostgreSQL programs are stubs written into a temporary folder put first
on PATH, so these tests need no Odoo, no network and no root, and take seconds.
"""

import os
import shlex
import subprocess
import sys
import tarfile
import textwrap
import zipfile
from pathlib import Path

import packaging
import pytest

REPO = Path(__file__).resolve().parent.parent
ENV_SH = REPO / "scripts" / "odoo_env.sh"
DEFAULT_SRC = "https://github.com/odoo/odoo"

_CLEARED = (
    "PYTHON",
    "ODOO_SRC",
    "ODOO_BRANCH",
    "ODOO_BIN",
    "ODOO_RC",
    "ODOO_BOOTSTRAP",
    "PREPAID_VENV",
    "PIP_CONSTRAINT",
    "PGHOST",
    "PGPORT",
    "PGUSER",
    "PGPASSWORD",
)


def _script(path, body):
    path.write_text("#!/bin/sh\n" + textwrap.dedent(body))
    path.chmod(0o755)
    return path


def no_odoo_python(path):
    """A Python 3.11 with every build header and no Odoo."""
    return _script(
        path,
        f"""\
        case "$*" in
            *"import odoo"*) echo "No module named 'odoo'" >&2; exit 1 ;;
            *"sys.version_info"*) echo 3.11; exit 0 ;;
            *Python.h*|*"import venv"*) exit 0 ;;
        esac
        exec {sys.executable} "$@"
        """,
    )


def odoo_python(path, root="/fake/odoo-root", flags=""):
    """A Python that imports Odoo 18 from ``root``."""
    return _script(
        path,
        f"""\
        case "$*" in
            *"import odoo"*) echo {root}; exit 0 ;;
        esac
        exec {sys.executable} {flags} "$@"
        """,
    )


def odoo_tree(path, major=18):
    """A folder that looks like an Odoo source tree of series ``major``.0."""
    (path / "odoo").mkdir(parents=True)
    (path / "odoo" / "release.py").write_text(
        f"version_info = ({major}, 0, 0, 'final', 0, '')\n"
    )
    (path / "odoo-bin").write_text("#!/usr/bin/env python3\n")
    (path / "odoo-bin").chmod(0o755)
    (path / "requirements.txt").write_text("polib==1.1.1\n")
    return path


def fake_dist(site, name, version):
    """An installed-distribution record that importlib.metadata finds."""
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    )


@pytest.fixture
def bin_dir(tmp_path):
    folder = tmp_path / "bin"
    folder.mkdir()
    # present, never run in a dry run; gcc and pg_config stand for the
    # compiler and headers Odoo's requirements build with
    _script(folder / "git", "exit 0\n")
    include = tmp_path / "include"
    include.mkdir()
    (include / "libpq-fe.h").write_text("")
    _script(folder / "pg_config", f"echo {include}\n")
    _script(folder / "gcc", "cat >/dev/null; exit 0\n")
    return folder


def source(tmp_path, bin_dir, then="true", **env):
    """Source odoo_env.sh in bash, then run ``then``; (exit code, output)."""
    environ = {k: v for k, v in os.environ.items() if k not in _CLEARED}
    environ.update(
        PATH=f"{bin_dir}:{environ['PATH']}",
        PREPAID_BOOTSTRAP_DRY_RUN="1",
        PREPAID_VENV=str(tmp_path / "venv"),
    )
    environ.update({k: str(v) for k, v in env.items()})
    done = subprocess.run(
        ["bash", "-c", f'source "{ENV_SH}" && {then}'],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.returncode, done.stdout + done.stderr


SHOW = 'echo "PYTHON=$PYTHON"; echo "ODOO_ROOT=$ODOO_ROOT"'


# --- which interpreter runs Odoo --------------------------------------------


def test_working_python_is_used_without_venv(tmp_path, bin_dir):
    python = odoo_python(bin_dir / "python3")
    rc, out = source(tmp_path, bin_dir, SHOW)
    assert rc == 0, out
    assert out.splitlines() == [f"PYTHON={python.name}", "ODOO_ROOT=/fake/odoo-root"]
    assert not (tmp_path / "venv").exists()


def test_existing_venv_is_reused(tmp_path, bin_dir):
    (tmp_path / "venv" / "bin").mkdir(parents=True)
    venv_python = odoo_python(tmp_path / "venv" / "bin" / "python", "/venv/odoo")
    rc, out = source(tmp_path, bin_dir, SHOW, PYTHON=no_odoo_python(bin_dir / "py"))
    assert rc == 0, out
    assert "DRY-RUN" not in out and "setting it up" not in out
    assert f"PYTHON={venv_python}" in out
    assert "ODOO_ROOT=/venv/odoo" in out


def test_bootstrap_from_a_local_folder(tmp_path, bin_dir):
    base = no_odoo_python(bin_dir / "nood")
    tree = odoo_tree(tmp_path / "odoo18")
    venv = tmp_path / "venv"
    rc, out = source(
        tmp_path, bin_dir, SHOW + '; echo "BIN=$ODOO_BIN"', PYTHON=base, ODOO_SRC=tree
    )
    assert rc == 0, out
    assert f"DRY-RUN: {base} -m venv {venv}" in out
    install = next(line for line in out.splitlines() if "pip install" in line)
    assert f"PIP_CONSTRAINT={REPO}/scripts/odoo-build-constraints.txt" in install
    assert f"{venv}/bin/python -m pip install" in install
    assert f"-r {tree}/requirements.txt -r {REPO}/requirements.txt pytest" in install
    assert f"put {tree} on the path of {venv}/bin/python" in out
    assert "git clone" not in out  # a folder is used in place
    assert f"PYTHON={venv}/bin/python" in out
    assert f"ODOO_ROOT={tree}" in out
    assert f"BIN={venv}/bin/python {tree}/odoo-bin" in out


def test_bootstrap_clones_odoo_18_by_default(tmp_path, bin_dir):
    venv = tmp_path / "venv"
    rc, out = source(tmp_path, bin_dir, SHOW, PYTHON=no_odoo_python(bin_dir / "py"))
    assert rc == 0, out
    assert (
        f"DRY-RUN: git clone -q --depth 1 --branch 18.0 {DEFAULT_SRC} "
        f"{venv}/src/odoo.partial" in out
    )
    assert f"-r {venv}/src/odoo/requirements.txt" in out
    assert f"ODOO_ROOT={venv}/src/odoo" in out


def test_bootstrap_unpacks_an_archive(tmp_path, bin_dir):
    archive = tmp_path / "odoo-18.0.tar.gz"
    archive.write_bytes(b"")
    rc, out = source(
        tmp_path, bin_dir, PYTHON=no_odoo_python(bin_dir / "py"), ODOO_SRC=archive
    )
    assert rc == 0, out
    assert (
        f"scripts/odoo_source.py unpack {archive} {tmp_path}/venv/src/odoo.partial"
        in out
    )


def test_bootstrap_reuses_a_venv_without_odoo(tmp_path, bin_dir):
    """An interrupted bootstrap goes on in the virtualenv it had made."""
    (tmp_path / "venv" / "bin").mkdir(parents=True)
    no_odoo_python(tmp_path / "venv" / "bin" / "python")
    tree = odoo_tree(tmp_path / "odoo18")
    rc, out = source(
        tmp_path, bin_dir, PYTHON=no_odoo_python(bin_dir / "py"), ODOO_SRC=tree
    )
    assert rc == 0, out
    assert "-m venv" not in out
    assert "reusing the virtualenv" in out
    assert "pip install" in out


@pytest.mark.parametrize(
    "make_src, message",
    [
        (lambda tmp: tmp / "nowhere" / "odoo", "is neither an Odoo source folder"),
        (lambda tmp: tmp / "missing.zip", "missing.zip: no such file"),
        (lambda tmp: tmp / "empty", "is not an Odoo source tree (no odoo/release.py"),
        (lambda tmp: odoo_tree(tmp / "odoo17", major=17), "holds Odoo 17.0, not 18.0"),
    ],
    ids=["nonsense", "missing-archive", "empty-folder", "odoo-17"],
)
def test_unusable_odoo_src_fails_clearly(tmp_path, bin_dir, make_src, message):
    (tmp_path / "empty").mkdir()
    src = make_src(tmp_path)
    rc, out = source(
        tmp_path, bin_dir, PYTHON=no_odoo_python(bin_dir / "py"), ODOO_SRC=src
    )
    assert rc == 2, out
    assert message in out
    assert "could not set up Odoo 18.0" in out
    assert "-m venv" not in out and "pip install" not in out


def test_bootstrap_can_be_refused(tmp_path, bin_dir):
    rc, out = source(
        tmp_path, bin_dir, PYTHON=no_odoo_python(bin_dir / "py"), ODOO_BOOTSTRAP="no"
    )
    assert rc == 2
    assert "Odoo 18.0 is not importable" in out
    assert "DRY-RUN" not in out


def test_python_outside_odoo_range_is_refused(tmp_path, bin_dir):
    old = _script(
        bin_dir / "py",
        'case "$*" in *sys.version_info*) echo 3.9; exit 1;; esac; exit 1\n',
    )
    rc, out = source(tmp_path, bin_dir, PYTHON=old)
    assert rc == 2, out
    assert "is Python 3.9; Odoo 18.0 runs on 3.10 to 3.12" in out


def test_missing_build_headers_without_root_are_named(tmp_path, bin_dir):
    _script(bin_dir / "pg_config", "exit 1\n")
    _script(bin_dir / "id", 'case "$1" in -u) echo 1000;; *) echo dev;; esac\n')
    _script(bin_dir / "sudo", "exit 1\n")
    _script(bin_dir / "gcc", "cat >/dev/null; exit 1\n")  # no header found
    tree = odoo_tree(tmp_path / "odoo18")
    rc, out = source(
        tmp_path, bin_dir, PYTHON=no_odoo_python(bin_dir / "py"), ODOO_SRC=tree
    )
    assert rc == 2, out
    assert "MISSING: pg_config and libpq's headers for psycopg2" in out
    assert "MISSING: ldap.h for python-ldap (Debian package libldap2-dev)" in out
    assert "apt-get install libpq-dev libldap2-dev libsasl2-dev" in out


# --- the project's requirements ----------------------------------------------


def _site_with(tmp_path, dists):
    site = tmp_path / "site"
    site.mkdir()
    (site / "packaging").symlink_to(Path(packaging.__file__).parent)
    for name, version in dists.items():
        fake_dist(site, name, version)
    return site


def ensure_requirements(tmp_path, bin_dir, dists):
    """ensure_requirements with an interpreter that has only ``dists``."""
    site = _site_with(tmp_path, dists)
    python = odoo_python(bin_dir / "py", flags="-S")  # no site-packages
    return source(
        tmp_path, bin_dir, "ensure_requirements", PYTHON=python, PYTHONPATH=site
    )


ALL_MET = {
    "pymodbus": "3.16.1",
    "pyserial-asyncio": "0.6",
    "websocket-client": "1.9.0",
    "pytest": "8.3.0",
}


def test_requirements_met_install_nothing(tmp_path, bin_dir):
    rc, out = ensure_requirements(tmp_path, bin_dir, ALL_MET)
    assert (rc, out) == (0, "")


@pytest.mark.parametrize(
    "dists, reason",
    [
        (
            dict(ALL_MET, **{"websocket-client": None}),
            "websocket-client>=1.6 (missing)",
        ),
        (dict(ALL_MET, pymodbus="3.15.0"), "(installed: 3.15.0)"),
        (dict(ALL_MET, pymodbus="3.17.0"), "(installed: 3.17.0)"),
        (dict(ALL_MET, pytest=None), "pytest (missing)"),
    ],
    ids=["no-websocket-client", "old-pymodbus", "new-pymodbus", "no-pytest"],
)
def test_any_unmet_requirement_installs_all(tmp_path, bin_dir, dists, reason):
    dists = {name: version for name, version in dists.items() if version}
    rc, out = ensure_requirements(tmp_path, bin_dir, dists)
    assert rc == 0, out
    assert reason in out
    assert f"-m pip install -q -r {REPO}/requirements.txt pytest" in out


# --- PostgreSQL ----------------------------------------------------------------


def postgres(tmp_path, bin_dir, isready=0, psql="", clusters="", uid=0, **env):
    """ensure_postgres with stub PostgreSQL programs."""
    _script(bin_dir / "pg_isready", f"exit {isready}\n")
    fail = f"echo {shlex.quote(psql)} >&2; exit 2" if psql else "exit 0"
    _script(bin_dir / "psql", f"{fail}\n")
    _script(bin_dir / "pg_lsclusters", f"printf '{clusters}'\n")
    _script(bin_dir / "id", f'case "$1" in -u) echo {uid};; *) echo alice;; esac\n')
    _script(bin_dir / "sudo", "exit 1\n")
    _script(bin_dir / "apt-get", "exit 0\n")
    python = odoo_python(bin_dir / "py")
    return source(tmp_path, bin_dir, "ensure_postgres", PYTHON=python, **env)


def test_answering_postgres_needs_nothing(tmp_path, bin_dir):
    assert postgres(tmp_path, bin_dir) == (0, "")


def test_no_postgres_is_installed_and_started_as_root(tmp_path, bin_dir):
    rc, out = postgres(tmp_path, bin_dir, isready=2, psql="could not connect")
    assert rc == 0, out
    assert "DRY-RUN: apt-get install -y postgresql" in out
    assert "pg_ctlcluster <new cluster> start" in out


def test_stopped_cluster_is_started(tmp_path, bin_dir):
    clusters = "15 main 5432 down postgres /var/lib/postgresql/15/main log\\n"
    rc, out = postgres(tmp_path, bin_dir, isready=2, psql="x", clusters=clusters)
    assert rc == 0, out
    assert "apt-get install" not in out
    assert "DRY-RUN: pg_ctlcluster 15 main start" in out


def test_missing_role_is_created(tmp_path, bin_dir):
    rc, out = postgres(tmp_path, bin_dir, psql='FATAL:  role "alice" does not exist')
    assert rc == 0, out
    assert "createuser --superuser alice" in out


def test_no_postgres_without_root_says_what_is_missing(tmp_path, bin_dir):
    rc, out = postgres(tmp_path, bin_dir, isready=2, psql="x", uid=1000)
    assert rc == 1, out
    assert "MISSING: no PostgreSQL server answers (pg_isready)" in out
    assert "DRY-RUN" not in out


def test_remote_postgres_is_not_installed(tmp_path, bin_dir):
    rc, out = postgres(tmp_path, bin_dir, isready=2, PGHOST="db.example.lan")
    assert rc == 1, out
    assert "no PostgreSQL server answers at db.example.lan:5432" in out
    assert "DRY-RUN" not in out


# --- scripts/odoo_source.py ----------------------------------------------------


def run_source_tool(*args):
    return subprocess.run(
        [sys.executable, str(REPO / "scripts" / "odoo_source.py"), *args],
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.parametrize("kind", ["tar.gz", "zip"])
def test_unpack_finds_the_tree_one_folder_down(tmp_path, kind):
    tree = odoo_tree(tmp_path / "odoo-18.0")
    archive = tmp_path / f"odoo.{kind}"
    if kind == "zip":
        with zipfile.ZipFile(archive, "w") as package:
            for path in tree.rglob("*"):
                package.write(path, path.relative_to(tmp_path))
    else:
        with tarfile.open(archive, "w:gz") as package:
            package.add(tree, arcname="odoo-18.0")
    dest = tmp_path / "out" / "odoo"
    done = run_source_tool("unpack", str(archive), str(dest))
    assert done.returncode == 0, done.stderr
    assert (dest / "odoo" / "release.py").is_file()
    assert os.access(dest / "odoo-bin", os.X_OK)
    assert run_source_tool("check", str(dest)).stdout.strip() == "18.0"


def test_unpack_refuses_an_archive_without_odoo(tmp_path):
    archive = tmp_path / "other.zip"
    with zipfile.ZipFile(archive, "w") as package:
        package.writestr("other/README", "not odoo")
    done = run_source_tool("unpack", str(archive), str(tmp_path / "odoo"))
    assert done.returncode == 1
    assert "holds no Odoo source tree" in done.stderr
    assert not (tmp_path / "odoo").exists()
