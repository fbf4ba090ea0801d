from . import test_official_account
from . import test_portal
from . import test_tour
from . import test_wechatpay
from . import test_race
from . import test_meter_side_top_up
from . import test_portal_debt
from . import test_portal_login_lang
