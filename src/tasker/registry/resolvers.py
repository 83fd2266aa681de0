"""Compatibility path ``tasker.registry.resolvers``: the built-in resolvers (§7.3)."""

from tasker.worker.resolvers import (
    BaseResolver,
    ClassLookupResolver,
    ExplicitMappingResolver,
    RegistryResolver,
)

__all__ = [
    "BaseResolver",
    "ClassLookupResolver",
    "ExplicitMappingResolver",
    "RegistryResolver",
]
