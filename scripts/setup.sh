#!/usr/bin/env bash
# make setup: what make run and make test need, without running anything:
# Odoo 18 (set up in .venv when no interpreter imports it), the Python
# requirements, wkhtmltopdf and chromium, a PostgreSQL server with a role.
set -uo pipefail
source "$(dirname "$0")/odoo_env.sh" || exit 2
ensure_requirements || exit 2
ensure_system_tools optional
ensure_postgres || exit 2
echo "Ready: Odoo $("$PYTHON" -c 'import odoo.release as r; print(r.version)' 2>/dev/null) from $ODOO_ROOT, Python $PYTHON"
