# Sourced by the other scripts: finds Odoo 18 and sets ODOO_BIN and ADDONS_PATH.
# Point at another database with the usual PG* variables (PGHOST, PGPORT,
# PGUSER, PGPASSWORD) or with ODOO_RC=path/to/odoo.conf.
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${PYTHON:-python3}
if ! ODOO_ROOT=$("$PYTHON" -c 'import odoo, os, odoo.release as r; assert r.version_info[0] == 18, r.version; print(os.path.dirname(os.path.dirname(odoo.__file__)))' 2>/dev/null); then
    echo "ERROR: Odoo 18.0 is not importable by $PYTHON." >&2
    echo "Install Odoo 18.0 (see README.md, 'Prerequisites') or use the Docker setup in docker/." >&2
    return 2 2>/dev/null || exit 2
fi
ODOO_BIN=${ODOO_BIN:-}
if [ -z "$ODOO_BIN" ]; then
    if [ -x "$ODOO_ROOT/odoo-bin" ]; then ODOO_BIN="$PYTHON $ODOO_ROOT/odoo-bin"
    elif command -v odoo >/dev/null 2>&1; then ODOO_BIN=odoo
    else ODOO_BIN="$PYTHON -m odoo"; fi
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
ensure_requirements() {
    if ! "$PYTHON" -c 'import pymodbus, sys; v = tuple(int(x) for x in pymodbus.__version__.split(".")[:2]); sys.exit(v != (3, 16))' 2>/dev/null; then
        echo "Installing the project's Python requirements..."
        "$PYTHON" -m pip install -q -r "$REPO_ROOT/requirements.txt"
    fi
    "$PYTHON" -c 'import pytest' 2>/dev/null || "$PYTHON" -m pip install -q pytest
}
