"""The addon loader: find addons, read their manifests, order them, register their hooks.

Shipped addons and resellers' packages are found the same way: through the
entry-point group ``smsgw.addons`` (``name = package``). Each package holds a
``__manifest__.py`` that is a dict literal, read with ``ast.literal_eval`` so
that no addon code runs to learn its name, version and dependencies.

Every hook call goes through the registry, which applies the two delivery rules
of :mod:`core.hookspecs`:

* **Order**: addons are called in dependency order (an addon after the addons it
  depends on, ties by name), whether through ``registry.hook.<name>(...)``,
  :meth:`AddonRegistry.call_each` or :meth:`AddonRegistry.folders`. pluggy calls
  the plugin registered last first, so the addons are registered in reverse.
* **Tenants**: a hook whose spec takes a ``tenant`` reaches only the addons that
  tenant enabled (unless the spec is marked :func:`core.hookspecs.every_addon`).
  The registry filters; addons do not check ``tenant.enabled_addons`` by hand.
"""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import importlib.util
import logging
from dataclasses import dataclass, field
from pathlib import Path

import pluggy

from . import datamap, hookspecs

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "smsgw.addons"
REQUIRED_KEYS = ("name", "version", "summary", "depends", "license", "author")

hookimpl = pluggy.HookimplMarker("smsgw")


class AddonError(RuntimeError):
    """An addon cannot be loaded; the message names it and says why."""


class CommandError(Exception):
    """An addon's ``smsgw`` command (``smsgw_cli``) refused its input: the message says what to do.
    (Here, not in :mod:`core.cli`, which also runs as ``__main__``: one class for both.)"""


@dataclass(frozen=True)
class Addon:
    name: str
    version: str
    summary: str
    depends: tuple[str, ...]
    license: str
    author: str
    package: str
    path: Path
    default_enabled: bool = True
    extra: dict = field(default_factory=dict, compare=False)


