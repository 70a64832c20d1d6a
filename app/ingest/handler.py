"""What every feed does with a frame, whatever transport it came on."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

import structlog

from app.domain.model import Fill
from app.ingest.frames import EquityUpdate, FrameError, parse_frame
from app.metrics import FRAMES_REJECTED
from app.pipeline import Pipeline

log = structlog.get_logger(__name__)


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
        return FrameReply(False, {"type": "error", "error": str(exc)})
    if isinstance(item, Fill):
        result = await pipeline.handle_fill(item)
        return FrameReply(True, {"type": "ack", "fill_id": item.fill_id, "status": result.status})
    assert isinstance(item, EquityUpdate)
    async with pipeline.unit_of_work() as uow:
        reading = await pipeline.record_equity(uow, item.equity, item.as_of, leader_id=leader_id)
        await uow.commit()
    return FrameReply(
        True, {"type": "ack", "equity_snapshot_id": reading.snapshot_id, "status": "accepted"}
    )
