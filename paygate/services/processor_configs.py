"""Per-merchant processor settings (issue 16): declared by the processor, set by operators,
sealed at rest, handed to every operation as ``config``.

Skeleton for the parallel work of issue 16: the per-merchant configuration part replaces this
module whole; ``values_for`` keeps its signature.
"""

from __future__ import annotations

from ..types import ProcessorConfig
from . import Context


def values_for(ctx: Context, merchant_id: str, processor: str) -> ProcessorConfig:
    """The merchant's values for ``processor``'s settings (empty when none are set)."""
    return {}
