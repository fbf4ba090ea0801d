/** @odoo-module **/

import { Component, onWillStart, onWillUnmount, useEffect, useRef, useState } from "@odoo/owl";
import { loadBundle } from "@web/core/assets";
import { cookie } from "@web/core/browser/cookie";
import { getColor } from "@web/core/colors/colors";
import { deserializeDate, deserializeDateTime } from "@web/core/l10n/dates";
import { _t } from "@web/core/l10n/translation";
import { registry } from "@web/core/registry";
import { useService } from "@web/core/utils/hooks";
import { useSetupAction } from "@web/search/action_hook";
import { formatDateTime, formatFloat, formatMonetary } from "@web/views/fields/formatters";
import { standardActionServiceProps } from "@web/webclient/actions/action_service";

// Colours of the balance states, from calm to alarming (Bootstrap palette).
const BALANCE_COLORS = {
    normal: "#28a745",
    alarm1: "#ffc107",
    alarm2: "#fd7e14",
    alarm3: "#e8590c",
    overdrawn: "#dc3545",
    cut_off: "#6c757d",
};

/**
 * A Chart.js chart (Odoo's bundled library) of one series: bars or a doughnut.
 * Drawn again whenever its labels or values change; ``onSelect`` receives the
 * index of the bar or slice clicked.
 */
export class DashboardChart extends Component {
    static template = "prepaid_billing.DashboardChart";
    static props = {
        type: String,
        labels: Array,
        values: Array,
        label: String,
        colors: { type: Array, optional: true },
        onSelect: { type: Function, optional: true },
    };

    setup() {
        this.canvasRef = useRef("canvas");
        this.chart = null;
        onWillStart(() => loadBundle("web.chartjs_lib"));
        useEffect(
            () => {
                this.renderChart();
                return () => this.destroyChart();
            },
            () => [this.props.type, this.props.labels, this.props.values]
        );
        onWillUnmount(() => this.destroyChart());
    }

    destroyChart() {
        if (this.chart) {
            this.chart.destroy();
            this.chart = null;
        }
    }

    renderChart() {
        this.destroyChart();
        const scheme = cookie.get("color_scheme");
        const count = this.props.values.length;
        const colors =
            this.props.colors || this.props.values.map((_v, i) => getColor(i, scheme, count));
        const doughnut = this.props.type === "doughnut";
        this.chart = new Chart(this.canvasRef.el, {
            type: this.props.type,
            data: {
                labels: this.props.labels,
                datasets: [
                    {
                        label: this.props.label,
                        data: this.props.values,
                        backgroundColor: colors,
                        borderWidth: doughnut ? 1 : 0,
                    },
                ],
            },
            options: {
                maintainAspectRatio: false,
                responsive: true,
                animation: false,
                plugins: { legend: { display: doughnut, position: "bottom" } },
                scales: doughnut ? {} : { y: { beginAtZero: true } },
                onClick: (_event, elements) => {
                    if (elements.length && this.props.onSelect) {
                        this.props.onSelect(elements[0].index);
                    }
                },
            },
        });
    }
}

/**
 * The energy dashboard of a site: this month against last month, consumption
 * by building and floor, top consumers, balance states, meters that need a
 * visit, cut-off rooms and revenue. Every card opens the records behind it.
 */
export class EnergyDashboard extends Component {
    static template = "prepaid_billing.EnergyDashboard";
    static components = { DashboardChart };
    static props = { ...standardActionServiceProps };

    setup() {
        this.orm = useService("orm");
        this.action = useService("action");
        // back from a list opened here (breadcrumb): the same site and chart
        const restored = this.props.state || {};
        this.state = useState({
            data: null,
            siteId: restored.siteId || false,
            location: restored.location || "building",
        });
        useSetupAction({
            getLocalState: () => ({ siteId: this.state.siteId, location: this.state.location }),
        });
        onWillStart(async () => {
            await Promise.all([loadBundle("web.chartjs_lib"), this.load()]);
        });
    }

    async load() {
        this.state.data = await this.orm.call("prepaid.dashboard", "get_dashboard_data", [], {
            site_id: this.state.siteId || null,
        });
    }

    async onSiteChange(ev) {
        this.state.siteId = parseInt(ev.target.value) || false;
        await this.load();
    }

    setLocation(location) {
        this.state.location = location;
    }

    // ------------------------------------------------------------------
    // Formatting
    // ------------------------------------------------------------------

    kwh(value) {
        return formatFloat(value, { digits: [16, 1] });
    }

    m3(value) {
        return formatFloat(value, { digits: [16, 2] });
    }

    money(value) {
        return formatMonetary(value, { currencyId: this.state.data.currency_id });
    }

    when(value) {
        return value ? formatDateTime(deserializeDateTime(value)) : "";
    }

    change(value) {
        if (value === null || value === undefined) {
            return _t("no figure for the same days last month");
        }
        const sign = value > 0 ? "+" : "";
        return _t("%(change)s vs the same days last month", { change: `${sign}${value}%` });
    }

    /** The days of last month this month so far is compared with, e.g.
     * "Nov 1 – Nov 6" (in the user's language). */
    get lastPeriodLabel() {
        const months = this.state.data.months;
        const format = { month: "short", day: "numeric" };
        const first = deserializeDate(months.last).toLocaleString(format);
        const last = deserializeDate(months.last_to).minus({ days: 1 }).toLocaleString(format);
        return first === last ? first : `${first} – ${last}`;
    }

