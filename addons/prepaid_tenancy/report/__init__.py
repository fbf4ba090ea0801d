from . import prepaid_wallet_reconciliation
