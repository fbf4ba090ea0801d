#!/usr/bin/env bash
# make test: fresh database, every add-on installed with its tests, Odoo tests
# (post_install) and plain-Python tests (pytest). Fails on a missing Odoo, a
# module that does not install, a failing test or any WARNING/ERROR in the log.
set -uo pipefail
source "$(dirname "$0")/odoo_env.sh" || exit 2
cd "$REPO_ROOT"
ensure_requirements || exit 2
# The browser tours need chromium: a missing browser fails the run instead of
# skipping the tours.
ensure_system_tools required || { echo "FAIL: chromium is required by the browser tours"; exit 2; }
ensure_postgres || { echo "FAIL: the tests need a PostgreSQL server"; exit 2; }

DB=${TEST_DB:-prepaid_test_$$}
LOG=$(mktemp -t prepaid-test-XXXX.log)
TAGS=$(echo "$MODULES" | sed 's/\([^,]*\)/\/\1/g')
# ${DB}_servers: the copy tests/test_servers.py runs two Odoo servers on.
cleanup() {
    dropdb --if-exists "${DB}_servers" >/dev/null 2>&1 || true
    dropdb --if-exists "$DB" >/dev/null 2>&1 || true
}
trap cleanup EXIT
cleanup

echo "== Odoo: installing $MODULES into $DB and running their tests (log: $LOG)"
start=$(date +%s)
$ODOO_BIN "${ODOO_DB_ARGS[@]}" --addons-path="$ADDONS_PATH" -d "$DB" \
    -i "$MODULES" --test-enable --test-tags "$TAGS" --stop-after-init \
    --http-port "${TEST_HTTP_PORT:-18069}" --workers 0 --max-cron-threads 0 \
    --log-level info --log-handler 'odoo.tests.stats:INFO' >"$LOG" 2>&1
odoo_rc=$?
echo "   Odoo finished in $(( $(date +%s) - start )) s with exit code $odoo_rc"

status=0
installed=$(psql -At -d "$DB" -c "SELECT count(*) FROM ir_module_module WHERE state = 'installed' AND name = ANY(string_to_array('$MODULES', ','))" 2>/dev/null || echo 0)
expected=$(echo "$MODULES" | tr ',' '\n' | wc -l)
if [ "$installed" != "$expected" ]; then
    echo "FAIL: only $installed of $expected modules installed ($MODULES)"
    status=1
fi
bad=$(grep -E '^[0-9-]+ [0-9:,]+ [0-9]+ (WARNING|ERROR|CRITICAL) ' "$LOG" || true)
if [ -n "$bad" ]; then
    echo "FAIL: the Odoo log has warnings or errors:"
    echo "$bad" | head -40
    status=1
fi
[ "$odoo_rc" != 0 ] && { echo "FAIL: Odoo exited with $odoo_rc"; status=1; }
# odoo.tests.result: "F failed, E error(s) of N tests when loading database"
summary=$(grep -oE '[0-9]+ failed, [0-9]+ error\(s\) of [0-9]+ tests' "$LOG" | tail -1)
odoo_tests=$(echo "$summary" | awk '{print $(NF-1)}')
odoo_failed=$(echo "$summary" | awk '{print $1 + $3}')
odoo_tests=${odoo_tests:-0}; odoo_failed=${odoo_failed:-0}
echo "   Odoo tests ran: $odoo_tests ($odoo_failed failed)"
if [ "$odoo_tests" = 0 ]; then
    echo "FAIL: no Odoo test ran"
    status=1
fi

echo "== pytest: plain-Python tests"
# tests/test_servers.py copies the database the Odoo tests ran in (nothing
# holds it open any more) instead of installing the modules again.
PREPAID_TEST_TEMPLATE_DB="$DB" "$PYTHON" -m pytest -q tests 2>&1 | tee "$LOG.pytest"
py_rc=${PIPESTATUS[0]}
py_passed=$(grep -oE '[0-9]+ passed' "$LOG.pytest" | tail -1 | awk '{print $1}')
py_failed=$(grep -oE '[0-9]+ (failed|error)' "$LOG.pytest" | awk '{s += $1} END {print s + 0}')
[ "$py_rc" != 0 ] && status=1

passed=$(( odoo_tests - odoo_failed + ${py_passed:-0} ))
failed=$(( odoo_failed + py_failed ))
echo "== Odoo tests: $odoo_tests, pytest tests: $(( ${py_passed:-0} + py_failed ))"
[ "$status" != 0 ] && [ "$failed" = 0 ] && failed=1
echo "total: $passed passed, $failed failed"
exit $status
