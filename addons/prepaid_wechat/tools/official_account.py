"""WeChat official account: stable access token (cached), template messages
and the OAuth code → openid exchange. One door to ``api.weixin.qq.com``."""

import time
from dataclasses import dataclass
from urllib.parse import urlencode

import requests

# Renew the token this long before WeChat says it expires.
EXPIRY_MARGIN_S = 300


class OfficialAccountError(Exception):
    """WeChat answered ``errcode`` ≠ 0, or could not be reached."""

    def __init__(self, message, errcode=None):
        super().__init__(message)
        self.errcode = errcode


@dataclass(slots=True)
class CachedToken:
    """An access token and the Unix time after which it must be renewed."""

    value: str
    renew_at: float

    def fresh(self, now):
        return bool(self.value) and now < self.renew_at


class OfficialAccountClient:
    """Token, template messages and OAuth for one official account.

    ``token_store`` is any object with ``get() -> CachedToken | None`` and
    ``put(CachedToken)`` so the caller decides where the token lives (memory
    for tests, a database row shared by workers in Odoo).
    """

    def __init__(self, base_url, appid, secret, token_store, timeout=10.0):
        self.base_url = base_url.rstrip("/")
        self.appid = appid
        self.secret = secret
        self.token_store = token_store
        self.timeout = timeout

    def _call(self, method, path, **kwargs):
        try:
            response = requests.request(
                method, self.base_url + path, timeout=self.timeout, **kwargs
            )
            data = response.json()
        except (requests.RequestException, ValueError) as err:
            raise OfficialAccountError(f"WeChat cannot be reached: {err}") from err
        if not isinstance(data, dict):
            raise OfficialAccountError("WeChat sent an unexpected answer")
        if data.get("errcode"):
            raise OfficialAccountError(
                f"{data.get('errcode')}: {data.get('errmsg', '')}",
                errcode=data.get("errcode"),
            )
        return data

    def access_token(self, now=None, force=False):
        """The cached token, fetched from the stable-token endpoint if stale."""
        now = time.time() if now is None else now
        cached = self.token_store.get()
        if cached and cached.fresh(now) and not force:
            return cached.value
        data = self._call(
            "POST",
            "/cgi-bin/stable_token",
            json={
                "grant_type": "client_credential",
                "appid": self.appid,
                "secret": self.secret,
                "force_refresh": bool(force),
            },
        )
        token = CachedToken(
            data["access_token"],
            now + int(data.get("expires_in", 7200)) - EXPIRY_MARGIN_S,
        )
        self.token_store.put(token)
        return token.value

    def send_template(self, openid, template_id, data, url=None):
        """Send a template message; returns WeChat's ``msgid``."""
        payload = {
            "touser": openid,
            "template_id": template_id,
            "data": {key: {"value": str(value)} for key, value in data.items()},
        }
        if url:
            payload["url"] = url
        query = urlencode({"access_token": self.access_token()})
        answer = self._call(
            "POST", f"/cgi-bin/message/template/send?{query}", json=payload
        )
        return answer.get("msgid")

    def openid_from_code(self, code):
        """Exchange an OAuth ``code`` (snsapi_base) for the user's openid."""
        query = urlencode(
            {
                "appid": self.appid,
                "secret": self.secret,
                "code": code,
                "grant_type": "authorization_code",
            }
        )
        return self._call("GET", f"/sns/oauth2/access_token?{query}")["openid"]

    @staticmethod
    def authorize_url(oauth_base_url, appid, redirect_uri, state):
        """The OAuth page a WeChat browser is sent to (scope snsapi_base)."""
        query = urlencode(
            {
                "appid": appid,
                "redirect_uri": redirect_uri,
                "response_type": "code",
                "scope": "snsapi_base",
                "state": state,
            }
        )
        base = oauth_base_url.rstrip("/")
        return f"{base}/connect/oauth2/authorize?{query}#wechat_redirect"
