"""What-if margin over a finished ``eod`` run (:mod:`riskmodel.whatif.trades`): the margin of
the netting sets hypothetical trades touch, from the run's stored priced market."""

from riskmodel.whatif.run import LoadedRun, load_run
from riskmodel.whatif.trades import (
    CLOSED,
    WHATIF_COLUMNS,
    book_initial_margin,
    book_margins,
    load_trades,
    what_if,
    write_result,
)

__all__ = ["CLOSED", "WHATIF_COLUMNS", "LoadedRun", "book_initial_margin", "book_margins",
           "load_run", "load_trades", "what_if", "write_result"]
