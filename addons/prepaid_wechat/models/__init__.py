from . import payment_provider
from . import payment_transaction
from . import prepaid_account
from . import prepaid_alarm_notice
from . import prepaid_ledger_line
from . import prepaid_notification_channel
from . import res_partner
