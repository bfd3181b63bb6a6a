"""Ranks from the field's launchers: ``torchrun``, ``accelerate launch`` and SLURM's ``srun``.

The suite has no launcher of its own and uses no collectives: each rank is an independent
process that runs a strided shard of the samples (``--shard RANK/WORLD_SIZE``) on its own
device (``cuda:LOCAL_RANK`` when ``--device cuda``), writes its own record files, and
``iretouch-bench aggregate`` merges them afterwards. So a launcher only has to tell a process
who it is, which all three do through environment variables:

* ``torchrun`` and ``accelerate launch`` (which runs torchrun underneath): ``RANK``,
  ``WORLD_SIZE``, ``LOCAL_RANK`` (``LOCAL_WORLD_SIZE`` too);
* SLURM (``srun``): ``SLURM_PROCID``, ``SLURM_NTASKS``, ``SLURM_LOCALID``.

The torch variables win when both are present (``srun torchrun ...`` sets both, and torchrun's
are the ones that describe the worker processes).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

from ..core.errors import BenchError

#: (rank, world size, local rank) variable names per launcher family, in priority order
_SOURCES = (
    ("torchrun", "RANK", "WORLD_SIZE", "LOCAL_RANK"),
    ("slurm", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID"),
)


@dataclass(frozen=True)
class Rank:
    """Who this process is among the ranks of one launch."""

    rank: int
    world_size: int
    local_rank: int
    #: which variables said so: ``"torchrun"`` (also accelerate) or ``"slurm"``
    source: str

    @property
    def shard(self) -> tuple[int, int]:
        """The strided shard this rank runs: ``(rank, world_size)``."""
        return self.rank, self.world_size


def _int(env: Mapping[str, str], name: str) -> int | None:
    value = env.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise BenchError(f"launcher variable {name}={value!r} is not an integer") from None


def detect_rank(env: Mapping[str, str] | None = None) -> Rank | None:
    """The rank a launcher gave this process, or None when it was not started by one (or by a
    launch of a single process, which needs no sharding)."""
    env = os.environ if env is None else env
    for source, r_name, n_name, l_name in _SOURCES:
        rank, world = _int(env, r_name), _int(env, n_name)
        if rank is None or world is None:
            continue
        local = _int(env, l_name)
        if world < 1 or not 0 <= rank < world:
            raise BenchError(f"launcher variables {r_name}={rank} {n_name}={world}: need 0 <= rank < world size")
        if world == 1:
            return None
        return Rank(rank=rank, world_size=world, local_rank=rank if local is None else local, source=source)
    return None


def rank_device(device: str, rank: Rank | None) -> str:
    """The device this rank uses: ``cuda`` becomes ``cuda:LOCAL_RANK`` under a launcher; an
    explicit ``cuda:K`` and ``cpu`` are kept as given."""
    if rank is not None and device == "cuda":
        return f"cuda:{rank.local_rank}"
    return device


def resolve_shard(shard: tuple[int, int] | None, rank: Rank | None) -> tuple[int, int] | None:
    """``--shard`` given by hand, or the launcher's; both at once must agree (one clear error)."""
    if rank is None:
        return shard
    if shard is not None and tuple(shard) != rank.shard:
        raise BenchError(f"--shard {shard[0]}/{shard[1]} disagrees with the launcher ({rank.source}: rank "
                         f"{rank.rank} of {rank.world_size}); drop --shard under a launcher")
    return rank.shard