    get monthLabel() {
        // "December 2026", "2026年12月": the locale orders year and month
        return deserializeDate(this.state.data.months.this).toLocaleString({
            year: "numeric",
            month: "long",
        });
    }

    // ------------------------------------------------------------------
    // Charts
    // ------------------------------------------------------------------

    get locationRows() {
        const location = this.state.data.location;
        return this.state.location === "floor" ? location.floors : location.buildings;
    }

    get locationChart() {
        const rows = this.locationRows;
        return {
            labels: rows.map((row) => row.name),
            values: rows.map((row) => row.kwh),
        };
    }

    get balanceChart() {
        const states = this.state.data.balance_states.filter((state) => state.count);
        return {
            states,
            labels: states.map((state) => state.label),
            values: states.map((state) => state.count),
            colors: states.map((state) => BALANCE_COLORS[state.state]),
        };
    }

    get balanceTotal() {
        return this.state.data.balance_states.reduce((total, state) => total + state.count, 0);
    }

    // ------------------------------------------------------------------
    // Opening the records behind a figure
    // ------------------------------------------------------------------

    get siteId() {
        return this.state.data.site_id;
    }

    open(name, resModel, domain, views = [[false, "list"], [false, "form"]], context = {}) {
        return this.action.doAction({
            type: "ir.actions.act_window",
            name,
            res_model: resModel,
            domain,
            views,
            context,
        });
    }

    usageDomain(month = "this") {
        const months = this.state.data.months;
        const [start, end] = month === "this" ? [months.this, months.next] : [months.last, months.this];
        const domain = [
            ["date", ">=", start],
            ["date", "<", end],
        ];
        if (this.siteId) {
            domain.push(["site_id", "=", this.siteId]);
        }
        return domain;
    }

    openUsage(name, extra = [], groupBy = []) {
        return this.open(
            name,
            "prepaid.daily.usage",
            [...this.usageDomain(), ...extra],
            [
                [false, "list"],
                [false, "pivot"],
                [false, "graph"],
            ],
            { group_by: groupBy }
        );
    }

    openUsageMonths() {
        const months = this.state.data.months;
        const domain = [
            ["date", ">=", months.last],
            ["date", "<", months.next],
        ];
        if (this.siteId) {
            domain.push(["site_id", "=", this.siteId]);
        }
        return this.open(
            _t("Energy and Water, This Month and Last"),
            "prepaid.daily.usage",
            domain,
            [
                [false, "pivot"],
                [false, "graph"],
                [false, "list"],
            ]
        );
    }

    onLocationSelect(index) {
        const row = this.locationRows[index];
        const field = this.state.location === "floor" ? "floor_id" : "building_id";
        return this.openUsage(row.name, [[field, "=", row.id]], ["meter_id"]);
    }

    openRoom(room) {
        return this.openUsage(room.name, [["room_id", "=", room.id]], ["meter_id"]);
    }

    accountDomain(extra = []) {
        const domain = [["state", "=", "open"], ...extra];
        if (this.siteId) {
            domain.push(["meter_ids.site_id", "=", this.siteId]);
        }
        return domain;
    }

    onBalanceSelect(index) {
        const state = this.balanceChart.states[index];
        return this.open(
            state.label,
            "prepaid.account",
            this.accountDomain([["balance_state", "=", state.state]])
        );
    }

    openAccounts() {
        return this.open(_t("Open Accounts"), "prepaid.account", this.accountDomain());
    }

    openCutOff() {
        return this.open(
            _t("Cut-off Rooms"),
            "prepaid.account",
            this.accountDomain([["supply_state", "in", ["cut_off", "cut_failed"]]])
        );
    }

    openAccount(account) {
        return this.action.doAction({
            type: "ir.actions.act_window",
            res_model: "prepaid.account",
            res_id: account.id,
            views: [[false, "form"]],
        });
    }

    openMeters() {
        const domain = [
            "|",
            ["state", "in", ["offline", "fault"]],
            ["suspect_reading_id", "!=", false],
        ];
        if (this.siteId) {
            domain.push(["site_id", "=", this.siteId]);
        }
        return this.open(_t("Offline and Faulty Meters"), "prepaid.meter", domain);
    }

    openSignals() {
        const domain = [["state", "=", "open"]];
        if (this.siteId) {
            domain.push(["site_id", "=", this.siteId]);
        }
        return this.open(_t("Open Meter Events"), "prepaid.meter.event", domain);
    }

    openMeter(meter) {
        return this.action.doAction({
            type: "ir.actions.act_window",
            res_model: "prepaid.meter",
            res_id: meter.id,
            views: [[false, "form"]],
        });
    }

    openRevenue() {
        const utc = this.state.data.revenue.utc;
        const domain = [
            ["line_type", "in", ["consumption", "charge"]],
            ["date", ">=", utc.last],
            ["date", "<", utc.next],
        ];
        if (this.siteId) {
            domain.push(
                "|",
                ["meter_id.site_id", "=", this.siteId],
                "&",
                ["meter_id", "=", false],
                ["account_id.meter_ids.site_id", "=", this.siteId]
            );
        }
        return this.open(
            _t("Revenue This Month vs Last"),
            "prepaid.ledger.line",
            domain,
            [
                [false, "list"],
                [false, "form"],
            ],
            { group_by: ["date:month", "line_type"] }
        );
    }
}

registry.category("actions").add("prepaid_energy_dashboard", EnergyDashboard);
