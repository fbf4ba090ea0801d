from . import prepaid_wallet_reconciliation
from . import prepaid_arrears
from . import prepaid_monthly_report
from . import prepaid_monthly_report_qweb
