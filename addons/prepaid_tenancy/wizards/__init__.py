from . import (
    prepaid_tenancy_move_in_wizard,
    prepaid_tenancy_move_out_wizard,
    prepaid_tenancy_reading_line,
)
