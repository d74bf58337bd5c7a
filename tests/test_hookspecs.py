"""The hook contract as the tests hold it: every spec documented, typed and called (datasette's guard),
one call order on every path, and tenant-carrying hooks delivered only to addons the tenant enabled."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import re
from pathlib import Path

import pytest

from core import hookspecs
from core.addons import AddonRegistry
from tests.support.addons import addon_folder, make_addon
from tests.support.devices import device_client, fetch, raw_device, submit
from tests.support.phones import api_client

ROOT = Path(__file__).resolve().parent.parent
SPEC_MODULES = ["core.hookspecs"] + sorted(f"addons.{p.parent.name}.hookspecs"
                                           for p in (ROOT / "addons").glob("*/hookspecs.py"))
RESULT_KINDS = ("first", "collected", "per addon", "none")


def all_specs() -> list[tuple[str, object]]:
    """``(module, spec function)`` for every hookspec in core/hookspecs.py and addons/*/hookspecs.py."""
    found = []
    for name in SPEC_MODULES:
        module = importlib.import_module(name)
        for attr in sorted(vars(module)):
            fn = getattr(module, attr)
            if callable(fn) and hasattr(fn, "smsgw_spec"):
                found.append((name, fn))
    return found


def line(doc: str, label: str) -> str | None:
    """The text of the docstring line that starts with ``label:`` (continuations joined)."""
    match = re.search(rf"^\s*{label}: (.+(?:\n\s{{5,}}\S.*)*)", doc, re.M)
    return " ".join(match.group(1).split()) if match else None


def invocations() -> str:
    """The kernel's and the addons' code, without the spec modules: where hooks are called."""
    texts = []
    for path in sorted([*ROOT.joinpath("core").rglob("*.py"), *ROOT.joinpath("addons").rglob("*.py")]):
        if path.name != "hookspecs.py":
            texts.append(path.read_text())
    return "\n".join(texts)


def test_the_guard_sees_every_spec_module():
    names = {fn.__name__ for _, fn in all_specs()}
    assert {"smsgw_routes", "smsgw_device_reports", "smsgw_message_events"} <= names
    assert len(SPEC_MODULES) >= 3  # core, devices, messaging (compat's revocation hook moved to core)


@pytest.mark.parametrize("module,spec", all_specs(), ids=lambda v: v if isinstance(v, str) else v.__name__)
def test_every_spec_is_documented_typed_and_called(module, spec):
    name = spec.__name__
    assert name.startswith("smsgw_"), name
    doc = inspect.getdoc(spec) or ""
    assert len(doc.splitlines()[0]) > 20 if doc else False, f"{module}.{name} has no docstring"

    # (a) result semantics and order, in the one form core/hookspecs.py describes
    result, order, reaches = line(doc, "Result"), line(doc, "Order"), line(doc, "Reaches")
    assert result and result.startswith(RESULT_KINDS), f"{name}: no 'Result: <{'|'.join(RESULT_KINDS)}>' line"
    firstresult = spec.smsgw_spec.get("firstresult", False)
    assert result.startswith("first") == firstresult, \
        f"{name}: 'Result: first' and firstresult=True go together (firstresult={firstresult})"
    assert order and order.startswith("dependencies first"), f"{name}: no 'Order: dependencies first' line"
    params = inspect.signature(spec).parameters
    if "tenant" in params:
        every = getattr(spec, hookspecs.EVERY_ADDON, False)
        expected = "every installed addon" if every else "addons enabled for ``tenant``"
        assert reaches and reaches.startswith(expected), f"{name}: takes a tenant, so 'Reaches: {expected}'"
    else:
        assert reaches is None, f"{name}: 'Reaches:' is for hooks that take a tenant"

    # (b) typed, pytest style: every parameter and the result annotated
    untyped = [p for p, v in params.items() if v.annotation is inspect.Parameter.empty]
    assert not untyped, f"{name}: parameters without a type: {untyped}"
    assert inspect.signature(spec).return_annotation is not inspect.Signature.empty, f"{name}: no return type"

    # (c) called somewhere: through registry.hook, or by name through call_each / call_one / folders
    code = invocations()
    assert re.search(rf"\.hook\.{name}\(|[\"']{name}[\"']", code), f"{name} is declared but never called"


# -- one call order ----------------------------------------------------------------------------

HOOKS = '''
    from core.addons import hookimpl


    @hookimpl
    def smsgw_configure(platform):
        platform.append("{name}")  # the test passes a list for the platform


    @hookimpl
    def smsgw_template_context(handler):
        return {{"who": "{name}"}}


    @hookimpl
    def smsgw_menu_items(tenant, user):
        return ["{name}"]


    @hookimpl
    def smsgw_worker_standin(tenant, since, until):
        return ["{name}"]


    @hookimpl
    def smsgw_principal_from_token(token, tenant):
        return "{name}"
'''


@pytest.fixture
def two_addons(tmp_path):
    """``top`` depends on ``base``; named so that name order and dependency order disagree."""
    with addon_folder(tmp_path):
        base = make_addon(tmp_path, "zbase", HOOKS.format(name="zbase"))
        top = make_addon(tmp_path, "atop", HOOKS.format(name="atop"), depends=("zbase",))
        yield AddonRegistry(addons=[top, base])


def test_hooks_run_dependencies_first_on_every_path(two_addons):
    registry = two_addons
    assert registry.names() == ["zbase", "atop"]
    calls = []
    registry.hook.smsgw_configure(platform=calls)
    assert calls == ["zbase", "atop"]
    assert [a for a, _ in registry.call_each("smsgw_template_context", handler=None)] == ["zbase", "atop"]
    tenant = dataclasses.replace(_tenant(), enabled_addons=frozenset({"zbase", "atop"}))
    # a first-result hook: the dependency answers first
    assert registry.hook.smsgw_principal_from_token(token="x", tenant=tenant) == "zbase"
    assert registry.hook.smsgw_worker_standin(tenant=tenant, since=None, until=None) == [["zbase"], ["atop"]]


def _tenant():
    from core.tenancy import TenantInfo

    return TenantInfo(id=1, slug="acme", name="Acme", status="active", plan="free", schema_name="t_acme",
                      role_name="r_acme", theme=None, default_region="US")


def test_a_tenant_scoped_hook_reaches_only_the_addons_the_tenant_enabled(two_addons):
    registry = two_addons
    assert registry.tenant_scoped("smsgw_menu_items") and not registry.tenant_scoped("smsgw_configure")
    only_base = dataclasses.replace(_tenant(), enabled_addons=frozenset({"zbase"}))
    neither = dataclasses.replace(_tenant(), enabled_addons=frozenset())
    assert registry.hook.smsgw_worker_standin(tenant=only_base, since=None, until=None) == [["zbase"]]
    assert registry.hook.smsgw_worker_standin(tenant=neither, since=None, until=None) == []
    assert registry.hook.smsgw_principal_from_token(token="x", tenant=neither) is None
    assert registry.call_each("smsgw_menu_items", tenant=only_base, user=None) == [("zbase", ["zbase"])]
    # hooks without a tenant, and the kernel asking one addon by name, are not filtered
    assert [a for a, _ in registry.call_each("smsgw_template_context", handler=None)] == ["zbase", "atop"]
    assert registry.call_one("atop", "smsgw_menu_items", tenant=neither, user=None) == ["atop"]


def test_phones_of_a_tenant_that_disabled_messaging_get_no_messaging_work(platform, live_server, make_tenant):
    """The devices addon asks for work through smsgw_device_claim; messaging, which answers it, never
    checked whether the tenant still had it enabled. The kernel's filter does."""
    t = make_tenant("nomsg")
    api = api_client(live_server, t.slug)
    device_id, token = raw_device(live_server, t.slug, api)
    dev = device_client(live_server, t.slug, token)
    sent = submit(api, ["+14155550199"], text="held while messaging is off")
    for addon in ("abuse", "mobile", "compat", "billing", "usage", "webhooks", "contacts", "messaging"):  # dependants first
        platform.tenants.set_addon(t.slug, addon, False)
    r = fetch(dev, wait=0)
    assert r.status_code == 200, r.text
    assert r.json()["messages"] == []
    for addon in ("messaging", "contacts", "webhooks", "usage", "billing", "compat", "mobile", "abuse"):
        platform.tenants.set_addon(t.slug, addon, True)
    r = fetch(dev, wait=0)
    assert r.status_code == 200, r.text
    assert [m["message_id"] for m in r.json()["messages"]] == [sent["id"]]
