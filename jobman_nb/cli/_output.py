"""How the commands print records: for a person (fits the terminal) or for a program (CSV, JSON)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["for_display"]


def for_display(df: pd.DataFrame) -> pd.DataFrame:
    """Datetimes to the second, for a table a person reads."""
    import pandas as pd

    out = df.copy()
    for name in out.columns:
        if isinstance(out[name].dtype, pd.DatetimeTZDtype):
            out[name] = out[name].dt.strftime("%Y-%m-%d %H:%M:%S").astype(object).where(out[name].notna(), "")
    return out
