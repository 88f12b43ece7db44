"""Blocks of users: how the re-rankers work through candidate tables too large to hold.

At 2M events the exploration pool alone is 48M candidate rows (40k users, two purposes,
600 candidates); every per-row array of it is hundreds of MB. The Python models that read
it therefore go through it a block of users at a time: :func:`user_blocks` cuts each
purpose's users, in user-id order, into runs of at most ``max_rows`` candidate rows, and a
model reads each table's rows of one block (:meth:`Block.where` is the filter) and writes
that block's lists before it reads the next. Users never straddle blocks, and the
re-rankers see the users in the same order as in one pass; state that runs across users
(the exploration's repeat counts) is carried from block to block by the caller.

A purpose with at most ``max_rows`` rows is one block, so a small project (the default
seeds: 671 users x 600 candidates) computes exactly what one pass over it computes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

# candidate rows per block (~500 bytes each while a block is re-ranked): one block per purpose
# on the default seeds (671 users x 600 candidates = 402,600), ~200-300 MB a block at scale
BLOCK_ROWS = 1 << 19


@dataclass(frozen=True)
class Block:
    """The users ``first_user..last_user`` (inclusive, by id) of ``purpose``; ``number`` counts
    the purpose's blocks from 0, ``rows`` is how many candidate rows they have."""

    purpose: str
    first_user: int
    last_user: int
    number: int
    rows: int

    def where(self) -> str:
        """A SQL filter on (purpose, user_id) that selects the block's rows of a table."""
        purpose = self.purpose.replace("'", "''")
        return f"purpose = '{purpose}' and user_id between {self.first_user} and {self.last_user}"

    def of(self, frame: pl.DataFrame) -> pl.DataFrame:
        """The block's rows of a frame keyed by (purpose, user_id)."""
        return frame.filter((pl.col("purpose") == self.purpose)
                            & pl.col("user_id").is_between(self.first_user, self.last_user))

    def seed(self, seed: int) -> int:
        """The seed of the block's random draws: ``seed`` itself for the first block (one
        block gives what one pass gives), a distinct one for each later block."""
        return int(seed) if self.number == 0 else (int(seed) * 1_000_003 + self.number) % (1 << 63)


def user_blocks(counts: pl.DataFrame, max_rows: int = BLOCK_ROWS, whole_up_to: int | None = None) -> list[Block]:
    """Blocks of ``counts`` (purpose, user_id, rows: one row per user) in (purpose, user_id)
    order, each at most ``max_rows`` rows unless one user alone has more. A purpose with at
    most ``whole_up_to`` rows (default ``max_rows``) is one block, however small ``max_rows``."""
    missing = sorted({"purpose", "user_id", "rows"} - set(counts.columns))
    if missing:
        raise ValueError(f"user_blocks: expected columns purpose, user_id, rows, found {counts.columns} "
                         f"(missing {missing})")
    if max_rows < 1:
        raise ValueError(f"user_blocks: expected max_rows >= 1, found {max_rows}")
    counts = counts.select("purpose", pl.col("user_id").cast(pl.Int64), pl.col("rows").cast(pl.Int64)).sort(
        "purpose", "user_id")
    blocks: list[Block] = []
    for (purpose,), part in counts.group_by("purpose", maintain_order=True):
        users = part["user_id"].to_numpy()
        rows = part["rows"].to_numpy()
        limit = users.size and (int(rows.sum()) if int(rows.sum()) <= (whole_up_to or max_rows) else max_rows)
        start, number = 0, 0
        while start < users.size:
            total = np.cumsum(rows[start:])
            # at least one user per block, however many rows that user has
            stop = start + max(1, int(np.searchsorted(total, limit, side="right")))
            blocks.append(Block(purpose, int(users[start]), int(users[stop - 1]), number,
                                int(rows[start:stop].sum())))
            start, number = stop, number + 1
    return blocks
