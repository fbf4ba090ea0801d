from . import prepaid_recharge_wizard
from . import prepaid_account_open_wizard
from . import prepaid_account_close_wizard
from . import prepaid_supply_override_wizard
from . import prepaid_monthly_report_wizard
from . import prepaid_daily_rebuild_wizard
from . import base_partner_merge
from . import prepaid_debt_add_wizard
