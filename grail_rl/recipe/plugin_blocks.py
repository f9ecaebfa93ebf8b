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
from grail_rl.plugins.registry import PluginSpec, Registry


class PluginBlockMixin:
    """What every plugin block knows about its plugin."""

    plugin_spec: ClassVar[PluginSpec]

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
                f"{spec.kind.replace('_', ' ')} '{spec.name}' (plugin '{spec.source.plugin}'): its options failed "
                f"to validate: {describe_exception(exc)}"
            ) from exc

    def build(self) -> Any:
        """An instance of the plugin configured by this block."""
        return self.plugin_spec.build(self.plugin_options())


# Keys every block of a kind has besides ``name`` (see RESERVED_KEYS in the registry).
BLOCK_FIELDS: dict[str, dict[str, Any]] = {
    "reward": {
        "weight": (
            float,
            Field(1.0, ge=0, description="Weight of this reward; weights are normalised to sum to 1."),
        ),
        "on_fault": (
            Literal["stop", "abstain"],
            Field(
                "stop",
                description="When the reward raises or returns NaN/inf: stop training, or abstain on those rows.",
            ),
        ),
    },
    "prompt_section": {},
    "discriminator": {},
}


def block_model(spec: PluginSpec) -> type:
    """The recipe block model for one plugin."""
    model = create_model(
        f"{spec.kind.title().replace('_', '')}Block_{spec.name}",
        __base__=(spec.config_class, PluginBlockMixin),
        __doc__=spec.description,
        name=(Literal[spec.name], Field(description=f"The {spec.kind.replace('_', ' ')} plugin to use.")),
        **BLOCK_FIELDS[spec.kind],
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

