# shellcheck shell=bash
# Sourced by the other scripts: finds Odoo 18 (setting it up when there is
# none) and sets PYTHON, ODOO_ROOT, ODOO_BIN, ADDONS_PATH, MODULES and
# ODOO_DB_ARGS; defines ensure_requirements, ensure_system_tools and
# ensure_postgres. Point at another database with the usual PG* variables
# (PGHOST, PGPORT, PGUSER, PGPASSWORD) or with ODOO_RC=path/to/odoo.conf.
#
# The interpreter that runs Odoo, first that imports Odoo 18:
#   1. $PYTHON, when given;
#   2. the repository's virtualenv $PREPAID_VENV (.venv), set up by step 4 of
#      an earlier run (or by hand);
#   3. python3, when PYTHON is not given;
#   4. none: bootstrap_odoo makes $PREPAID_VENV with $PYTHON (or python3),
#      puts Odoo 18.0 from ODOO_SRC in it (a git URL, default Odoo's GitHub
#      repository, shallow clone of ODOO_BRANCH=18.0; a local source folder,
#      used in place; or a .tar.gz/.zip archive, a path or a URL), then Odoo's
#      requirements.txt and the project's. ODOO_BOOTSTRAP=no stops with an
#      error instead.
# PREPAID_BOOTSTRAP_DRY_RUN=1 prints what would be installed, fetched or
# started instead of doing it (tests/test_scripts_setup.py).
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PREPAID_VENV=${PREPAID_VENV:-$REPO_ROOT/.venv}
ODOO_SRC=${ODOO_SRC:-https://github.com/odoo/odoo}
ODOO_BRANCH=${ODOO_BRANCH:-18.0}
DRY_RUN=${PREPAID_BOOTSTRAP_DRY_RUN:-}
PYTHON_GIVEN=${PYTHON:-}
PYTHON=${PYTHON:-python3}

# Runs a command that changes the machine; in a dry run only prints it.
act() {
    if [ -n "$DRY_RUN" ]; then echo "DRY-RUN: $*"; return 0; fi
    "$@"
}

# Whether this user may install and start system services: root, or sudo
# without a password (then AS_ROOT=(sudo -n)).
can_be_root() {
    AS_ROOT=()
    [ "$(id -u)" = 0 ] && return 0
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        AS_ROOT=(sudo -n)
        return 0
    fi
    return 1
}

# apt_install PACKAGE...: installs Debian packages when apt-get is there and
# allowed; returns 1 (saying nothing) when it is not, 1 with apt's last lines
# when it fails.
apt_install() {
    command -v apt-get >/dev/null 2>&1 && can_be_root || return 1
    echo "Installing missing Debian packages: $* (apt-get)..."
    if [ -n "$DRY_RUN" ]; then
        echo "DRY-RUN: ${AS_ROOT[*]:+${AS_ROOT[*]} }apt-get install -y $*"
        return 0
    fi
    local log
    log=$(mktemp -t prepaid-apt-XXXX.log)
    if { [ -n "${APT_UPDATED:-}" ] || "${AS_ROOT[@]}" apt-get update -qq; } >"$log" 2>&1 &&
        "${AS_ROOT[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >>"$log" 2>&1; then
        APT_UPDATED=1
        rm -f "$log"
        return 0
    fi
    echo "apt-get could not install $* (log: $log):"
    tail -5 "$log"
    return 1
}

# odoo_root_of PYTHON: the folder holding the odoo package, when PYTHON
# imports Odoo 18.
odoo_root_of() {
    "$1" -c 'import odoo, os, odoo.release as r; assert r.version_info[0] == 18, r.version; print(os.path.dirname(os.path.dirname(odoo.__file__)))' 2>/dev/null
}

# --- bootstrap: Odoo 18.0 in a virtualenv of the repository ---------------

# Sets BASE_PYTHON: $PYTHON, or without PYTHON given the first of python3,
# python3.12, python3.11, python3.10 that is 3.10-3.12 (Odoo 18's range).
pick_base_python() {
    local candidate version candidates=("$PYTHON")
    [ -z "$PYTHON_GIVEN" ] && candidates+=(python3.12 python3.11 python3.10)
    for candidate in "${candidates[@]}"; do
        if ! command -v "$candidate" >/dev/null 2>&1; then
            [ "$candidate" = "$PYTHON" ] && echo "   $PYTHON: no such interpreter"
            continue
        fi
        if version=$("$candidate" -c 'import sys; print("%d.%d" % sys.version_info[:2]); sys.exit(not (3, 10) <= sys.version_info[:2] <= (3, 12))' 2>/dev/null); then
            BASE_PYTHON=$candidate
            BASE_VERSION=$version
            return 0
        fi
        echo "   $candidate is Python ${version:-?}; Odoo 18.0 runs on 3.10 to 3.12"
    done
    echo "ERROR: no Python 3.10-3.12 to set up Odoo 18.0 with. Install one and give it as PYTHON=/path/to/python3.12 (or 3.11, 3.10)."
    return 1
}

# check_odoo_tree FOLDER LABEL: FOLDER is an Odoo 18 source tree.
check_odoo_tree() {
    local series
    if ! series=$("$BASE_PYTHON" "$REPO_ROOT/scripts/odoo_source.py" check "$1" 2>&1); then
        echo "ERROR: $2: $series"
        return 1
    fi
    if [ "${series%%.*}" != 18 ]; then
        echo "ERROR: $2 holds Odoo $series, not 18.0."
        return 1
    fi
}

# Sets ODOO_SRC_DIR: the Odoo source folder named by ODOO_SRC, or the one
# cloned or unpacked from it into $PREPAID_VENV/src/odoo (kept for later runs).
fetch_odoo_source() {
    local src=$ODOO_SRC dest=$PREPAID_VENV/src/odoo kind
    if [ -d "$src" ]; then
        ODOO_SRC_DIR=$(cd "$src" && pwd)
        check_odoo_tree "$ODOO_SRC_DIR" "ODOO_SRC=$src"
        return
    fi
    case $src in
        *.tar.gz | *.tgz | *.tar.bz2 | *.tar.xz | *.tar | *.zip) kind=archive ;;
        *://* | git@* | *.git) kind=git ;;
        *)
            echo "ERROR: ODOO_SRC=$src is neither an Odoo source folder, an archive (.tar.gz, .zip) nor a git URL."
            return 1
            ;;
    esac
    if [ "$kind" = archive ] && [[ $src != *://* ]]; then
        if [ ! -f "$src" ]; then
            echo "ERROR: ODOO_SRC=$src: no such file."
            return 1
        fi
        src=$(cd "$(dirname "$src")" && pwd)/$(basename "$src")
    fi
    ODOO_SRC_DIR=$dest
    if [ "$(cat "$dest/.prepaid-odoo-src" 2>/dev/null)" = "$src $ODOO_BRANCH" ] &&
        check_odoo_tree "$dest" "$dest" >/dev/null; then
        echo "   reusing the Odoo source in $dest (from $src)"
        return 0
    fi
    act rm -rf "$dest" "$dest.partial"
    act mkdir -p "$PREPAID_VENV/src"
    if [ "$kind" = git ]; then
        if ! command -v git >/dev/null 2>&1 && ! apt_install git; then
            echo "MISSING: git (Debian package 'git') to clone ODOO_SRC=$src; install it, or give ODOO_SRC as a local folder or a .tar.gz/.zip archive."
            return 1
        fi
        echo "== Cloning Odoo $ODOO_BRANCH from $src (shallow clone, a few hundred MB)"
        if ! act git clone -q --depth 1 --branch "$ODOO_BRANCH" "$src" "$dest.partial"; then
            echo "ERROR: could not clone branch $ODOO_BRANCH of ODOO_SRC=$src (git's message above)."
            return 1
        fi
    else
        echo "== Unpacking Odoo from $src"
        if ! act "$BASE_PYTHON" "$REPO_ROOT/scripts/odoo_source.py" unpack "$src" "$dest.partial"; then
            echo "ERROR: ODOO_SRC=$src could not be unpacked (above)."
            return 1
        fi
    fi
    [ -n "$DRY_RUN" ] && return 0
    check_odoo_tree "$dest.partial" "ODOO_SRC=$src" || return 1
    echo "$src $ODOO_BRANCH" >"$dest.partial/.prepaid-odoo-src"
    mv "$dest.partial" "$dest"
}

# has_header HEADER: the C compiler finds HEADER.
has_header() {
    if command -v gcc >/dev/null 2>&1; then
        echo "#include <$1>" | gcc -E -x c - >/dev/null 2>&1
    else
        [ -e "/usr/include/$1" ]
    fi
}

# The compiler and headers that Odoo's requirements build from source
# (psycopg2, python-ldap), and venv for BASE_PYTHON.
ensure_build_tools() {
    local missing=() packages=()
    if ! command -v gcc >/dev/null 2>&1; then
        missing+=("a C compiler (Debian package build-essential)")
        packages+=(build-essential)
    fi
    local pg_include
    if ! pg_include=$(pg_config --includedir 2>/dev/null) || [ ! -e "$pg_include/libpq-fe.h" ]; then
        missing+=("pg_config and libpq's headers for psycopg2 (Debian package libpq-dev)")
        packages+=(libpq-dev)
    fi
    if ! has_header ldap.h; then
        missing+=("ldap.h for python-ldap (Debian package libldap2-dev)")
        packages+=(libldap2-dev)
    fi
    if ! has_header sasl/sasl.h; then
        missing+=("sasl/sasl.h for python-ldap (Debian package libsasl2-dev)")
        packages+=(libsasl2-dev)
    fi
    if ! "$BASE_PYTHON" -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' 2>/dev/null; then
        missing+=("Python.h of $BASE_PYTHON (Debian package python$BASE_VERSION-dev)")
        packages+=("python$BASE_VERSION-dev")
    fi
    if ! "$BASE_PYTHON" -c 'import venv, ensurepip' 2>/dev/null; then
        missing+=("the venv module of $BASE_PYTHON (Debian package python$BASE_VERSION-venv)")
        packages+=("python$BASE_VERSION-venv")
    fi
    [ ${#packages[@]} = 0 ] && return 0
    apt_install "${packages[@]}" && return 0
    local item
    for item in "${missing[@]}"; do
        echo "MISSING: $item"
    done
    echo "Odoo's requirements cannot be built without them; install them (apt-get install ${packages[*]}) and run again."
    return 1
}

# Sets up Odoo 18.0 in $PREPAID_VENV and sets PYTHON and ODOO_ROOT to it.
bootstrap_odoo() {
    local vpython=$PREPAID_VENV/bin/python site
    echo "== Odoo 18.0 is not importable by $PYTHON: setting it up in $PREPAID_VENV from ODOO_SRC=$ODOO_SRC"
    pick_base_python || return 1
    fetch_odoo_source || return 1
    ensure_build_tools || return 1
    if [ -x "$vpython" ]; then
        echo "   reusing the virtualenv $PREPAID_VENV"
    elif ! act "$BASE_PYTHON" -m venv "$PREPAID_VENV"; then
        echo "ERROR: $BASE_PYTHON could not make the virtualenv $PREPAID_VENV."
        return 1
    fi
    echo "== Installing Odoo's and the project's Python requirements into $PREPAID_VENV"
    echo "   (several minutes the first time: a few packages are compiled)"
    if ! act env PIP_CONSTRAINT="$REPO_ROOT/scripts/odoo-build-constraints.txt${PIP_CONSTRAINT:+ $PIP_CONSTRAINT}" \
        "$vpython" -m pip install -q --progress-bar off \
        -r "$ODOO_SRC_DIR/requirements.txt" -r "$REPO_ROOT/requirements.txt" pytest; then
        echo "ERROR: pip could not install the requirements of Odoo ($ODOO_SRC_DIR/requirements.txt) and of the project into $PREPAID_VENV (pip's message above)."
        return 1
    fi
    # lxml 5.2 and newer left lxml.html.clean to the lxml_html_clean package,
    # which Odoo's requirements name for Python 3.12 only.
    if [ -z "$DRY_RUN" ] && ! "$vpython" -c 'import lxml.html.clean' >/dev/null 2>&1; then
        "$vpython" -m pip install -q lxml_html_clean || return 1
    fi
    # Odoo itself runs from its source folder, put on the virtualenv's path.
    if [ -n "$DRY_RUN" ]; then
        echo "DRY-RUN: put $ODOO_SRC_DIR on the path of $vpython (prepaid-odoo-src.pth)"
        PYTHON=$vpython
        ODOO_ROOT=$ODOO_SRC_DIR
        return 0
    fi
    site=$("$vpython" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') || return 1
    echo "$ODOO_SRC_DIR" >"$site/prepaid-odoo-src.pth" || return 1
    PYTHON=$vpython
    if ! ODOO_ROOT=$(odoo_root_of "$PYTHON"); then
        echo "ERROR: Odoo 18.0 still does not import in $PREPAID_VENV:"
        "$PYTHON" -c 'import odoo' 2>&1 | tail -3
        return 1
    fi
    echo "== Odoo 18.0 is set up in $PREPAID_VENV (source: $ODOO_ROOT); later runs use it"
}

if [ -n "$PYTHON_GIVEN" ] && ODOO_ROOT=$(odoo_root_of "$PYTHON"); then
    :
elif [ -x "$PREPAID_VENV/bin/python" ] && ODOO_ROOT=$(odoo_root_of "$PREPAID_VENV/bin/python"); then
    PYTHON=$PREPAID_VENV/bin/python
elif [ -z "$PYTHON_GIVEN" ] && ODOO_ROOT=$(odoo_root_of "$PYTHON"); then
    :
elif [ "${ODOO_BOOTSTRAP:-yes}" = no ]; then
    echo "ERROR: Odoo 18.0 is not importable by $PYTHON (and ODOO_BOOTSTRAP=no)." >&2
    echo "Install Odoo 18.0 (see README.md, 'Prerequisites') or use the Docker setup in docker/." >&2
    return 2 2>/dev/null || exit 2
elif ! bootstrap_odoo; then
    echo "ERROR: could not set up Odoo 18.0 (see above). Alternatives: README.md, 'Prerequisites', or the Docker setup in docker/." >&2
    return 2 2>/dev/null || exit 2
fi
ODOO_BIN=${ODOO_BIN:-}
if [ -z "$ODOO_BIN" ]; then
    if [ -x "$ODOO_ROOT/odoo-bin" ]; then
        ODOO_BIN="$PYTHON $ODOO_ROOT/odoo-bin"
    elif command -v odoo >/dev/null 2>&1; then
        # a packaged Odoo's launcher, run by PYTHON (which may be a virtualenv
        # seeing the system's Odoo) when it is a Python script
        if head -1 "$(command -v odoo)" 2>/dev/null | grep -q python; then
            ODOO_BIN="$PYTHON $(command -v odoo)"
        else
            ODOO_BIN=odoo
        fi
    else
        ODOO_BIN="$PYTHON -m odoo"
    fi
fi
ADDONS_PATH=$REPO_ROOT/addons
for candidate in "$ODOO_ROOT/odoo/addons" "$ODOO_ROOT/addons"; do
    [ -d "$candidate" ] && ADDONS_PATH="$candidate,$ADDONS_PATH"
done
MODULES=$(for manifest in "$REPO_ROOT"/addons/*/__manifest__.py; do basename "$(dirname "$manifest")"; done | paste -sd, -)
ODOO_DB_ARGS=()
[ -n "${ODOO_RC:-}" ] && ODOO_DB_ARGS+=(--config "$ODOO_RC")
[ -n "${PGHOST:-}" ] && ODOO_DB_ARGS+=(--db_host "$PGHOST")
[ -n "${PGPORT:-}" ] && ODOO_DB_ARGS+=(--db_port "$PGPORT")
[ -n "${PGUSER:-}" ] && ODOO_DB_ARGS+=(--db_user "$PGUSER")
[ -n "${PGPASSWORD:-}" ] && ODOO_DB_ARGS+=(--db_password "$PGPASSWORD")
export PYTHONPATH="$REPO_ROOT${PYTHONPATH:+:$PYTHONPATH}"

# Every requirement of requirements.txt (versions included) and pytest:
# when any is missing or at another version, pip installs them all.
ensure_requirements() {
    local check=("$PYTHON" "$REPO_ROOT/scripts/requirements_check.py" -r "$REPO_ROOT/requirements.txt" pytest)
    local unmet
    unmet=$("${check[@]}" 2>&1) && return 0
    echo "Installing the project's Python requirements with $PYTHON; not met: $(echo "$unmet" | paste -sd, - | sed 's/,/, /g')"
    if act "$PYTHON" -m pip install -q -r "$REPO_ROOT/requirements.txt" pytest; then
        [ -n "$DRY_RUN" ] && return 0
        unmet=$("${check[@]}" 2>&1) && return 0
        echo "ERROR: after pip install, still not met: $unmet"
        return 1
    fi
    echo "ERROR: pip could not install requirements.txt and pytest for $PYTHON (pip's message above)."
    echo "On an \"externally managed\" system Python (PEP 668), give the scripts a virtualenv that sees the system's packages:"
    echo "  $PYTHON -m venv --system-site-packages $PREPAID_VENV && $PREPAID_VENV/bin/python -m pip install -r requirements.txt pytest"
    echo "The scripts use $PREPAID_VENV by themselves when it imports Odoo 18."
    return 1
}

# Debian packages outside Python: wkhtmltopdf renders PDF reports, chromium
# runs the browser tours. Installed with apt-get when missing and allowed
# (root, or sudo without a password); otherwise said plainly.
#   ensure_system_tools required|optional
ensure_system_tools() {
    local need=$1 missing=() tool
    for tool in wkhtmltopdf chromium; do
        command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
    done
    [ ${#missing[@]} = 0 ] && return 0
    apt_install "${missing[@]}" && return 0
    for tool in "${missing[@]}"; do
        case $tool in
            wkhtmltopdf) echo "MISSING: wkhtmltopdf (Debian package 'wkhtmltopdf'): PDF reports (arrears notices, monthly reports) cannot be printed; install it with: apt-get install wkhtmltopdf" ;;
            chromium) echo "MISSING: chromium (Debian package 'chromium'): the browser tours cannot run; install it with: apt-get install chromium" ;;
        esac
    done
    if [ "$need" = required ] && [[ " ${missing[*]} " == *" chromium "* ]]; then
        return 1
    fi
    return 0
}

# A PostgreSQL server that answers (pg_isready, with the PG* variables) and a
# role for PGUSER (default: the OS user) that may log in. On this machine's own
# server (PGHOST unset, a socket folder or localhost) with apt-get and root or
# sudo: installs Debian's postgresql, starts its clusters and creates that role
# as a superuser. Otherwise says what is missing.
ensure_postgres() {
    local local_server=yes role=${PGUSER:-$(id -un)} error started=0
    case ${PGHOST:-} in
        '' | /* | localhost | 127.* | ::1) ;;
        *) local_server=no ;;
    esac
    if ! command -v pg_isready >/dev/null 2>&1 || ! command -v psql >/dev/null 2>&1; then
        local package=postgresql-client
        [ "$local_server" = yes ] && package=postgresql
        if ! apt_install "$package"; then
            echo "MISSING: PostgreSQL's client programs psql and pg_isready (Debian package postgresql-client; the server is package postgresql)."
            return 1
        fi
    fi
    if pg_isready -q 2>/dev/null; then
        :
    elif [ "$local_server" = no ]; then
        echo "FAIL: no PostgreSQL server answers at $PGHOST:${PGPORT:-5432} (pg_isready)."
        return 1
    else
        start_local_postgres || return 1
        started=1
    fi
    error=$(psql -d postgres -Atqc 'SELECT 1' 2>&1 >/dev/null) && return 0
    if [[ $error == *"role \"$role\" does not exist"* ]] && [ "$local_server" = yes ] && can_be_root; then
        echo "Creating the PostgreSQL superuser role $role..."
        if act "${AS_ROOT[@]}" runuser -u postgres -- env -u PGUSER -u PGPASSWORD createuser --superuser "$role"; then
            [ -n "$DRY_RUN" ] && return 0
            error=$(psql -d postgres -Atqc 'SELECT 1' 2>&1 >/dev/null) && return 0
        fi
    elif [ -n "$DRY_RUN" ] && [ "$started" = 1 ]; then
        return 0  # a dry run started nothing to ask
    fi
    echo "FAIL: PostgreSQL answers but role $role cannot log in: $error"
    [[ $error == *"does not exist"* ]] &&
        echo "Create the role: sudo -u postgres createuser --superuser $role (Odoo refuses to connect as postgres)."
    return 1
}

# The local server does not answer: start its clusters, installing Debian's
# postgresql first when there is none.
start_local_postgres() {
    if ! command -v pg_lsclusters >/dev/null 2>&1 || [ -z "$(pg_lsclusters -h 2>/dev/null)" ]; then
        if ! apt_install postgresql; then
            echo "MISSING: no PostgreSQL server answers (pg_isready) and none is installed here. Install and start one (Debian: apt-get install postgresql), or point PGHOST/PGPORT at one."
            return 1
        fi
    fi
    if ! can_be_root; then
        echo "MISSING: no PostgreSQL server answers (pg_isready). Start it as root: pg_ctlcluster <version> main start (or service postgresql start)."
        return 1
    fi
    local version cluster _ status started=0
    while read -r version cluster _ status _; do
        if [ -z "$version" ] || [ "$status" = online ]; then continue; fi
        echo "Starting PostgreSQL cluster $version/$cluster..."
        act "${AS_ROOT[@]}" pg_ctlcluster "$version" "$cluster" start 2>/dev/null ||
            act "${AS_ROOT[@]}" pg_ctlcluster --skip-systemctl-redirect "$version" "$cluster" start
        started=1
    done < <(pg_lsclusters -h 2>/dev/null)
    if [ -n "$DRY_RUN" ]; then
        [ "$started" = 1 ] || echo "DRY-RUN: ${AS_ROOT[*]:+${AS_ROOT[*]} }pg_ctlcluster <new cluster> start"
        return 0
    fi
    for _ in $(seq 30); do
        pg_isready -q 2>/dev/null && return 0
        sleep 1
    done
    echo "FAIL: PostgreSQL still does not answer after starting it (pg_lsclusters; logs in /var/log/postgresql)."
    return 1
}
