"""What every feed does with a frame, whatever transport it came on."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

import structlog

from app.db.repositories.quarantine import QuarantineRepository
from app.domain.model import Fill
from app.domain.quarantine import QuarantineReason, quarantine_reason
from app.ingest.frames import EquityUpdate, FrameError, parse_frame
from app.metrics import FILLS_QUARANTINED, FRAMES_REJECTED
from app.pipeline import Pipeline

log = structlog.get_logger(__name__)
# Enough of a quarantined frame to see what went wrong; a frame is at most max_frame_bytes.
MAX_RAW_CHARS = 4096


@dataclass(frozen=True, slots=True)
class FrameReply:
    """The outcome of one frame, as the push protocol acknowledges it."""

    ok: bool
    body: dict[str, object]


async def handle_frame(
    pipeline: Pipeline, leader_id: UUID, raw: str | bytes, source: str
) -> FrameReply:
    """Parse, validate and process one frame. Bad frames are counted and answered, never raised."""
    received_at = datetime.now(UTC)
    try:
        item = parse_frame(raw, leader_id, received_at)
    except FrameError as exc:
        FRAMES_REJECTED.labels(source=source).inc()
        log.warning("frame_rejected", leader_id=str(leader_id), source=source, error=str(exc))
        if exc.quarantine is not None:
            await _quarantine(pipeline, leader_id, raw, exc.quarantine, received_at, source)
        return FrameReply(False, {"type": "error", "error": str(exc)})
    if isinstance(item, Fill):
        reason = _quarantine_reason(pipeline, item)
        if reason is not None:
            await _quarantine(pipeline, leader_id, raw, reason, received_at, source, item.fill_id)
            return FrameReply(
                False,
                {"type": "error", "error": f"quarantined: {reason}", "fill_id": item.fill_id},
            )
        result = await pipeline.handle_fill(item)
        return FrameReply(True, {"type": "ack", "fill_id": item.fill_id, "status": result.status})
    assert isinstance(item, EquityUpdate)
    async with pipeline.unit_of_work() as uow:
        reading = await pipeline.record_equity(uow, item.equity, item.as_of, leader_id=leader_id)
        await uow.commit()
    return FrameReply(
        True, {"type": "ack", "equity_snapshot_id": reading.snapshot_id, "status": "accepted"}
    )


def _quarantine_reason(pipeline: Pipeline, fill: Fill) -> QuarantineReason | None:
    reading = pipeline.equity.leader(fill.leader_id)
    return quarantine_reason(fill.qty, fill.price, reading.equity if reading else None)


async def _quarantine(
    pipeline: Pipeline,
    leader_id: UUID,
    raw: str | bytes,
    reason: QuarantineReason,
    received_at: datetime,
    source: str,
    fill_id: str | None = None,
) -> None:
    """Keep the frame for inspection instead of sizing it; commit before the reply."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    # Postgres text cannot hold NUL.
    text = text[:MAX_RAW_CHARS].replace("\x00", "\ufffd")
    async with pipeline.unit_of_work() as uow:
        await QuarantineRepository(uow.session).add(leader_id, text, reason.value, received_at)
        await uow.commit()
    FILLS_QUARANTINED.labels(reason=reason.value).inc()
    log.warning(
        "fill_quarantined",
        leader_id=str(leader_id),
        fill_id=fill_id,
        source=source,
        reason=reason.value,
    )
