"""``tasker demo``: an order fulfilment run on the embedded engine with a live progress view."""

from __future__ import annotations

import random
import time
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.table import Table

from tasker.config import Settings
from tasker.runtime import Tasker, TaskView

__all__ = ["TEMPLATE_PATH", "run_demo"]

TEMPLATE_PATH = Path(__file__).with_name("order_fulfillment.yaml")
_STYLE = {
    "complete": "green",
    "in_progress": "yellow",
    "enqueued": "cyan",
    "waiting_for_retry": "magenta",
    "error": "red",
}


def _order(order_id: int) -> dict[str, object]:
    skus = ["mug", "tee", "cap", "pen", "pad", "bag", "pin", "cup", "hat", "sox"]
    items = [
        {"sku": f"{sku}-{order_id}", "price": random.randint(3, 30), "quantity": 1} for sku in skus
    ]
    return {"order_id": order_id, "items": items}


def _table(views: list[TaskView], started: float) -> Table:
    table = Table(title=f"order_fulfillment — {time.monotonic() - started:4.1f}s")
    table.add_column("order")
    table.add_column("step")
    table.add_column("state")
    table.add_column("attempts", justify="right")
    table.add_column("detail", no_wrap=True, overflow="ellipsis", max_width=40)
    for view in views:
        order = str(view.context.get("order_id"))
        for step in view.steps.values():
            style = _STYLE.get(step.state, "white")
            detail = ""
            if step.error:
                detail = str(step.error.get("message", ""))
            elif step.checkpoint and step.state != "complete":
                detail = f"checkpoint at item {step.checkpoint.get('cursor')}"
            elif step.result is not None:
                detail = str(step.result)[:60]
            table.add_row(
                order, step.name, f"[{style}]{step.state}[/{style}]", str(step.attempts), detail
            )
        table.add_row(order, "[bold]task[/bold]", f"[bold]{view.state}[/bold]", "", "")
    return table


def run_demo(settings: Settings, *, orders: int = 1) -> bool:
    """Run ``orders`` demo tasks side by side; ``True`` when every one completes."""
    console = Console()
    app = Tasker(settings=settings, templates=[TEMPLATE_PATH], handlers=["tasker.demo.handlers"])
    console.print(f"database: {settings.database_url}")
    started = time.monotonic()
    with app:
        base = random.randint(1000, 9999)
        task_uuids = [
            app.create_task("order_fulfillment", namespace="demo", context=_order(base + i))
            for i in range(orders)
        ]
        with Live(console=console, refresh_per_second=10) as live:
            while True:
                views = [app.get_task(uuid) for uuid in task_uuids]
                live.update(_table(views, started))
                if all(v.state in ("complete", "error", "cancelled") for v in views):
                    break
                time.sleep(0.1)
    ok = all(v.is_complete for v in views)
    console.print("[green]all orders fulfilled[/green]" if ok else "[red]some orders failed[/red]")
    return ok
