"""``[live]``: the intraday loop over a finished run (``riskmodel live``,
:mod:`riskmodel.live`).

Every key is a field of :class:`LiveConfig` (``RUN.toml`` keys map one to one); a value out of
range raises :class:`~riskmodel.errors.UsageError` (exit 2) naming ``live.<key>``.
"""

from __future__ import annotations

from dataclasses import dataclass

from riskmodel.errors import UsageError
from riskmodel.validation import check_int, check_number


@dataclass(frozen=True)
class LiveConfig:
    """Settings of the intraday loop.

    Attributes
    ----------
    max_jump : float
        A price that moves more than this relative amount from the last accepted one raises a
        ``price_jump`` event and is held until the next tick confirms it (0.5).
    stale_after : float
        Seconds after which an asset with no accepted tick raises a ``stale_price`` event
        (3600).
    refresh_move : float
        A netting set's requirements are refreshed when one of its underlyings has moved more
        than this relative amount since its last refresh (0.01): each factor's *requirement
        mark* follows its price whenever the two are further apart than this, and every set
        holding the factor is then due; ``--exact`` refreshes every touched set on every tick.
    refresh_slice : int
        Due netting sets refreshed after each input, nearest liquidation first (16); the rest
        wait for the next inputs, and all of them for ``flush``.
    order_batch : int
        Netting sets waiting for liquidation orders that make the orders go out at once (256).
    order_wait : float
        The orders' clock, in seconds of stream time (10.0): waiting liquidation orders go out
        at the first input at or after each multiple of it (counted from the Unix epoch, so
        every mode and every resumed replay batches at the same instants), and at ``flush``;
        a set waits at most this long. A move out of liquidation that lagging requirements
        show is confirmed by that batch at the exact marks, so this also bounds its
        publication delay.
    checkpoint_every : int
        Inputs between two checkpoints of ``riskmodel live`` (10000).
    auto_top_up : bool
        Isolated netting sets below ``top_up_trigger`` draw collateral from their account's
        cross set (never below that set's own initial margin) back to ``top_up_target``.
    top_up_trigger, top_up_target : float
        Margin levels (equity / maintenance margin) of the automatic top-up.
    """

    max_jump: float = 0.5
    stale_after: float = 3600.0
    refresh_move: float = 0.01
    refresh_slice: int = 16
    order_batch: int = 256
    order_wait: float = 10.0
    checkpoint_every: int = 10000
    auto_top_up: bool = False
    top_up_trigger: float = 1.2
    top_up_target: float = 1.5

    def __post_init__(self) -> None:
        for name in ("max_jump", "stale_after", "refresh_move", "order_wait",
                     "top_up_trigger", "top_up_target"):
            check_number(f"live.{name}", getattr(self, name))
        check_int("live.refresh_slice", self.refresh_slice, low=0, high=10**9)
        check_int("live.order_batch", self.order_batch, low=1, high=10**9)
        check_int("live.checkpoint_every", self.checkpoint_every, low=1, high=10**12)
        if not self.order_wait >= 0:
            raise UsageError(f"config: live.order_wait = {self.order_wait!r} must be >= 0 "
                             "(seconds)")
        if not 0.0 < self.max_jump <= 10.0:
            raise UsageError(f"config: live.max_jump = {self.max_jump!r} must be in (0, 10]")
        if not self.stale_after > 0:
            raise UsageError(f"config: live.stale_after = {self.stale_after!r} must be > 0 "
                             "(seconds)")
        if not 0.0 <= self.refresh_move < 1.0:
            raise UsageError(f"config: live.refresh_move = {self.refresh_move!r} must be in "
                             "[0, 1)")
        if not isinstance(self.auto_top_up, bool):
            raise UsageError(f"config: live.auto_top_up = {self.auto_top_up!r} must be true or "
                             "false")
        if not 1.0 <= self.top_up_trigger < self.top_up_target <= 100.0:
            raise UsageError("config: live.top_up_trigger and top_up_target must satisfy "
                             f"1 <= trigger < target <= 100 (got {self.top_up_trigger!r}, "
                             f"{self.top_up_target!r})")
