"""Step handlers of the demo workflow.

Each sleeps a little so the live view has something to show.
"""

from __future__ import annotations

import time
from typing import Any

from tasker.errors import ServiceUnavailableError
from tasker.worker.batch import Batchable
from tasker.worker.context import StepContext
from tasker.worker.handlers import StepHandler
from tasker.worker.results import StepHandlerResult

PAUSE_S = 0.25


class ValidateOrder(StepHandler):
    handler_name = "demo.validate_order"

    def call(self, context: StepContext) -> StepHandlerResult:
        time.sleep(PAUSE_S)
        items = context.get_input("items") or []
        total = sum(item["price"] * item["quantity"] for item in items)
        return self.success({"order_id": context.get_input("order_id"), "total": total})


class ChargePayment(StepHandler):
    handler_name = "demo.charge_payment"

    def call(self, context: StepContext) -> StepHandlerResult:
        time.sleep(PAUSE_S)
        if not context.is_retry():
            raise ServiceUnavailableError("payment gateway timed out (the demo fails once)")
        total = context.get_dependency_field("validate_order", "total")
        return self.success(
            {
                "charged": total,
                "gateway": context.get_config("gateway"),
                "attempt": 1 + context.retry_count,
            }
        )


class ReserveInventory(StepHandler):
    handler_name = "demo.reserve_inventory"

    def call(self, context: StepContext) -> StepHandlerResult:
        time.sleep(PAUSE_S * 2)
        items = context.get_input("items") or []
        return self.success({"reserved": [item["sku"] for item in items]})


class PackItems(Batchable, StepHandler):
    handler_name = "demo.pack_items"

    def call(self, context: StepContext) -> StepHandlerResult:
        items: list[dict[str, Any]] = context.get_input("items") or []
        every = int(context.get_config("checkpoint_every") or 4)
        start = int(context.checkpoint_cursor or 0)
        packed: list[str] = list((context.accumulated_results or {}).get("packed", []))
        for index in range(start, len(items)):
            time.sleep(PAUSE_S / 4)
            packed.append(items[index]["sku"])
            done = index + 1
            if done % every == 0 and done < len(items):
                return self.checkpoint_yield(done, done, {"packed": packed})
        return self.success({"packed": packed, "boxes": 1 + len(packed) // 6})


class ShipOrder(StepHandler):
    handler_name = "demo.ship_order"

    def call(self, context: StepContext) -> StepHandlerResult:
        time.sleep(PAUSE_S)
        boxes = context.get_dependency_field("pack_items", "boxes")
        return self.success({"tracking": f"TRK-{context.get_input('order_id')}", "boxes": boxes})


class NotifyCustomer(StepHandler):
    handler_name = "demo.notify_customer"

    def call(self, context: StepContext) -> StepHandlerResult:
        time.sleep(PAUSE_S / 2)
        tracking = context.get_dependency_field("ship_order", "tracking")
        return self.success({"sent": True, "message": f"Your order ships with {tracking}"})
