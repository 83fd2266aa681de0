"""Compatibility path ``tasker.registry``: handler resolution (python-api.md §7.3)."""

from tasker.worker.resolvers import (
    BaseResolver,
    ClassLookupResolver,
    ExplicitMappingResolver,
    HandlerDefinition,
    MethodDispatchWrapper,
    RegistryResolver,
    ResolutionError,
    ResolverChain,
    ResolverNotFoundError,
)

__all__ = [
    "BaseResolver",
    "ClassLookupResolver",
    "ExplicitMappingResolver",
    "HandlerDefinition",
    "MethodDispatchWrapper",
    "RegistryResolver",
    "ResolutionError",
    "ResolverChain",
    "ResolverNotFoundError",
]
