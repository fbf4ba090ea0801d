#!/usr/bin/env bash
# make run: demo database (created once), demo meter fleet, Odoo on :8069.
set -uo pipefail
source "$(dirname "$0")/odoo_env.sh" || exit 2
cd "$REPO_ROOT"
ensure_requirements || exit 2
ensure_system_tools optional
ensure_postgres || exit 2

DB=${DEMO_DB:-prepaid_demo}
PORT=${HTTP_PORT:-8069}
# The simulator's meters (counters, balances, relays, purchase counts) are
# saved here while it runs and resumed at the next `make run` on the same
# database, so the counters never go back below what Odoo has stored.
SIM_STATE=${SIM_STATE:-$REPO_ROOT/var/demo/simulator-$DB.json}
if psql -At -d "$DB" -c "SELECT 1 FROM ir_module_module LIMIT 1" >/dev/null 2>&1; then
    echo "== Reusing database $DB (updating $MODULES to this checkout)"
    $ODOO_BIN "${ODOO_DB_ARGS[@]}" --addons-path="$ADDONS_PATH" -d "$DB" \
        -u "$MODULES" --stop-after-init --log-level warn || exit 1
else
    # a new database starts from the demo data's counters and balances: the
    # saved meter state of an earlier demo database must not carry over
    rm -f "$SIM_STATE"
    echo "== Creating database $DB with $MODULES and demo data (takes a minute)"
    # installed in English: what the demo data writes (chatter notes, names)
    # is written in the language of the install
    $ODOO_BIN "${ODOO_DB_ARGS[@]}" --addons-path="$ADDONS_PATH" -d "$DB" \
        -i "$MODULES" --stop-after-init --log-level warn || exit 1
    # Odoo installs partner_autocomplete by itself; it calls an online
    # service at the first login and logs errors on a machine without
    # internet. The demo does not need it.
    # Chinese is then added the way Settings > Languages adds it: English
    # stays the users' language, each user picks 中文 in Preferences.
    echo "env['ir.module.module'].search([('name', '=', 'partner_autocomplete'), ('state', '=', 'installed')]).button_immediate_uninstall(); env['base.language.install'].create({'lang_ids': [(6, 0, env['res.lang']._activate_lang('zh_CN').ids)]}).lang_install(); env.cr.commit()" \
        | $ODOO_BIN shell "${ODOO_DB_ARGS[@]}" --addons-path="$ADDONS_PATH" -d "$DB" \
            --no-http --log-level warn >/dev/null || exit 1
fi

echo "== Starting the demo meter fleet (simulator) and the local WeChat Pay peer"
"$PYTHON" -m simulator --demo --state "$SIM_STATE" &
SIM_PID=$!
# The demo WeChat Pay provider points at this peer (127.0.0.1:8150) with the
# keys of addons/prepaid_wechat/demo/wechat_peer_keys.json.
PEER_PORT=8150
"$PYTHON" -m simulator.wechat_peer --host 127.0.0.1 --port "$PEER_PORT" \
    --keys addons/prepaid_wechat/demo/wechat_peer_keys.json >/dev/null &
PEER_PID=$!
ODOO_PID=
stop() {
    [ -n "$ODOO_PID" ] && kill "$ODOO_PID" 2>/dev/null
    kill "$SIM_PID" "$PEER_PID" 2>/dev/null
    wait 2>/dev/null
}
trap stop EXIT INT TERM
sleep 2
kill -0 "$SIM_PID" 2>/dev/null || { echo "The simulator did not start (ports 15020/15021/15022 busy?)"; exit 1; }
kill -0 "$PEER_PID" 2>/dev/null || { echo "The WeChat Pay peer did not start (port $PEER_PORT busy?)"; exit 1; }

cat <<MSG

  Prepaid Metering demo
  URL:       http://localhost:$PORT   (database $DB)
  Logins:    admin / admin         (administrator, all rights)
             operator / operator   (metering operator)
             accountant / accountant (billing: accounts, recharges)
             tenant / tenant       (portal: balance, usage, WeChat Pay top-up)
  Simulator: Modbus TCP 127.0.0.1:15020, RTU over TCP 127.0.0.1:15021,
             DL/T 645-2007 127.0.0.1:15022
  WeChat Pay peer: http://127.0.0.1:$PEER_PORT (pay the QR order on its page)
  Ctrl-C stops Odoo and the simulator.

MSG
$ODOO_BIN "${ODOO_DB_ARGS[@]}" --addons-path="$ADDONS_PATH" -d "$DB" \
    --db-filter "^$DB\$" --http-port "$PORT" --max-cron-threads 2 &
ODOO_PID=$!
wait "$ODOO_PID"