def read_manifest(package: str) -> Addon:
    """Read ``<package>/__manifest__.py`` without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise AddonError(f"addon package {package!r} cannot be found (is it installed?)")
    path = Path(list(spec.submodule_search_locations)[0])
    manifest_file = path / "__manifest__.py"
    try:
        data = ast.literal_eval(manifest_file.read_text())
    except FileNotFoundError:
        raise AddonError(f"addon package {package!r} has no __manifest__.py") from None
    except (SyntaxError, ValueError) as exc:
        raise AddonError(f"{manifest_file} must be a single dict literal: {exc}") from None
    if not isinstance(data, dict):
        raise AddonError(f"{manifest_file} must be a dict literal")
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise AddonError(f"manifest of {package!r} lacks {', '.join(missing)}")
    if not isinstance(data["depends"], (list, tuple)):
        raise AddonError(f"manifest of {package!r}: depends must be a list of addon names")
    return Addon(
        name=str(data["name"]), version=str(data["version"]), summary=str(data["summary"]),
        depends=tuple(data["depends"]), license=str(data["license"]), author=str(data["author"]),
        package=package, path=path, default_enabled=bool(data.get("default_enabled", True)),
        extra={k: v for k, v in data.items() if k not in REQUIRED_KEYS},
    )


def discover() -> list[Addon]:
    """All installed addons, from the ``smsgw.addons`` entry points."""
    found: dict[str, Addon] = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        addon = read_manifest(ep.value.split(":")[0])
        if addon.name != ep.name:
            raise AddonError(
                f"entry point {ep.name!r} points at {ep.value!r}, whose manifest is named {addon.name!r}"
            )
        if addon.name in found and found[addon.name].package != addon.package:
            raise AddonError(
                f"two packages claim addon {addon.name!r}: {found[addon.name].package} and {addon.package}"
            )
        found[addon.name] = addon
    return list(found.values())


def order(addons: list[Addon]) -> list[Addon]:
    """Dependencies first, ties broken by name. Missing dependencies and cycles are errors."""
    by_name = {a.name: a for a in addons}
    for a in sorted(addons, key=lambda a: a.name):
        for dep in a.depends:
            if dep not in by_name:
                raise AddonError(f"addon {a.name!r} depends on {dep!r}, which is not installed")
    result: list[Addon] = []
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]):
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            cycle = path[path.index(name):] + [name]
            raise AddonError("addon dependency cycle: " + " -> ".join(cycle))
        state[name] = "visiting"
        for dep in sorted(by_name[name].depends):
            visit(dep, path + [name])
        state[name] = "done"
        result.append(by_name[name])

    for name in sorted(by_name):
        visit(name, [])
    return result


class AddonRegistry:
    """The loaded addons, in dependency order, and the plugin manager that calls them."""

    def __init__(self, addons: list[Addon] | None = None):
        self.pm = pluggy.PluginManager("smsgw")
        self.pm.add_hookspecs(hookspecs)
        self.addons = order(discover() if addons is None else addons)
        self.by_name = {a.name: a for a in self.addons}
        # Addons may publish hookspecs of their own (e.g. devices → messaging); add them all first.
        for addon in self.addons:
            if importlib.util.find_spec(f"{addon.package}.hookspecs") is not None:
                self.pm.add_hookspecs(importlib.import_module(f"{addon.package}.hookspecs"))
        # pluggy calls the last registered plugin first: register in reverse so that every call
        # runs in dependency order, as call_each does.
        for addon in reversed(self.addons):
            module = importlib.import_module(addon.package)
            hooks_spec = importlib.util.find_spec(f"{addon.package}.hooks")
            if hooks_spec is not None:
                module = importlib.import_module(f"{addon.package}.hooks")
            self.pm.register(module, name=addon.name)
        self.unknown_hooks = self._unknown_hooks()
        self._relay = HookRelay(self)
        try:
            self._models = datamap.collect(self)
        except datamap.DeclarationError as exc:
            raise AddonError(str(exc)) from None
        from .permissions import collect

        # What the addons register (permissions, API scopes, security schemes), validated now.
        self.access = collect(self)

    def _unknown_hooks(self) -> list[tuple[str, str]]:
        """``(addon, hook)`` for implementations no spec describes: a typo, a hook that was renamed,
        or one offered by an addon that is not installed. pluggy would never call them; say so."""
        found = []
        for name in dir(self.pm.hook):
            caller = getattr(self.pm.hook, name)
            if name.startswith("smsgw_") and getattr(caller, "spec", True) is None:
                for impl in caller.get_hookimpls():
                    if not impl.optionalhook:
                        found.append((impl.plugin_name, name))
                        log.warning("addon %s implements %s, which no installed addon offers: it will never "
                                    "be called (a typo, a renamed hook, or a missing dependency)",
                                    impl.plugin_name, name)
        return found

    @property
    def hook(self) -> "HookRelay":
        """``registry.hook.smsgw_x(**kwargs)``: call a hook, in dependency order, on the addons it
        reaches (for a tenant-scoped hook: the addons ``kwargs["tenant"]`` enabled)."""
        return self._relay

    def names(self) -> list[str]:
        return [a.name for a in self.addons]

    def tenant_scoped(self, hook_name: str) -> bool:
        """Does this hook reach only the addons enabled for the ``tenant`` it is called with?"""
        spec = getattr(self.pm.hook, hook_name).spec
        return (spec is not None and "tenant" in spec.argnames
                and not getattr(spec.function, hookspecs.EVERY_ADDON, False))

    def models(self) -> list["datamap.DeclaredModel"]:
        """Every table the kernel and the addons declared (``smsgw_models``), with its privacy
        declaration: what the privacy addon's export, retention and erasure walk."""
        return list(self._models)

    def call_each(self, hook_name: str, **kwargs) -> list[tuple[str, object]]:
        """Call one hook addon by addon, in dependency order: ``[(addon_name, result)]``.

        ``None`` results are skipped. Implementations may take any subset of ``kwargs``. An addon
        with several implementations of the hook (``specname``: one per feature) gives one entry each.
        A tenant-scoped hook (see :meth:`tenant_scoped`) skips addons ``kwargs["tenant"]`` has not enabled.
        """
        impls: dict[str, list] = {}
        for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
            impls.setdefault(impl.plugin_name, []).append(impl)
        enabled = kwargs["tenant"].enabled_addons if self.tenant_scoped(hook_name) else None
        out = []
        for addon in self.addons:
            if enabled is not None and addon.name not in enabled:
                continue
            for impl in impls.get(addon.name, ()):
                result = impl.function(**{k: kwargs[k] for k in impl.argnames})
                if result is not None:
                    out.append((addon.name, result))
        return out

    def folders(self, hook_name: str, folder: str) -> list[tuple[str, Path]]:
        """An addon part that lives in a folder: ``[(addon, path)]`` in dependency order.

        An addon's hook implementation wins; without one, the conventional
        ``<package>/<folder>`` is used when it exists (``migrations``,
        ``templates``, ``static``, ``locale``), so addons need no boilerplate.
        """
        given = dict(self.call_each(hook_name))
        out = []
        for addon in self.addons:
            if addon.name in given:
                value = given[addon.name]
                for path in (value if isinstance(value, (list, tuple)) else [value]):
                    out.append((addon.name, Path(path)))
            elif (addon.path / folder).is_dir():
                out.append((addon.name, addon.path / folder))
        return out

    def call_one(self, addon: str, hook_name: str, **kwargs):
        """Call one addon's implementation of a hook (``None`` if it has none).

        The caller chose the addon: no tenant filter applies (the kernel uses it for an addon's
        own parts, e.g. its tasks)."""
        for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
            if impl.plugin_name == addon:
                return impl.function(**{k: kwargs[k] for k in impl.argnames})
        return None


class HookRelay:
    """What ``registry.hook`` gives: pluggy's hook callers with the registry's delivery rules.

    ``relay.smsgw_x`` is pluggy's own caller (dependency order, by registration) unless the hook
    is tenant-scoped; then it is a :class:`TenantHookCaller`. Looked up once per hook name.
    """

    def __init__(self, registry: AddonRegistry):
        self._registry = registry

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        caller = getattr(self._registry.pm.hook, name)  # AttributeError for a hook nobody declares
        if self._registry.tenant_scoped(name):
            caller = TenantHookCaller(self._registry, name)
        setattr(self, name, caller)
        return caller


class TenantHookCaller:
    """Calls a tenant-scoped hook on the addons the ``tenant`` keyword argument enabled.

    One pluggy subset caller per set of enabled addons, kept: a tenant's ``enabled_addons`` is a
    frozenset (its hash is cached), so the call costs a dict lookup more than pluggy's own.
    Plugins that are not addons (a test's recorder) are always called.
    """

    __slots__ = ("_registry", "name", "_callers")

    def __init__(self, registry: AddonRegistry, name: str):
        self._registry, self.name = registry, name
        self._callers: dict[frozenset, object] = {}

    def __call__(self, **kwargs):
        enabled = kwargs["tenant"].enabled_addons
        caller = self._callers.get(enabled)
        if caller is None:
            pm = self._registry.pm
            disabled = [pm.get_plugin(a.name) for a in self._registry.addons if a.name not in enabled]
            caller = pm.subset_hook_caller(self.name, [p for p in disabled if p is not None])
            if len(self._callers) >= 256:  # distinct sets of enabled addons are few; bound it anyway
                self._callers.clear()
            self._callers[frozenset(enabled)] = caller
        return caller(**kwargs)
