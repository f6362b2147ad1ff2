"""A matplotlib figure as PNG bytes: the one way the capacity and recovery plots are written."""

from __future__ import annotations

import io
from typing import Any


def png_bytes(fig: Any) -> bytes:
    """Lay out `fig` and render it as PNG (the caller closes it)."""
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()
