"""One billing batch: the charge of each reading, grouped into wallet lines.

Every billed reading gets a *charge* (quantity, amount, how it was priced);
the charges of one meter, account, tariff version and local month that a
batch bills together are summed into one *group*, which becomes one
consumption line of the wallet. A meter polled every few minutes and billed as
often gets one wallet line per reading; a backlog (a meter that was offline, a
first billing run) gets one line per month instead of thousands, while every
reading keeps its own charge as evidence.

Plain Python (no Odoo import): the engine feeds readings in meter order and
writes :attr:`ChargeBatch.groups` as wallet lines and
:meth:`ChargeBatch.copy_text` into ``prepaid_reading_charge``.
"""

from decimal import Decimal

from .tariff import SINGLE_PRICE

ZERO = Decimal(0)
NULL = "\\N"
# Columns of prepaid_reading_charge written by ChargeBatch.copy_text.
COPY_COLUMNS = ("id", "ledger_line_id", "meter_id", "quantity", "amount", "detail")


def copy_escape(text):
    """``text`` as a field of PostgreSQL's COPY text format."""
    if text is None:
        return NULL
    return (
        text.replace("\\", "\\\\")
        .replace("\t", "\\t")
        .replace("\n", "\\n")
        .replace("\r", "\\r")
    )


class Group:
    """The charges of one future wallet line."""

    __slots__ = (
        "account_id",
        "meter_id",
        "version_key",
        "unit",
        "period",
        "count",
        "quantity",
        "amount",
        "first_reading_id",
        "last_reading_id",
        "last_read_at",
        "lines",
        "line_id",
    )

    def __init__(self, account_id, meter_id, version_key, unit, period):
        self.account_id = account_id
        self.meter_id = meter_id
        self.version_key = version_key
        self.unit = unit
        self.period = period
        self.count = 0
        self.quantity = ZERO
        self.amount = ZERO
        self.first_reading_id = None
        self.last_reading_id = None
        self.last_read_at = None
        # (label, unit price) -> [quantity, amount]: the priced lines summed
        self.lines = {}
        # id of the wallet line, once posted (None: nothing to post)
        self.line_id = None

    def summary(self):
        """The summed pricing lines: ``[[label, quantity, price, amount], ...]``."""
        return [
            [label, str(quantity), str(price), str(amount)]
            for (label, price), (quantity, amount) in self.lines.items()
        ]


class ChargeBatch:
    """Charges of a batch, grouped by meter, account, tariff version and month."""

    __slots__ = ("groups", "charges", "_current")

    def __init__(self):
        self.groups = []
        # (reading_id, group, quantity, amount, detail) in reading order;
        # detail is already escaped for COPY
        self.charges = []
        self._current = {}

    def _group(self, account_id, meter_id, version_key, unit, period, reading_id):
        group = self._current.get(meter_id)
        if (
            group is None
            or group.period != period
            or group.version_key != version_key
            or group.account_id != account_id
        ):
            group = Group(account_id, meter_id, version_key, unit, period)
            group.first_reading_id = reading_id
            self.groups.append(group)
            self._current[meter_id] = group
        return group

    def add(
        self,
        account_id,
        meter_id,
        version_key,
        unit,
        period,
        reading_id,
        read_at,
        quantity,
        amount,
        lines=(),
        detail=None,
    ):
        """Record the charge of one reading.

        :param period: the local month of the reading, as any value that
            changes with it (a wallet line never spans two months, so monthly
            totals and minimum charges stay exact)
        :param read_at: when the reading was taken (the wallet line's date)
        :param quantity: ``Decimal`` kWh or m³ of the reading
        :param amount: ``Decimal`` money taken from the wallet (>= 0)
        :param lines: the pricing lines ``(label, quantity, price, amount)``
        :param detail: evidence text when there are no pricing lines
        """
        group = self._group(account_id, meter_id, version_key, unit, period, reading_id)
        group.count += 1
        group.quantity += quantity
        group.amount += amount
        group.last_reading_id = reading_id
        group.last_read_at = read_at
        if lines:
            sums = group.lines
            texts = []
            for label, line_quantity, price, line_amount in lines:
                key = (label, price)
                total = sums.get(key)
                if total is None:
                    sums[key] = [line_quantity, line_amount]
                else:
                    total[0] += line_quantity
                    total[1] += line_amount
                texts.append(f"{label}: {line_quantity} x {price} = {line_amount}")
            # Labels and numbers hold no tab, newline or backslash: the COPY
            # escape of the separator is all that is needed.
            detail = "\\n".join(texts)
        else:
            detail = copy_escape(detail)
        self.charges.append((reading_id, group, quantity, amount, detail))

    def add_single(
        self,
        account_id,
        meter_id,
        version_key,
        unit,
        period,
        reading_id,
        read_at,
        quantity,
        amount,
        label,
        price,
        exact,
    ):
        """:meth:`add` for a charge priced at one unit price (the hot path).

        A charge at the version's single price stores no detail: its pricing
        is its quantity times the price of its wallet line's tariff version.
        """
        group = self._current.get(meter_id)
        if (
            group is None
            or group.period != period
            or group.version_key != version_key
            or group.account_id != account_id
        ):
            group = self._group(
                account_id, meter_id, version_key, unit, period, reading_id
            )
        group.count += 1
        group.quantity += quantity
        group.amount += amount
        group.last_reading_id = reading_id
        group.last_read_at = read_at
        key = (label, price)
        total = group.lines.get(key)
        if total is None:
            group.lines[key] = [quantity, exact]
        else:
            total[0] += quantity
            total[1] += exact
        self.charges.append(
            (
                reading_id,
                group,
                quantity,
                amount,
                NULL
                if label == SINGLE_PRICE
                else f"{label}: {quantity} x {price} = {exact}",
            )
        )

    def __len__(self):
        return len(self.charges)

    def copy_text(self):
        """The charges as PostgreSQL COPY text, columns ``id, ledger_line_id,
        meter_id, quantity, amount, detail`` (see ``COPY_COLUMNS``).

        Charges of a group that posted no wallet line (less than a cent in
        all, carried to the next reading) have no ledger line.
        """
        rows = []
        append = rows.append
        for reading_id, group, quantity, amount, detail in self.charges:
            line_id = group.line_id
            append(
                f"{reading_id}\t{NULL if line_id is None else line_id}\t"
                f"{group.meter_id}\t{quantity}\t{amount}\t{detail}\n"
            )
        return "".join(rows)
