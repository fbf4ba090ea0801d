"""Tenant portal and WeChat Pay benchmark, on loopback, in one run.

Prints figures; it is not a timed test. Odoo's own portal home ``/my`` is the
yardstick. Measures:

(a) one tenant, requests one after the other: p50/p95 of ``/my``, the
    balance page ``/my/prepaid/<id>`` and the usage page (30-day and
    12-month charts) ``/my/prepaid/<id>/usage``;
(b) ``--tenants`` (20) tenants at once, one thread each: requests/s of each
    page, and its share of ``/my``'s;
(c) the usage page of a tenant with 1 year and one with 3 years of history
    (daily use of its meter, and ``--lines-per-day`` wallet lines a day):
    p95 ratio;
(d) a signed, encrypted WeChat Pay notification POSTed to Odoo until the
    wallet is credited and the restore command queued (both in the same
    transaction as the 204 answer): p50/p95 over ``--payments`` payments,
    after ``--warmup`` payments not counted (the pages are warmed up too).

The script creates the scratch database ``bench_portal`` with
``prepaid_wechat`` (or reuses ``--db``), builds a company of its own per run
(CNY), starts a local WeChat Pay peer in-process and one Odoo HTTP server
(``--workers 0``, threaded, as ``make run``) on ``--port``, and drops the
database at the end when it created it, unless ``--keep``.

    PYTHONPATH=. python3 bench/portal.py [--db NAME] [--keep] [--port 18145]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import requests

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = Path(__file__).resolve().parent
for _path in (REPO_ROOT, BENCH_DIR):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from poll import (  # noqa: E402
    addons_path,
    new_env,
    odoo_bin,
    odoo_db_args,
    open_registry,
    run_in_database,
)

from simulator.wechat_peer import WeChatPeer  # noqa: E402

MODULE = "prepaid_wechat"
PASSWORD = "bench-portal-1"


def p95(values):
    return statistics.quantiles(values, n=20)[-1] if len(values) > 1 else values[0]


def ms(value):
    return f"{value * 1000:7.1f} ms"


# ---------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------
def create_company(env, stamp):
    from odoo import Command

    cny = env.ref("base.CNY")
    cny.active = True
    company = env["res.company"].create(
        {"name": f"Bench Portal {stamp}", "currency_id": cny.id}
    )
    env.user.company_ids |= company
    env = env(context=dict(env.context, allowed_company_ids=[company.id]))
    Account = env["account.account"]

    def account(code, kind):
        return Account.create(
            {"name": f"bench {code}", "code": code, "account_type": kind}
        )

    liability = account(f"BP{stamp[-4:]}1", "liability_current")
    revenue = account(f"BP{stamp[-4:]}2", "income")
    bank_account = account(f"BP{stamp[-4:]}3", "asset_cash")
    bank = env["account.journal"].create(
        {
            "name": "WeChat settlements",
            "code": f"W{stamp[-4:]}",
            "type": "bank",
            "default_account_id": bank_account.id,
        }
    )
    misc = env["account.journal"].create(
        {"name": "Prepaid misc", "code": f"M{stamp[-4:]}", "type": "general"}
    )
    company.write(
        {
            "prepaid_liability_account_id": liability.id,
            "prepaid_revenue_account_id": revenue.id,
            "prepaid_journal_id": misc.id,
        }
    )
    tariff = env["prepaid.tariff"].create(
        {
            "name": "Bench flat",
            "utility": "electricity",
            "version_ids": [
                Command.create({"date_from": "2020-01-01", "kind": "flat", "price": 1})
            ],
        }
    )
    return env, company, bank, tariff


def create_accounts(env, tariff, names, opening):
    """One room, meter and open account per name; returns the accounts."""
    from odoo import Command

    ref = env.ref
    profiles = [
        ref("prepaid_metering.profile_acrel_ddsy1352").id,
        ref("prepaid_metering.profile_px_prepaid_v1").id,
    ]
    site = env["prepaid.site"].create({"name": names[0], "tz": "Asia/Shanghai"})
    building = env["prepaid.building"].create({"name": "B", "site_id": site.id})
    floor = env["prepaid.floor"].create(
        {"name": "F", "level": 1, "building_id": building.id}
    )
    gateway = env["prepaid.gateway"].create(
        {
            "name": f"gw {names[0]}",
            "site_id": site.id,
            "protocol": "modbus_tcp",
            "host": "127.0.0.1",
            "port": 1,
        }
    )
    accounts = env["prepaid.account"]
    for index, name in enumerate(names, start=1):
        partner = env["res.partner"].create({"name": name})
        room = env["prepaid.room"].create(
            {"name": name, "floor_id": floor.id, "tenant_id": partner.id}
        )
        meter = env["prepaid.meter"].create(
            {
                "name": f"M-{name}",
                "meter_type": "electric_1p",
                "gateway_id": gateway.id,
                "device_id": index,
                "room_id": room.id,
                "profile_ids": [Command.set(profiles)],
            }
        )
        accounts |= env["prepaid.account"].create(
            {
                "partner_id": partner.id,
                "tariff_id": tariff.id,
                "opening_balance": opening,
                "meter_link_ids": [Command.set(meter.ids)],
            }
        )
    return accounts


def portal_users(env, company, accounts, stamp):
    users = []
    for index, account in enumerate(accounts):
        users.append(
            env["res.users"]
            .with_context(no_reset_password=True)
            .create(
                {
                    "name": account.partner_id.name,
                    "login": f"bench-{stamp}-{index}",
                    "password": PASSWORD,
                    "partner_id": account.partner_id.id,
                    "company_id": company.id,
                    "company_ids": [(6, 0, company.ids)],
                    "groups_id": [(6, 0, env.ref("base.group_portal").ids)],
                }
            )
        )
    return users


def insert_history(cr, account, days, per_day):
    """``days`` days of consumption lines, ``per_day`` a day, and the daily
    use of the account's meters for those days (what the usage page reads),
    by SQL."""
    cr.execute(
        """
        INSERT INTO prepaid_daily_usage (meter_id, date, utility, room_id,
               floor_id, building_id, site_id, company_id, account_id, partner_id,
               energy_kwh, amount, charge_count)
        SELECT m.id, (now() at time zone 'UTC')::date - n, 'electricity',
               m.room_id, m.floor_id, m.building_id, m.site_id, a.company_id, a.id,
               a.partner_id, %s, 0.8 * %s, %s
          FROM prepaid_meter m JOIN prepaid_account a ON a.id = m.billing_account_id,
               generate_series(1, %s) n
         WHERE a.id = %s
            ON CONFLICT (meter_id, date) DO NOTHING
        """,
        [per_day, per_day, per_day, days, account.id],
    )
    cr.execute(
        """
        INSERT INTO prepaid_ledger_line (account_id, partner_id, company_id,
               currency_id, date, line_type, name, amount, balance_after,
               quantity, unit, create_uid, write_uid, create_date, write_date)
        SELECT a.id, a.partner_id, a.company_id, c.currency_id,
               now() at time zone 'UTC' - (n * interval '1 day' / %s),
               'consumption', 'bench', -0.8, a.balance, 1.0, 'kWh',
               1, 1, now() at time zone 'UTC', now() at time zone 'UTC'
          FROM prepaid_account a JOIN res_company c ON c.id = a.company_id,
               generate_series(1, %s) n
         WHERE a.id = %s
        """,
        [per_day, days * per_day, account.id],
    )


def build(registry, args, peer, base_url):
    from odoo import Command

    stamp = datetime.now().strftime("%m%d%H%M%S")
    with registry.cursor() as cr:
        env = new_env(cr)
        env["ir.config_parameter"].set_param("web.base.url", base_url)
        env, company, bank, tariff = create_company(env, stamp)
        tenants = create_accounts(
            env, tariff, [f"T{stamp}-{i}" for i in range(args.tenants)], 200.0
        )
        history = create_accounts(env, tariff, [f"H{stamp}-1y", f"H{stamp}-3y"], 200.0)
        payers = create_accounts(
            env,
            tariff,
            [f"P{stamp}-{i}" for i in range(args.warmup + args.payments)],
            0.0,
        )
        (tenants + history).with_context(prepaid_opening_journal_id=bank.id)._open()
        payers._open()  # empty wallets: the supply is cut at opening
        users = portal_users(env, company, tenants + history, stamp)
        insert_history(cr, history[0], 365, args.lines_per_day)
        insert_history(cr, history[1], 3 * 365, args.lines_per_day)
        for account in tenants:
            insert_history(cr, account, 30, args.lines_per_day)
        cr.execute("ANALYZE prepaid_ledger_line")
        cr.execute("ANALYZE prepaid_daily_usage")
        keys = peer.keys.wiring()
        provider = env["payment.provider"].create(
            {
                "name": f"WeChat Pay bench {stamp}",
                "code": "wechatpay",
                "state": "test",
                "is_published": True,
                "company_id": company.id,
                "redirect_form_view_id": env.ref("prepaid_wechat.redirect_form").id,
                "payment_method_ids": [
                    Command.set([env.ref("payment.payment_method_wechat_pay").id])
                ],
                "wechatpay_mchid": keys["mchid"],
                "wechatpay_appid": keys["appid"],
                "wechatpay_merchant_serial": keys["merchant_serial"],
                "wechatpay_private_key": keys["merchant_private_key"],
                "wechatpay_apiv3_key": keys["apiv3_key"],
                "wechatpay_platform_key_id": keys["platform_key_id"],
                "wechatpay_platform_public_key": keys["platform_public_key"],
                "wechatpay_api_url": peer.base_url,
            }
        )
        provider.journal_id = bank
        txs = env["payment.transaction"]
        for account in payers:
            txs |= env["payment.transaction"].create(
                {
                    "provider_id": provider.id,
                    "payment_method_id": env.ref(
                        "payment.payment_method_wechat_pay"
                    ).id,
                    "reference": f"BENCH-{stamp}-{account.id}",
                    "amount": 50.0,
                    "currency_id": company.currency_id.id,
                    "partner_id": account.partner_id.id,
                    "prepaid_account_id": account.id,
                    "operation": "online_redirect",
                }
            )
        for tx in txs:
            tx._wechatpay_create_order()
        return {
            "logins": [user.login for user in users],
            "tenants": tenants.ids,
            "history": history.ids,
            "txs": [
                (tx.id, tx.wechatpay_out_trade_no, tx.prepaid_account_id.id)
                for tx in txs
            ],
            "provider": provider.id,
        }


# ---------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------
def start_server(db, port):
    cmd = [
        *odoo_bin(),
        "-d",
        db,
        "--db-filter",
        f"^{db}$",
        "--http-port",
        str(port),
        "--workers",
        "0",
        "--max-cron-threads",
        "0",
        "--addons-path",
        addons_path(),
        "--log-level=warn",
        *odoo_db_args(),
    ]
    server = subprocess.Popen(cmd)
    base = f"http://127.0.0.1:{port}"
    for _i in range(120):
        try:
            requests.get(f"{base}/web/login", timeout=2)
            return server, base
        except requests.RequestException:
            time.sleep(0.5)
    server.terminate()
    raise RuntimeError("Odoo did not start")


def login(base, login_name):
    session = requests.Session()
    page = session.get(f"{base}/web/login", timeout=10).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    answer = session.post(
        f"{base}/web/login",
        data={"login": login_name, "password": PASSWORD, "csrf_token": token},
        timeout=10,
    )
    answer.raise_for_status()
    return session


def timed_get(session, url):
    started = time.perf_counter()
    response = session.get(url, timeout=30)
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise RuntimeError(f"{url}: HTTP {response.status_code}")
    return elapsed


def one_user(session, urls, count):
    for url in urls.values():  # warm-up
        timed_get(session, url)
    times = {name: [] for name in urls}
    for _i in range(count):  # interleaved: load changes hit every page alike
        for name, url in urls.items():
            times[name].append(timed_get(session, url))
    return times


def concurrent(sessions, url_of, count):
    """Every session fetches its page ``count`` times at once: requests/s."""
    barrier = threading.Barrier(len(sessions))
    errors = []

    def worker(session, url):
        barrier.wait()
        try:
            for _i in range(count):
                timed_get(session, url)
        except Exception as err:  # noqa: BLE001 - reported
            errors.append(err)

    threads = [
        threading.Thread(target=worker, args=(s, url_of(i)))
        for i, s in enumerate(sessions)
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return len(sessions) * count / elapsed


def notifications(registry, base, peer, data):
    """(d): notification → credited → restore queued, per payment."""
    times = []
    url = f"{base}/payment/wechatpay/notify/{data['provider']}"
    for tx_id, number, account_id in data["txs"]:
        order = peer.pay(number, notify=False)
        body = peer.notification(order)
        headers = {"Content-Type": "application/json", **peer.signed_headers(body)}
        started = time.perf_counter()
        response = requests.post(url, data=body, headers=headers, timeout=30)
        elapsed = time.perf_counter() - started
        if response.status_code != 204:
            raise RuntimeError(f"notification {tx_id}: {response.status_code}")
        times.append(elapsed)
        with registry.cursor() as cr:
            cr.execute(
                """SELECT (SELECT count(*) FROM prepaid_ledger_line
                            WHERE account_id = %s AND line_type = 'recharge'),
                          (SELECT count(*) FROM prepaid_meter_command c
                             JOIN prepaid_meter m ON m.id = c.meter_id
                            WHERE m.billing_account_id = %s
                              AND c.command_type = 'relay_on')""",
                [account_id, account_id],
            )
            credited, restores = cr.fetchone()
        if (credited, restores) != (1, 1):
            raise RuntimeError(f"account {account_id}: {credited=} {restores=}")
    return times


def run(args):
    registry = open_registry(args.db)
    peer = WeChatPeer(auto_notify=False).start()
    base_url = f"http://127.0.0.1:{args.port}"
    started = time.perf_counter()
    data = build(registry, args, peer, base_url)
    print(f"data built in {time.perf_counter() - started:.1f} s", flush=True)
    server, base = start_server(args.db, args.port)
    try:
        sessions = [login(base, name) for name in data["logins"]]
        first = data["tenants"][0]
        urls = {
            "/my": f"{base}/my",
            "balance": f"{base}/my/prepaid/{first}",
            "usage": f"{base}/my/prepaid/{first}/usage",
        }
        print(f"\n(a) one tenant, {args.requests} requests per page")
        single = one_user(sessions[0], urls, args.requests)
        for name, values in single.items():
            print(
                f"  {name:8} p50 {ms(statistics.median(values))}  p95 {ms(p95(values))}"
            )
        tenant_sessions = sessions[: args.tenants]
        print(f"\n(b) {len(tenant_sessions)} tenants at once, {args.rounds} each")
        tenants = data["tenants"]
        rates = {
            "/my": concurrent(tenant_sessions, lambda i: f"{base}/my", args.rounds),
            "balance": concurrent(
                tenant_sessions,
                lambda i: f"{base}/my/prepaid/{tenants[i]}",
                args.rounds,
            ),
            "usage": concurrent(
                tenant_sessions,
                lambda i: f"{base}/my/prepaid/{tenants[i]}/usage",
                args.rounds,
            ),
        }
        for name, rate in rates.items():
            print(
                f"  {name:8} {rate:6.1f} req/s  "
                f"({100 * rate / rates['/my']:5.1f} % of /my)"
            )
        print(f"\n(c) usage page, 1 vs 3 years ({args.lines_per_day} lines a day)")
        one_year, three_years = sessions[-2], sessions[-1]
        h1, h3 = data["history"]
        # interleaved, so that a change of the machine's load hits both alike
        urls_c = [
            (one_year, f"{base}/my/prepaid/{h1}/usage"),
            (three_years, f"{base}/my/prepaid/{h3}/usage"),
        ]
        for session, url in urls_c:
            timed_get(session, url)
        u1, u3 = {"1y": []}, {"3y": []}
        for _i in range(args.requests):
            u1["1y"].append(timed_get(*urls_c[0]))
            u3["3y"].append(timed_get(*urls_c[1]))
        for name, values in (*u1.items(), *u3.items()):
            print(
                f"  {name:8} p50 {ms(statistics.median(values))}  p95 {ms(p95(values))}"
            )
        print(f"  ratio 3y/1y p95 {p95(u3['3y']) / p95(u1['1y']):.2f}")
        print(
            f"\n(d) notification -> credited -> restore queued, {args.payments} x "
            f"(after {args.warmup} warm-up payments, like the pages' warm-up)"
        )
        times = notifications(registry, base, peer, data)
        cold, times = times[: args.warmup], times[args.warmup :]
        print(f"  p50 {ms(statistics.median(times))}  p95 {ms(p95(times))}")
        if cold:
            print(f"  warm-up (not counted): {', '.join(ms(t) for t in cold)}")
    finally:
        server.terminate()
        server.wait(30)
        peer.stop()


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", default="bench_portal")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--update", action="store_true")
    parser.add_argument("--port", type=int, default=18145)
    parser.add_argument("--tenants", type=int, default=20)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--payments", type=int, default=30)
    parser.add_argument(
        "--warmup", type=int, default=2, help="(d) payments first, not counted"
    )
    parser.add_argument("--lines-per-day", type=int, default=24)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    return run_in_database(parse_args(argv), run, module=MODULE)


if __name__ == "__main__":
    sys.exit(main())
