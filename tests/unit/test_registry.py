"""HandlerRegistry and the resolver chain (python-api.md §7): order, hints, method dispatch."""

from __future__ import annotations

import importlib
import logging
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tasker.errors import ResolutionError, ResolverNotFoundError
from tasker.worker.context import StepContext
from tasker.worker.execution import invoke_handler
from tasker.worker.handlers import HandlerRegistry, StepHandler
from tasker.worker.models import HandlerWrapper
from tasker.worker.resolvers import (
    ClassLookupResolver,
    ExplicitMappingResolver,
    HandlerDefinition,
    MethodDispatchWrapper,
    RegistryResolver,
    ResolverChain,
)
from tasker.worker.results import StepHandlerResult
from tests.fixtures.handlers import sample

SAMPLE = "tests.fixtures.handlers.sample"
SAMPLE_NAMES = {"sample_handler", "sample_configured", "sample_async", "sample_dsl"}


def context(**input_data: Any) -> StepContext:
    return StepContext(
        task_uuid=uuid.uuid4(), step_uuid=uuid.uuid4(), handler_name="t", input_data=input_data
    )


class OtherHandler(StepHandler):
    handler_name = "other"

    def call(self, context: StepContext) -> StepHandlerResult:
        return self.success({"handled_by": "other"})


@pytest.fixture
def registry() -> HandlerRegistry:
    return HandlerRegistry()


