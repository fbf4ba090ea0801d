"""Local WeChat Pay APIv3 + official-account peer (standalone, no Odoo import).

from simulator.wechat_peer import WeChatPeer

with WeChatPeer() as peer:
    peer.base_url, peer.keys.wiring()
"""

from .crypto import Keys
from .server import Order, PeerError, WeChatPeer, pay_page_url

__all__ = ["Keys", "Order", "PeerError", "WeChatPeer", "pay_page_url"]
