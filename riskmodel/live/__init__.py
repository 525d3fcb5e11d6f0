"""The intraday loop over a finished ``eod`` run (``riskmodel live``).

* :class:`LiveMargin` (:mod:`riskmodel.live.loop`): ``on_tick``, ``on_trade``,
  ``on_transfer``, ``on_funding``, each returning the events it caused; ``flush`` and
  ``snapshot``;
* :mod:`riskmodel.live.events`: the events and ``events.parquet``'s columns;
* :mod:`riskmodel.live.inputs`: ticks, trades, transfers and funding read from CSV, Parquet or
  JSON lines on standard input, merged into one stream in time order;
* :mod:`riskmodel.live.replay`: the ``riskmodel live`` driver: event log, checkpoints,
  ``--resume``, outputs.
"""

from riskmodel.live.events import EVENT_COLUMNS, EVENT_KINDS, Event, events_frame
from riskmodel.live.loop import LiveMargin

__all__ = ["EVENT_COLUMNS", "EVENT_KINDS", "Event", "LiveMargin", "events_frame"]
