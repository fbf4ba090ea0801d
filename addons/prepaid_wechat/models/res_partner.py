from odoo import fields, models


class ResPartner(models.Model):
    _inherit = "res.partner"

    wechat_openid = fields.Char(
        string="WeChat OpenID",
        copy=False,
        index="btree_not_null",
        groups="base.group_user",
        help="The tenant's openid in the official account: learnt by OAuth when "
        "the tenant opens the portal inside WeChat; used for JSAPI payments and "
        "template messages.",
    )
