from odoo.tests import HttpCase, new_test_user, tagged

from .common import BillingCase


class BoardCase(BillingCase):
    """Shop 1 on a prepaid wallet of 123.45, Shop 2 on a postpaid account."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.room.name = "Board Shop"
        cls.room2.name = "Board Postpaid Shop"
        cls.meter1 = cls.make_meter(cls.gateway, 1, room=cls.room)
        cls.meter2 = cls.make_meter(cls.gateway, 2, room=cls.room2)
        cls.make_account(cls.meter1, opening=123.45)
        cls.make_account(cls.meter2, mode="postpaid")


@tagged("post_install", "-at_install")
class TestRoomBalance(BoardCase):
    def test_a_room_shows_the_balance_of_its_prepaid_wallets_only(self):
        self.assertEqual((self.room.has_wallet, self.room.balance), (True, 123.45))
        self.assertEqual((self.room2.has_wallet, self.room2.balance), (False, 0.0))


@tagged("post_install", "-at_install")
class TestRoomBoardTour(HttpCase, BoardCase):
    def test_the_board_shows_each_room_s_balance(self):
        new_test_user(
            self.env,
            login="board_operator",
            groups="base.group_user,prepaid_metering.group_metering_user",
            company_id=self.company.id,
            company_ids=[self.company.id],
        )
        self.start_tour(
            "/odoo/action-prepaid_metering.prepaid_room_monitoring_action",
            "prepaid_room_board_balance",
            login="board_operator",
        )
