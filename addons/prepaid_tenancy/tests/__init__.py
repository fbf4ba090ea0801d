from . import (
    test_tenancy,
    test_tenancy_batch,
    test_tenancy_debt_retention,
    test_tenancy_portal,
    test_tenancy_statement,
    test_tenancy_transfer_concurrency,
)
