"""Discover and load plugins, one entry point at a time, so one broken plugin never breaks the rest.

pluggy's own ``load_setuptools_entrypoints`` stops at the first plugin that fails to import. Here each
entry point of the ``grail_rl`` group is loaded, registered and asked for its classes on its own; any
failure (import error, misspelled hook, wrong hook signature, an exception inside a hook, an invalid or
duplicate registration) is recorded as a :class:`PluginFailure` naming the plugin, its distribution and
version, and everything that plugin registered is withdrawn.

``GRAIL_RL_BLOCK_PLUGINS=name1,name2`` skips the named plugins (entry-point or distribution names).

Plugin code is foreign code: anything it raises is that plugin's fault, ``SystemExit`` included (a plugin
calling ``sys.exit`` at import must not end the command with status 0); only ``KeyboardInterrupt`` passes
through, because it is the user's. While plugins load, whatever they print goes to stderr, so a
command's ``--json`` output on stdout stays pure JSON.
"""

from __future__ import annotations

import contextlib
import difflib
import importlib
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import pluggy

from grail_rl.errors import describe_exception
from grail_rl.plugins import hookspecs
from grail_rl.plugins.kinds import KINDS, kind_of
from grail_rl.plugins.registry import PluginSource, Registry

BLOCK_ENV = "GRAIL_RL_BLOCK_PLUGINS"
BUILTIN_DISTRIBUTION = "grail-rl"

# hook name -> the registry kind it fills
HOOK_KINDS: dict[str, str] = {kind.hook: kind.key for kind in KINDS}


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that could not be loaded, and why."""

    plugin: str
    distribution: str | None
    version: str | None
    error: str

    def message(self) -> str:
        origin = f" ({self.distribution} {self.version})" if self.distribution else ""
        return f"plugin '{self.plugin}'{origin} failed to load: {self.error}"


@dataclass(frozen=True)
class LoadedPlugin:
    """A plugin that loaded, the hooks it implements and what it registered."""

    name: str
    distribution: str | None
    version: str | None
    hooks: list[str]
    registered: dict[str, list[str]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "hooks": self.hooks,
            "registered": self.registered,
        }


class _PluginRejected(Exception):
    """Internal: a plugin failed one of the checks; the message says which."""


class Plugins:
    """A plugin manager with one registry per kind."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self.registries: dict[str, Registry] = {kind.key: Registry(kind.key) for kind in KINDS}
        self.loaded: list[LoadedPlugin] = []
        self.failures: list[PluginFailure] = []
        self.blocked: list[str] = []

    # One attribute per kind (plugins.rewards, plugins.prompt_sections, plugins.discriminators), named in the
    # table of kinds.
    def __getattr__(self, name: str) -> Registry:
        registries = self.__dict__.get("registries", {})
        for kind in KINDS:
            if kind.attribute == name and kind.key in registries:
                return registries[kind.key]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def registry(self, kind: str) -> Registry:
        return self.registries[kind_of(kind).key]

    def add(self, plugin: Any, source: PluginSource) -> bool:
        """Register ``plugin`` and collect its classes; on any failure record it and undo. True if loaded."""
        try:
            self._register_with_pluggy(plugin, source)
            registered = self._collect(plugin, source)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # isolate every failure (SystemExit too) to the plugin that caused it
            self._withdraw(plugin, source)
            error = str(exc) if isinstance(exc, _PluginRejected) else describe_exception(exc)
            self.failures.append(PluginFailure(source.plugin, source.distribution, source.version, error))
            return False
        hooks = sorted(c.name for c in self.pm.get_hookcallers(plugin) or [])
        self.loaded.append(LoadedPlugin(source.plugin, source.distribution, source.version, hooks, registered))
        return True

    def add_entry_point(self, ep: EntryPoint) -> bool:
        source = _source_of(ep)
        try:
            obj = ep.load()
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # SystemExit at import is the plugin's fault, not the command's end
            self.failures.append(PluginFailure(source.plugin, source.distribution, source.version, describe_exception(exc)))
            return False
        return self.add(obj, source)

    def _register_with_pluggy(self, plugin: Any, source: PluginSource) -> None:
        if self.pm.get_plugin(source.plugin) is not None:
            raise _PluginRejected(f"another plugin is already loaded under the name '{source.plugin}'")
        try:
            self.pm.register(plugin, name=source.plugin)
        except pluggy.PluginValidationError as exc:
            raise _PluginRejected(f"wrong hook signature: {exc}") from None
        callers = self.pm.get_hookcallers(plugin) or []
        for caller in callers:
            if caller.spec is None:
                close = difflib.get_close_matches(caller.name, list(HOOK_KINDS), n=1)
                hint = f"; did you mean '{close[0]}'?" if close else f"; known hooks: {', '.join(HOOK_KINDS)}"
                raise _PluginRejected(f"unknown hook '{caller.name}'{hint}")
        if not callers:
            raise _PluginRejected(
                "defines no grail_rl hooks (decorate functions with grail_rl.plugins.hookimpl)"
            )

    def _collect(self, plugin: Any, source: PluginSource) -> dict[str, list[str]]:
        registered: dict[str, list[str]] = {}
        for hook_name, kind in HOOK_KINDS.items():
            registry = self.registry(kind)
            for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
                if impl.plugin is not plugin:
                    continue

                def register(cls: Any, _registry: Registry = registry, _kind: str = kind) -> None:
                    spec = _registry.register(cls, source)
                    registered.setdefault(_kind, []).append(spec.name)

                try:
                    impl.function(**{arg: register for arg in impl.argnames})
                except (_PluginRejected, KeyboardInterrupt):
                    raise
                except BaseException as exc:
                    detail = str(exc) if isinstance(exc, Exception) and str(exc) else describe_exception(exc)
                    raise _PluginRejected(f"{hook_name}: {detail}") from exc
        return registered

    def _withdraw(self, plugin: Any, source: PluginSource) -> None:
        for kind in HOOK_KINDS.values():
            self.registry(kind).unregister_source(source.plugin)
        if self.pm.is_registered(plugin) and self.pm.get_name(plugin) == source.plugin:
            self.pm.unregister(plugin)


