"""The Chinese translations keep their placeholders and speak the trade's words.

The glossary (docs/glossary.zh_CN.md) in short:

=====================================  ==============================
English                                zh_CN
=====================================  ==============================
Cut Power / Restore Power (relay)      拉闸 / 合闸 (断电 / 送电)
Close Valve / Open Valve (water)       关阀 / 开阀 (停水)
cut-off, for any utility               停供; restore: 恢复供应
Keep supply on until; Protected        保电至; 保电 (保电时段)
Poll Now (a gateway's bus)             立即采集
Read Now (a meter, a room)             立即抄表
units                                  kWh, m³ (never 千瓦时, 立方米)
=====================================  ==============================
"""

import re
from collections import Counter
from pathlib import Path

import polib
import pytest

ADDONS = Path(__file__).resolve().parent.parent / "addons"
MODULES = ("prepaid_metering", "prepaid_billing", "prepaid_wechat", "prepaid_tenancy")
UNITS = ("kWh", "m³")

#: %s, %d, %.2f, %(name)s, %(a_addr)04X; "%%" and a bare "%" are text
PLACEHOLDER = re.compile(
    r"%%|%(?:\((?P<name>\w+)\))?[-#0 +]*\d*(?:\.\d+)?(?P<conv>[sdifrxXeEgGc])"
)
#: {{ expression }} of a mail template subject, t-out="..." of its body
TEMPLATE_CODE = re.compile(r"\{\{.*?\}\}|\bt-[\w-]+=\"[^\"]*\"", re.S)


def _entries(module):
    po = polib.pofile(str(ADDONS / module / "i18n" / "zh_CN.po"))
    return [entry for entry in po if entry.msgstr]


ENTRIES = {module: _entries(module) for module in MODULES}


def _msgstr(module, msgid):
    (entry,) = (e for e in ENTRIES[module] if e.msgid == msgid)
    return entry.msgstr


def _all_entries():
    return [(module, entry) for module in MODULES for entry in ENTRIES[module]]


def _placeholders(text):
    """Positional ones in order (their order is their meaning), named ones as
    a set (a translation may repeat or reorder them)."""
    positional, named = [], set()
    for match in PLACEHOLDER.finditer(text):
        if match.group(0) == "%%":
            continue
        if match.group("name"):
            named.add((match.group("name"), match.group("conv")))
        else:
            positional.append(match.group("conv"))
    return positional, named


def _occurrences(entry):
    return [place for place, _line in entry.occurrences]


def test_every_translation_keeps_the_placeholders():
    wrong = [
        f"{module}: {entry.msgid[:60]!r} -> {entry.msgstr[:60]!r}"
        for module, entry in _all_entries()
        if _placeholders(entry.msgid) != _placeholders(entry.msgstr)
    ]
    assert not wrong, "placeholders differ:\n" + "\n".join(wrong)


def test_every_translation_keeps_the_template_code():
    wrong = [
        f"{module}: {entry.msgid[:60]!r}"
        for module, entry in _all_entries()
        if Counter(TEMPLATE_CODE.findall(entry.msgid))
        != Counter(TEMPLATE_CODE.findall(entry.msgstr))
    ]
    assert not wrong, "template code differs:\n" + "\n".join(wrong)


def test_the_placeholder_check_sees_a_lost_or_swapped_placeholder():
    assert _placeholders("Meter %s: %d") != _placeholders("表计 %d：%s")
    assert _placeholders("%(cur)s of %(unit)s") != _placeholders("%(cur)s")
    assert _placeholders("%(a)s, %(a)s 50%% in %") == _placeholders("%(a)s 50%%")


def test_poll_now_and_read_now_differ():
    assert _msgstr("prepaid_metering", "Poll Now") == "立即采集"
    assert _msgstr("prepaid_metering", "Read Now") == "立即抄表"
    assert _msgstr("prepaid_billing", "Read Now") == "立即抄表"


@pytest.mark.parametrize(
    "msgid", ["Keep supply on until", "Keep Supply On Until", "Keep On Until"], ids=str
)
def test_keep_supply_on_until_is_bao_dian_zhi(msgid):
    assert _msgstr("prepaid_billing", msgid) == "保电至"


@pytest.mark.parametrize(
    "msgid, words",
    [
        pytest.param(msgid, words, id=msgid)
        for msgid, words in [
            ("Cut Power", "拉闸"),
            ("Restore Power", "合闸"),
            ("Close Valve", "关阀"),
            ("Open Valve", "开阀"),
            ("Relay Off (cut supply)", "拉闸"),
            ("Relay On (restore supply)", "合闸"),
            ("Valve Close", "关阀"),
            ("Valve Open", "开阀"),
            # a room's and a selection's buttons move relays and valves alike
            ("Cut Supply", "拉闸 / 关阀"),
            ("Restore Supply", "合闸 / 开阀"),
        ]
    ],
)
def test_supply_buttons_say_what_they_move(msgid, words):
    assert words in _msgstr("prepaid_metering", msgid)


def test_one_word_for_a_cut_off_of_any_utility():
    """停供 is the cut-off of a supply whatever it is; 断电 only where it can
    only be electricity, so no screen shows 断供 beside 断电 or 停供."""
    wrong = [
        f"{module}: {entry.msgid[:60]!r} -> {entry.msgstr}"
        for module, entry in _all_entries()
        if "断供" in entry.msgstr
    ]
    assert not wrong, "say 停供, not 断供:\n" + "\n".join(wrong)


def test_the_dashboard_names_a_cut_off_one_way():
    dashboard = [
        entry
        for entry in ENTRIES["prepaid_billing"]
        if any("dashboard" in place for place in _occurrences(entry))
    ]
    assert dashboard
    assert not [e.msgstr for e in dashboard if "断电" in e.msgstr]


def _tenant_facing(module, entry):
    places = _occurrences(entry)
    return any(
        ":prepaid_wechat.portal_" in place
        or ":prepaid_wechat.wechatpay_checkout" in place
        or place.startswith("model:mail.template,")
        or place == "addons/prepaid_wechat/models/prepaid_account.py"
        for place in places
    )


def test_tenant_pages_and_messages_have_no_relay_or_valve_jargon():
    tenant = [(m, e) for m, e in _all_entries() if _tenant_facing(m, e)]
    assert len(tenant) > 20
    wrong = [
        f"{module}: {entry.msgid[:60]!r} -> {entry.msgstr}"
        for module, entry in tenant
        if re.search("继电器|阀门|寄存器|拉闸|合闸", entry.msgstr)
    ]
    assert not wrong, "\n".join(wrong)


def _unit_lost(entry):
    """A quantity in kWh or m³ keeps its unit (a percentage has none)."""
    if "%" in entry.msgid.replace("%s", "").replace("%(", ""):
        return False
    return any(unit in entry.msgid and unit not in entry.msgstr for unit in UNITS)


def test_one_unit_style_kwh_and_cubic_metres():
    wrong = [
        f"{module}: {entry.msgid[:60]!r} -> {entry.msgstr}"
        for module, entry in _all_entries()
        if re.search("千瓦时|立方米|[0-9 ]度", entry.msgstr) or _unit_lost(entry)
    ]
    assert not wrong, "write kWh and m³:\n" + "\n".join(wrong)
