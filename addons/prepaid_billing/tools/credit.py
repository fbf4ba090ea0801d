"""Days of credit left at the tenant's recent use (plain Python)."""

from decimal import ROUND_DOWN, Decimal

RECENT_DAYS = 7
# The wallet lines that are use: metered energy and water. Charge items
# (a monthly property fee, a common-area share) fall due once a period: one
# in the last week is no rate of use and would shorten the forecast.
USE_LINE_TYPES = ("consumption",)


def days_left(balance, charged_recently, days=RECENT_DAYS):
    """Whole days the ``balance`` lasts at the average daily charge of the
    last ``days`` days (``charged_recently`` is their total, positive;
    ``days`` may be a fraction: an account open for less than the window).

    None when nothing was charged lately (no basis for a forecast); 0 when
    the balance is already gone.
    """
    balance = Decimal(str(balance))
    charged = Decimal(str(charged_recently))
    days = Decimal(str(days))
    if charged <= 0:
        return None
    if balance <= 0:
        return 0
    per_day = charged / days
    return int((balance / per_day).quantize(Decimal(1), rounding=ROUND_DOWN))