def _source_of(ep: EntryPoint) -> PluginSource:
    dist = getattr(ep, "dist", None)
    return PluginSource(
        plugin=ep.name,
        distribution=dist.metadata["Name"] if dist is not None else None,
        version=dist.version if dist is not None else None,
    )


def blocked_names(environ: dict[str, str] | None = None) -> set[str]:
    raw = (environ if environ is not None else os.environ).get(BLOCK_ENV, "")
    return {part.strip() for part in raw.split(",") if part.strip()}


# Plugins added for the duration of a test by grail_rl.testing (object, source) pairs.
_extra_plugins: list[tuple[Any, PluginSource]] = []


def load_plugins(
    *,
    builtins: bool = True,
    use_entry_points: bool = True,
    extra: Iterable[tuple[Any, PluginSource]] = (),
    blocked: Iterable[str] | None = None,
    distributions: Iterable[str] | None = None,
    with_test_registrations: bool = True,
) -> Plugins:
    """Build a :class:`Plugins` from the built-ins, installed entry points and ``extra`` (object, source) pairs.

    The built-in plugins (:data:`grail_rl.builtin.BUILTIN_PLUGINS`, distribution ``grail-rl``) are imported
    and load first, so a third-party plugin that reuses a built-in name is the one reported as the
    duplicate. ``builtins=False`` leaves them out; ``use_entry_points=False`` leaves out third-party
    plugins. ``distributions`` limits the plugins loaded to those of the named distributions
    (``{"grail-rl"}`` = the built-ins only).
    ``with_test_registrations=False`` ignores plugins added by the ``register_plugin`` test fixture.
    """
    block = set(blocked) if blocked is not None else blocked_names()
    with contextlib.redirect_stdout(sys.stderr):  # a plugin that prints must not break --json output
        return _load(block, builtins, use_entry_points, extra, distributions, with_test_registrations)


def _builtin_version() -> str:
    from grail_rl import __version__

    return __version__


def _load(
    block: set[str],
    builtins: bool,
    use_entry_points: bool,
    extra: Iterable[tuple[Any, PluginSource]],
    distributions: Iterable[str] | None,
    with_test_registrations: bool,
) -> Plugins:
    plugins = Plugins()
    wanted = set(distributions) if distributions is not None else None
    if builtins and (wanted is None or BUILTIN_DISTRIBUTION in wanted):
        from grail_rl.builtin import BUILTIN_PLUGINS

        for name, module in BUILTIN_PLUGINS.items():
            source = PluginSource(plugin=name, distribution=BUILTIN_DISTRIBUTION, version=_builtin_version())
            if name in block or BUILTIN_DISTRIBUTION in block:
                plugins.blocked.append(name)
                continue
            plugins.add(importlib.import_module(module), source)
    if use_entry_points:
        for ep in sorted(entry_points(group=hookspecs.ENTRY_POINT_GROUP), key=lambda ep: ep.name):
            source = _source_of(ep)
            if source.distribution == BUILTIN_DISTRIBUTION:
                continue  # an install made before the built-ins were registered by import; they are loaded above
            if wanted is not None and source.distribution not in wanted:
                continue
            if source.plugin in block or (source.distribution or "") in block:
                plugins.blocked.append(source.plugin)
                continue
            plugins.add_entry_point(ep)
    for obj, source in [*(_extra_plugins if with_test_registrations else []), *extra]:
        if source.plugin in block:
            plugins.blocked.append(source.plugin)
            continue
        plugins.add(obj, source)
    return plugins
