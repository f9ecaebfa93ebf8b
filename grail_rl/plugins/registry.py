"""Registries: name -> plugin class, one per kind, recording which plugin registered each name."""

from __future__ import annotations

import difflib
import inspect
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from grail_rl.errors import DuplicatePluginError, GrailError, UnknownPluginError, describe_exception
from grail_rl.plugins.base import PluginConfig
from grail_rl.plugins.kinds import PluginKind, kind_of

_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class PluginSource:
    """Where a registration came from: the plugin (entry point) name and its distribution."""

    plugin: str
    distribution: str | None = None
    version: str | None = None


@dataclass(frozen=True)
class PluginSpec:
    """One registered plugin class and its provenance."""

    kind: str
    name: str
    cls: type
    source: PluginSource

    @property
    def config_class(self) -> type[PluginConfig]:
        return self.cls.Config

    @property
    def description(self) -> str:
        return self.cls.summary()

    def config_fields(self) -> list[dict[str, Any]]:
        """The plugin's options: name, type, default (None when required) and description."""
        fields = []
        for key, info in self.config_class.model_fields.items():
            required = info.is_required()
            default = None if required else info.get_default(call_default_factory=True)
            fields.append(
                {
                    "name": key,
                    "type": _type_label(info.annotation),
                    "required": required,
                    "default": default,
                    "description": info.description or "",
                }
            )
        return fields

    def build(self, config: PluginConfig | dict[str, Any] | None = None) -> Any:
        """Instantiate the plugin from a validated config (or a plain mapping of options).

        Whatever the plugin's constructor raises (``SystemExit`` included, ``KeyboardInterrupt`` aside) is
        reported as that plugin's failure, in one line naming it.
        """
        try:
            if config is None or isinstance(config, dict):
                config = self.config_class.model_validate(config or {})
            return self.cls(config)
        except (GrailError, KeyboardInterrupt, ValidationError):
            raise
        except BaseException as exc:
            raise GrailError(
                f"{kind_of(self.kind).label} '{self.name}' (plugin '{self.source.plugin}') failed to start: "
                f"{describe_exception(exc)}"
            ) from exc


def _type_label(annotation: Any) -> str:
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def suggest(name: str, choices: list[str]) -> str:
    """A ' Did you mean ...?' suffix naming the closest choice, or an empty string."""
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    return f" Did you mean '{close[0]}'?" if close else ""


class Registry:
    """The registered plugins of one kind, by name."""

    def __init__(self, kind: str):
        self.kind = kind
        self.info: PluginKind = kind_of(kind)
        self._specs: dict[str, PluginSpec] = {}

    @property
    def label(self) -> str:
        return self.info.label

    def register(self, cls: Any, source: PluginSource) -> PluginSpec:
        """Validate ``cls`` and add it; raise :class:`GrailError` naming the plugin when it is unfit."""
        base = self.info.base
        where = f"plugin '{source.plugin}'"
        if not (isinstance(cls, type) and issubclass(cls, base)):
            raise GrailError(f"{where} registered {cls!r} as a {self.label}, but it is not a subclass of {base.__name__}")
        name = getattr(cls, "name", None)
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise GrailError(
                f"{where}: {cls.__name__}.name must be a lowercase identifier (letters, digits, _), got {name!r}"
            )
        if inspect.isabstract(cls):
            missing = ", ".join(sorted(cls.__abstractmethods__))
            raise GrailError(f"{where}: {self.label} '{name}' does not implement {missing}")
        config = getattr(cls, "Config", None)
        if not (isinstance(config, type) and issubclass(config, PluginConfig)):
            raise GrailError(f"{where}: {self.label} '{name}'.Config must subclass grail_rl.plugins.PluginConfig")
        clash = self.info.reserved_keys & set(config.model_fields)
        if clash:
            raise GrailError(
                f"{where}: {self.label} '{name}'.Config may not define {', '.join(sorted(clash))} "
                "(the recipe block uses these keys itself)"
            )
        if name in self._specs:
            first = self._specs[name].source.plugin
            raise DuplicatePluginError(
                f"{self.label} '{name}' already registered by plugin '{first}' (new: '{source.plugin}')"
            )
        spec = PluginSpec(kind=self.kind, name=name, cls=cls, source=source)
        self._specs[name] = spec
        return spec

    def unregister_source(self, plugin: str) -> None:
        """Drop everything registered by ``plugin`` (used when a plugin fails half-way)."""
        for name in [n for n, s in self._specs.items() if s.source.plugin == plugin]:
            del self._specs[name]

    def get(self, name: str) -> PluginSpec:
        try:
            return self._specs[name]
        except KeyError:
            available = ", ".join(self.names()) or "(none installed)"
            raise UnknownPluginError(
                f"Unknown {self.label} '{name}'.{suggest(name, self.names())} Available: {available}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._specs)

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __iter__(self) -> Iterator[PluginSpec]:
        return iter(self._specs[n] for n in self.names())

    def __len__(self) -> int:
        return len(self._specs)
