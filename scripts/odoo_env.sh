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
    local apt=
    if command -v apt-get >/dev/null 2>&1; then
        if [ "$(id -u)" = 0 ]; then apt="apt-get"
        elif sudo -n true 2>/dev/null; then apt="sudo apt-get"; fi
    fi
    if [ -n "$apt" ]; then
        echo "Installing missing Debian packages: ${missing[*]} (apt-get)..."
        if { $apt update -qq && DEBIAN_FRONTEND=noninteractive $apt install -y -qq "${missing[@]}"; } >/dev/null 2>&1; then
            return 0
        fi
        echo "apt-get could not install ${missing[*]}."
    fi
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