@pytest.fixture
def clean_default(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("TASKER_ENV", "TASKER_TEMPLATE_PATH", "WORKSPACE_PATH"):
        monkeypatch.delenv(name, raising=False)
    HandlerRegistry.reset_instance()
    yield
    HandlerRegistry.reset_instance()


# -- registration ------------------------------------------------------------------------------


def test_register_resolve_and_bookkeeping(registry: HandlerRegistry) -> None:
    registry.register("sample_handler", sample.SampleHandler)
    registry.register("other", OtherHandler)

    first, second = registry.resolve("sample_handler"), registry.resolve("sample_handler")
    assert isinstance(first, sample.SampleHandler)
    assert first is not second
    assert registry.is_registered("other")
    assert registry.list_handlers() == ["sample_handler", "other"]
    assert registry.handler_count() == 2
    assert registry.get_handler_class("other") is OtherHandler
    assert registry.get_handler_class("missing") is None
    assert registry.resolver_chain.registered_callables() == ["other", "sample_handler"]

    assert registry.unregister("other") is True
    assert registry.unregister("other") is False
    assert registry.resolve("other") is None
    registry.clear()
    assert registry.handler_count() == 0
    assert registry.resolve("sample_handler") is None


@pytest.mark.parametrize("bad", [object(), sample.NotAHandler, lambda ctx: None, "sample"])
def test_register_refuses_non_handlers(registry: HandlerRegistry, bad: Any) -> None:
    with pytest.raises(ValueError, match="expected a StepHandler subclass"):
        registry.register("bad", bad)


def test_reregistering_another_class_warns(
    registry: HandlerRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    registry.register("x", OtherHandler)
    with caplog.at_level(logging.WARNING, logger="tasker.worker.handlers"):
        registry.register("x", OtherHandler)
        assert caplog.records == []
        registry.register("x", sample.SampleHandler)

    assert [r.getMessage() for r in caplog.records] == [
        "Handler replaced: name=x old=OtherHandler new=SampleHandler"
    ]
    assert isinstance(registry.resolve("x"), sample.SampleHandler)


def test_register_module_counts_named_handlers_only(registry: HandlerRegistry) -> None:
    assert registry.register_module(sample) == 4
    assert set(registry.list_handlers()) == SAMPLE_NAMES
    assert registry.get_handler_class("sample_dsl") is sample.sample_dsl._handler_class  # type: ignore[attr-defined]


# -- resolution order --------------------------------------------------------------------------


def test_class_lookup_imports_a_dotted_path(registry: HandlerRegistry) -> None:
    handler = registry.resolve(f"{SAMPLE}.SampleHandler")

    assert isinstance(handler, sample.SampleHandler)
    assert invoke_handler(handler, context(order=3)).result == {"handled_by": "call", "order": 3}
    assert isinstance(registry.resolve(f"{SAMPLE}.UnnamedHandler"), sample.UnnamedHandler)
    assert isinstance(registry.resolve(f"{SAMPLE}.sample_dsl"), type(None))


@pytest.mark.parametrize(
    "callable_name",
    [
        f"{SAMPLE}.NotAHandler",
        f"{SAMPLE}.Missing",
        "tests.fixtures.handlers.no_such_module.Handler",
        "NoDots",
        f"{SAMPLE}.lowercase_name",
    ],
)
def test_unresolvable_callables_give_none(registry: HandlerRegistry, callable_name: str) -> None:
    assert registry.resolve(callable_name) is None


def test_explicit_mapping_wins_over_class_lookup(registry: HandlerRegistry) -> None:
    registry.register(f"{SAMPLE}.SampleHandler", OtherHandler)

    assert isinstance(registry.resolve(f"{SAMPLE}.SampleHandler"), OtherHandler)


def test_resolver_hint_uses_only_that_resolver(registry: HandlerRegistry) -> None:
    registry.register(f"{SAMPLE}.SampleHandler", OtherHandler)
    registry.register("plain_name", OtherHandler)

    hinted = HandlerDefinition(callable=f"{SAMPLE}.SampleHandler", resolver="class_lookup")
    assert isinstance(registry.resolve(hinted), sample.SampleHandler)
    assert registry.resolve(HandlerDefinition("plain_name", resolver="class_lookup")) is None
    assert isinstance(
        registry.resolve(HandlerDefinition("plain_name", resolver="explicit_mapping")),
        OtherHandler,
    )


def test_unknown_resolver_hint_is_an_error(registry: HandlerRegistry) -> None:
    with pytest.raises(ResolverNotFoundError, match=r"'nope'.*explicit_mapping, class_lookup"):
        registry.resolve(HandlerDefinition("x", resolver="nope"))


def test_handler_needing_config_gets_the_initialization(registry: HandlerRegistry) -> None:
    definition = HandlerDefinition(
        callable=f"{SAMPLE}.ConfiguredHandler", initialization={"rate": 3}
    )
    registry.register("sample_configured", sample.ConfiguredHandler)

    by_path = registry.resolve(definition)
    by_name = registry.resolve(HandlerWrapper("sample_configured", initialization={"rate": 4}))
    assert isinstance(by_path, sample.ConfiguredHandler)
    assert by_path.config == {"rate": 3}
    assert isinstance(by_name, sample.ConfiguredHandler)
    assert by_name.config == {"rate": 4}


def test_constructor_failure_is_a_resolution_error(registry: HandlerRegistry) -> None:
    class Exploding(StepHandler):
        def __init__(self) -> None:
            raise RuntimeError("no database")

        def call(self, context: StepContext) -> StepHandlerResult:
            raise AssertionError

    registry.register("exploding", Exploding)

    with pytest.raises(ResolutionError, match="Exploding could not be built: no database"):
        registry.resolve("exploding")


# -- method dispatch ---------------------------------------------------------------------------


def test_method_dispatch_runs_the_named_method(registry: HandlerRegistry) -> None:
    registry.register("sample_handler", sample.SampleHandler)
    wrapper = HandlerWrapper.from_dict({"callable": "sample_handler", "method": "refund"})

    handler = registry.resolve(wrapper)

    assert isinstance(handler, MethodDispatchWrapper)
    assert handler.target_method == "refund"
    assert isinstance(handler.unwrap(), sample.SampleHandler)
    assert handler.handler_version == "2.1.0"  # other attributes are delegated
    assert invoke_handler(handler, context(order=1)).result == {"handled_by": "refund", "order": 1}


def test_method_dispatch_awaits_async_methods(registry: HandlerRegistry) -> None:
    registry.register("sample_handler", sample.SampleHandler)

    handler = registry.resolve(HandlerDefinition("sample_handler", handler_method="archive"))

    assert invoke_handler(handler, context()).result == {"handled_by": "archive"}


def test_method_call_is_not_wrapped(registry: HandlerRegistry) -> None:
    registry.register("sample_handler", sample.SampleHandler)

    handler = registry.resolve(HandlerDefinition("sample_handler", handler_method="call"))

    assert type(handler) is sample.SampleHandler


def test_missing_method_falls_back_to_call_with_a_warning(
    registry: HandlerRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    registry.register("sample_dsl", sample.sample_dsl)

    with caplog.at_level(logging.WARNING, logger="tasker.worker.resolvers"):
        handler = registry.resolve(HandlerDefinition("sample_dsl", handler_method="refund"))

    assert not isinstance(handler, MethodDispatchWrapper)
    assert invoke_handler(handler, context()).result == {"dsl": True}
    assert "method=refund" in caplog.text


def test_method_dispatch_wrapper_refuses_missing_methods() -> None:
    with pytest.raises(AttributeError, match="no method 'nope'"):
        MethodDispatchWrapper(sample.SampleHandler(), "nope")


def test_handler_definition_helpers() -> None:
    definition = HandlerDefinition.from_dict(
        {"callable": "a.B", "method": "refund", "resolver": "class_lookup", "initialization": None}
    )

    assert definition.handler_method == "refund"
    assert definition.initialization == {}
    assert definition.effective_method() == "refund"
    assert definition.uses_method_dispatch() is True
    assert definition.has_resolver_hint() is True
    plain = HandlerDefinition.from_callable("a.B")
    assert (plain.effective_method(), plain.uses_method_dispatch(), plain.has_resolver_hint()) == (
        "call",
        False,
        False,
    )


# -- resolvers and the chain -------------------------------------------------------------------


class PaymentsResolver(RegistryResolver):
    _name = "payments"
    _priority = 50
    pattern = r"^payments:"

    def resolve_handler(
        self, definition: HandlerDefinition, config: dict[str, Any] | None = None
    ) -> Any:
        return OtherHandler()


def test_custom_resolver_sits_at_its_priority() -> None:
    chain = ResolverChain.default()

    assert chain.add_resolver(PaymentsResolver()) is chain
    assert chain.list_resolvers() == [
        ("explicit_mapping", 10),
        ("payments", 50),
        ("class_lookup", 100),
    ]
    assert isinstance(chain.resolve(HandlerDefinition("payments:refund")), OtherHandler)
    assert chain.resolve(HandlerDefinition("shipping:send")) is None
    assert chain.can_resolve(HandlerDefinition("payments:x")) is True
    assert chain.remove_resolver("payments") is True
    assert chain.remove_resolver("payments") is False
    assert chain.resolver_names == ["explicit_mapping", "class_lookup"]
    assert len(chain) == 2


def test_prefix_resolver_matches_by_prefix() -> None:
    class Prefixed(RegistryResolver):
        prefix = "legacy."

    resolver = Prefixed()

    assert resolver.name == "custom_resolver"
    assert resolver.can_resolve(HandlerDefinition("legacy.thing")) is True
    assert resolver.can_resolve(HandlerDefinition("modern.thing")) is False
    assert resolver.resolve(HandlerDefinition("legacy.thing")) is None


def test_explicit_mapping_accepts_classes_factories_and_instances() -> None:
    resolver = ExplicitMappingResolver()
    instance = OtherHandler()
    resolver.register("cls", OtherHandler)
    resolver.register("factory", lambda config: {"made_with": config})
    resolver.register("instance", instance)

    assert isinstance(resolver.resolve(HandlerDefinition("cls")), OtherHandler)
    made = resolver.resolve(HandlerDefinition("factory", initialization={"k": 1}))
    assert made == {"made_with": {"k": 1}}
    assert resolver.resolve(HandlerDefinition("instance")) is instance
    assert resolver.registered_callables() == ["cls", "factory", "instance"]
    assert resolver.unregister("cls") is True
    assert resolver.resolve(HandlerDefinition("cls")) is None


def test_chain_register_needs_an_explicit_resolver() -> None:
    chain = ResolverChain([ClassLookupResolver()])

    with pytest.raises(RuntimeError, match="no explicit_mapping resolver"):
        chain.register("x", OtherHandler)
    assert chain.explicit_resolver is None
    assert chain.chain_info()["resolvers"] == [
        {"name": "class_lookup", "priority": 100, "type": "ClassLookupResolver"}
    ]


# -- discovery and bootstrap -------------------------------------------------------------------


def write_package(root: Path, name: str, modules: dict[str, str]) -> None:
    package = root / name
    package.mkdir()
    for module, source in modules.items():
        (package / f"{module}.py").write_text(textwrap.dedent(source))


HANDLER_SOURCE = """
from tasker.step_handler import StepHandler

class {cls}(StepHandler):
    handler_name = "{name}"

    def call(self, context):
        return self.success({{"name": "{name}"}})
"""


def test_discover_handlers_walks_submodules_and_skips_broken_ones(
    registry: HandlerRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pkg = f"disc_{uuid.uuid4().hex}"
    write_package(
        tmp_path,
        pkg,
        {
            "__init__": HANDLER_SOURCE.format(cls="RootHandler", name=f"{pkg}_root"),
            "billing": HANDLER_SOURCE.format(cls="BillingHandler", name=f"{pkg}_billing"),
            "broken": "raise RuntimeError('import-time failure')\n",
        },
    )
    (tmp_path / pkg / "sub").mkdir()
    (tmp_path / pkg / "sub" / "__init__.py").write_text(
        textwrap.dedent(HANDLER_SOURCE.format(cls="SubHandler", name=f"{pkg}_sub"))
    )
    monkeypatch.syspath_prepend(str(tmp_path))

    assert registry.discover_handlers(pkg) == 3
    assert sorted(registry.list_handlers()) == sorted(
        [f"{pkg}_root", f"{pkg}_billing", f"{pkg}_sub"]
    )


ABSTRACT_AND_SUBCLASS_SOURCE = """
from abc import abstractmethod

from tasker.step_handler import StepHandler


class PaymentBase(StepHandler):
    handler_name = "{pkg}_abstract_base"

    @abstractmethod
    def charge(self): ...

    def call(self, context):
        return self.success({{"charged": self.charge()}})


class CardPayment(PaymentBase):
    handler_name = "{pkg}_card"

    def charge(self):
        return 1


class Unrelated(StepHandler):
    handler_name = "{pkg}_unrelated"

    def call(self, context):
        return self.success({{}})
"""


def test_discover_handlers_skips_abstract_classes_and_filters_by_base(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pkg = f"disc_{uuid.uuid4().hex}"
    write_package(tmp_path, pkg, {"__init__": ABSTRACT_AND_SUBCLASS_SOURCE.format(pkg=pkg)})
    monkeypatch.syspath_prepend(str(tmp_path))
    everything, payments_only = HandlerRegistry(), HandlerRegistry()

    assert everything.discover_handlers(pkg) == 2
    assert sorted(everything.list_handlers()) == [f"{pkg}_card", f"{pkg}_unrelated"]
    base = importlib.import_module(pkg).PaymentBase
    assert payments_only.discover_handlers(pkg, base_class=base) == 1
    assert payments_only.list_handlers() == [f"{pkg}_card"]


def test_discover_handlers_of_a_missing_package_finds_nothing(registry: HandlerRegistry) -> None:
    assert registry.discover_handlers("no_such_package_for_tasker_tests") == 0
    assert registry.handler_count() == 0


def test_instance_is_a_process_wide_default(clean_default: None) -> None:
    first = HandlerRegistry.instance(skip_bootstrap=True)

    assert HandlerRegistry.instance() is first
    HandlerRegistry.reset_instance()
    assert HandlerRegistry.instance(skip_bootstrap=True) is not first


def test_test_bootstrap_registers_handlers_of_loaded_modules(
    clean_default: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TASKER_ENV", "test")

    registry = HandlerRegistry.instance()

    assert set(registry.list_handlers()) >= SAMPLE_NAMES
    assert isinstance(registry.resolve("sample_handler"), sample.SampleHandler)


def test_template_bootstrap_imports_template_callables(
    clean_default: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "order.yaml").write_text(
        textwrap.dedent(
            f"""
            name: order
            steps:
              - name: a
                handler:
                  callable: {SAMPLE}.SampleHandler
              - name: b
                handler:
                  callable: {SAMPLE}.UnnamedHandler
              - name: c
                handler:
                  callable: logical_only.step_handlers.NotImportable
            """
        )
    )
    (tmp_path / "broken.yml").write_text("steps: [unclosed\n")
    monkeypatch.setenv("TASKER_TEMPLATE_PATH", str(tmp_path))

    registry = HandlerRegistry()
    count = registry.bootstrap_handlers()

    assert count == 2
    assert sorted(registry.list_handlers()) == sorted(
        ["sample_handler", f"{SAMPLE}.UnnamedHandler"]
    )
    info = registry.template_discovery_info()
    assert info["template_path"] == str(tmp_path)
    assert info["template_files"] == sorted(
        [str(tmp_path / "nested" / "order.yaml"), str(tmp_path / "broken.yml")]
    )
    assert info["handler_callables"] == sorted(
        [
            f"{SAMPLE}.SampleHandler",
            f"{SAMPLE}.UnnamedHandler",
            "logical_only.step_handlers.NotImportable",
        ]
    )
    assert info["bootstrapped"] is True
