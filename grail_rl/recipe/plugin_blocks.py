"""Recipe blocks for plugins: one model per installed plugin, joined in a union discriminated by ``name``.

A reward block is the plugin's own ``Config`` plus the keys every reward block has (``name``, ``weight``,
``on_fault``), so a recipe lists a plugin's options flat beside its name::

    rewards:
      - name: accuracy
        weight: 1.0
        allow_bare_numbers: false
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, Field, create_model

from grail_rl.errors import GrailError, describe_exception
from grail_rl.plugins.base import PluginConfig
from grail_rl.plugins.kinds import kind_of
from grail_rl.plugins.registry import PluginSpec, Registry


class PluginBlockMixin:
    """What every plugin block knows about its plugin."""

    plugin_spec: ClassVar[PluginSpec]

    def block_keys(self) -> Any:
        """The kind's own keys of this block (weight and on_fault of a reward, the discriminator's training)."""
        keys = kind_of(self.plugin_spec.kind).block_keys
        # Validated with the recipe already; validating again could fail on a path a run has since moved.
        return keys.model_construct(**{k: getattr(self, k) for k in keys.model_fields})

    def plugin_options(self) -> PluginConfig:
        """The plugin's own Config, validated from this block (without the block's reserved keys)."""
        values = {k: getattr(self, k) for k in self.plugin_spec.config_class.model_fields}
        try:
            return self.plugin_spec.config_class.model_validate(values)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # the recipe validated these values once; plugin code broke the second time
            spec = self.plugin_spec
            raise GrailError(
                f"{kind_of(spec.kind).label} '{spec.name}' (plugin '{spec.source.plugin}'): its options failed "
                f"to validate: {describe_exception(exc)}"
            ) from exc

    def build(self) -> Any:
        """An instance of the plugin configured by this block."""
        return self.plugin_spec.build(self.plugin_options())

    def declared_row_fields(self) -> tuple[str, ...]:
        """The row fields the plugin reads as this block configures it (rewards; empty for other kinds)."""
        fields_read = getattr(self.plugin_spec.cls, "fields_read", None)
        if fields_read is None:
            return ()
        try:
            return tuple(fields_read(self.plugin_options()))
        except GrailError:
            raise
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # plugin code: a broken declaration names the plugin
            spec = self.plugin_spec
            raise GrailError(
                f"reward '{spec.name}' (plugin '{spec.source.plugin}'): its row_fields could not be read: "
                f"{describe_exception(exc)}"
            ) from exc


def block_fields(kind: str) -> dict[str, tuple[Any, Any]]:
    """The keys every block of ``kind`` has besides ``name`` (the kind's ``block_keys``), as pydantic fields."""
    keys = kind_of(kind).block_keys
    return {key: (info.annotation, info) for key, info in keys.model_fields.items()}


def block_model(spec: PluginSpec) -> type:
    """The recipe block model for one plugin."""
    # The kind's block keys come in as a base class, so their validators run too.
    model = create_model(
        f"{spec.kind.title().replace('_', '')}Block_{spec.name}",
        __base__=(spec.config_class, kind_of(spec.kind).block_keys, PluginBlockMixin),
        __doc__=spec.description,
        name=(Literal[spec.name], Field(description=f"The {kind_of(spec.kind).label} plugin to use.")),
    )
    model.plugin_spec = spec  # a ClassVar (declared on the mixin), not a field
    return model


def block_union(registry: Registry) -> Any:
    """One type accepting a block for any plugin of ``registry``, discriminated by ``name``."""
    models = [block_model(spec) for spec in registry]
    if not models:
        label = registry.label

        def _none_installed(value: Any) -> Any:
            raise ValueError(f"no {label} plugins are installed (run 'grail-rl plugins' to see what loaded)")

        return Annotated[Any, BeforeValidator(_none_installed)]
    if len(models) == 1:
        return models[0]
    union = models[0]
    for model in models[1:]:
        union = union | model
    return Annotated[union, Field(discriminator="name")]

