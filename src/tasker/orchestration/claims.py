"""Claims: how a worker takes enqueued steps, keeps them (leases, checkpoints), gives them back.

A claim is ``enqueued -> in_progress`` with ``attempts + 1``, a fresh token and a lease; every
write made under it is fenced by its token (R1.4), so a late or superseded worker changes
nothing. What becomes of the run is ``tasker.orchestration.results``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from tasker.domain.model import Claim, StepRecord
from tasker.domain.states import StepEvent, StepState
from tasker.orchestration.lifecycle import evaluate_locked_task
from tasker.store.base import Transaction

__all__ = ["claim_step_rows", "claim_steps", "heartbeat", "release_claim", "save_checkpoint"]


def claim_steps(
    tx: Transaction,
    *,
    namespaces: Sequence[str] | None,
    limit: int,
    worker_id: str,
    lease_timeout_s: float,
    now: datetime,
) -> list[Claim]:
    """Claim up to ``limit`` enqueued steps: ``enqueued -> in_progress``, ``attempts + 1``."""
    rows = claim_step_rows(
        tx,
        namespaces=namespaces,
        limit=limit,
        worker_id=worker_id,
        lease_timeout_s=lease_timeout_s,
        now=now,
    )
    return [claim for claim, _ in rows]


def claim_step_rows(
    tx: Transaction,
    *,
    namespaces: Sequence[str] | None,
    limit: int,
    worker_id: str,
    lease_timeout_s: float,
    now: datetime,
    commit: bool = False,
) -> list[tuple[Claim, StepRecord]]:
    """``claim_steps``, with each claimed step's row as the claim left it (saves a read).

    The store claims them all at once, each under its own claim token and with its own
    transition row (two statements for any ``limit``; one on PostgreSQL, which also reads
    the claimed steps' ancestor results with them). ``commit``: the claim is the
    transaction's last write, and the store may commit with it (``tx.committed`` then says
    so); only reads of the claimed steps' tasks, templates and ancestors may follow.
    """
    lease_expires_at = now + timedelta(seconds=lease_timeout_s)
    claimed = tx.claim_enqueued_steps(
        namespaces,
        limit,
        StepEvent.START.value,
        now,
        worker_id=worker_id,
        lease_expires_at=lease_expires_at,
        metadata={"worker_uuid": worker_id},
        commit=commit,
    )
    claims = [
        (
            Claim(
                row.task_uuid,
                row.workflow_step_uuid,
                token,
                worker_id,
                row.attempts - 1,
                lease_expires_at,
                tx.claimed_successors.get(row.workflow_step_uuid),
            ),
            row,
        )
        for row, token in claimed
    ]
    # A step this transaction enqueued and claims itself needs no other worker woken for it.
    tx.claimed_enqueued += sum(
        1 for claim, _ in claims if claim.step_uuid in tx.enqueued_step_uuids
    )
    return claims


def release_claim(
    tx: Transaction, claim: Claim, now: datetime, reason: str = "released at worker shutdown"
) -> bool:
    """Give a claim back without spending an attempt (R8.5: at shutdown), then re-enqueue."""
    task = tx.lock_task(claim.task_uuid)
    if task is None:
        return False
    moved = tx.transition_step(
        claim.step_uuid,
        claim.task_uuid,
        StepState.IN_PROGRESS,
        StepState.WAITING_FOR_RETRY,
        StepEvent.WAIT_FOR_RETRY.value,
        now,
        changes={
            "in_process": False,
            "attempts_delta": -1,
            "claim_token": None,
            "lease_expires_at": None,
            "next_retry_at": None,
        },
        claim_token=claim.token,
        metadata={"reason": reason, "worker_uuid": claim.worker_id},
    )
    if moved is None:
        return False
    evaluate_locked_task(tx, task, now)
    return True


def heartbeat(tx: Transaction, claim: Claim, lease_timeout_s: float, now: datetime) -> bool:
    """Extend a lease; ``False`` means the claim is gone and the run should stop writing."""
    return tx.heartbeat(claim.step_uuid, claim.token, now + timedelta(seconds=lease_timeout_s))


def save_checkpoint(
    tx: Transaction,
    claim: Claim,
    *,
    cursor: Any,
    items_processed: int,
    accumulated_results: Any,
    lease_timeout_s: float,
    now: datetime,
) -> bool:
    """Persist a checkpoint fenced by the claim, renewing its lease (R4.1)."""
    return tx.save_checkpoint(
        claim.step_uuid,
        claim.token,
        cursor=cursor,
        items_processed=items_processed,
        accumulated_results=accumulated_results,
        lease_expires_at=now + timedelta(seconds=lease_timeout_s),
        now=now,
    )
