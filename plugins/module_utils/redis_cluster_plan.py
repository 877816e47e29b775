# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Redis Cluster rebalance plan, computed the way ``redis-cli --cluster rebalance`` computes it.

Pure computation over (masters in cluster order, their slots, weights): no server, no redis-py.
Given the same input, :func:`plan_rebalance` returns the same moves as redis-cli 7.0
(``clusterManagerCommandRebalance`` and ``clusterManagerComputeReshardTable`` in redis-cli.c),
so a plan can be checked against the reference tool and unit-tested without servers.

Where redis-cli's arithmetic matters for the result it is reproduced on purpose:

- weights, the total weight and each node's share are C ``float`` (single precision) values,
  and the expected slot count is truncated toward zero by the ``(int)`` cast;
- the sort of nodes by balance is stable (glibc's ``qsort`` is a merge sort for arrays of this
  size, so nodes with equal balance keep cluster order), which decides which node gives to which;
- a source always gives its lowest-numbered slots first.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

CLUSTER_SLOTS = 16384
DEFAULT_THRESHOLD = 2.0


class PlanError(ValueError):
    """The input cannot give a plan (no weight at all, inconsistent slot counts)."""


@dataclass(frozen=True)
class SlotMove:
    """One step of the plan: ``slots`` (ascending) go from ``source`` to ``target``."""

    source: str
    target: str
    slots: tuple[int, ...]


@dataclass(frozen=True)
class RebalancePlan:
    """The moves, and the numbers redis-cli derives them from (for reports and tests)."""

    moves: tuple[SlotMove, ...]
    needed: bool
    nodes_involved: tuple[str, ...]
    total_weight: float
    expected: Mapping[str, int]
    balance: Mapping[str, int]

    def final_slots(self, masters: Sequence[tuple[str, Iterable[int]]]) -> dict[str, set[int]]:
        """Slots of every master once the plan has run."""
        result = {node_id: set(slots) for node_id, slots in masters}
        for move in self.moves:
            result[move.source].difference_update(move.slots)
            result[move.target].update(move.slots)
        return result


def f32(value: float) -> float:
    """Round to single precision, as a C ``float`` holds it."""
    return struct.unpack("f", struct.pack("f", value))[0]


def plan_rebalance(
    masters: Sequence[tuple[str, Iterable[int]]],
    weights: Mapping[str, float] | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    use_empty_masters: bool = False,
) -> RebalancePlan:
    """Return redis-cli's rebalance plan.

    ``masters`` lists ``(node_id, slots)`` in the order redis-cli loads the cluster: the node it
    connects to first, then the others in that node's ``CLUSTER NODES`` order. ``weights`` maps
    node ids to weights (default 1). Like redis-cli, a ``threshold`` of 0 or less never finds a
    rebalance needed; callers that offer a threshold should refuse such a value.
    """
    weights = weights or {}
    slots = {node_id: sorted(set(node_slots)) for node_id, node_slots in masters}
    order = [node_id for node_id, node_slots in masters]
    weight = {node_id: f32(float(weights.get(node_id, 1.0))) for node_id in order}
    involved = [node_id for node_id in order if use_empty_masters or slots[node_id]]
    total_weight = 0.0
    for node_id in involved:
        total_weight = f32(total_weight + weight[node_id])
    if not involved or total_weight <= 0:
        raise PlanError("the masters taking part have a total weight of 0: give at least one a weight above 0")

    expected = _expected_slots(involved, weight, total_weight)
    balance = {node_id: len(slots[node_id]) - expected[node_id] for node_id in involved}
    if not _over_threshold(involved, slots, expected, f32(threshold)):
        return RebalancePlan((), False, tuple(involved), total_weight, expected, dict(balance))

    _absorb_rounding(involved, balance)
    reported_balance = dict(balance)
    moves = _match_givers_and_takers(sorted(involved, key=balance.__getitem__), balance, slots)
    return RebalancePlan(tuple(moves), True, tuple(involved), total_weight, expected, reported_balance)


def _expected_slots(involved: list[str], weight: Mapping[str, float], total_weight: float) -> dict[str, int]:
    share = f32(CLUSTER_SLOTS / total_weight)
    return {node_id: int(f32(share * weight[node_id])) for node_id in involved}


def _over_threshold(
    involved: list[str], slots: Mapping[str, list[int]], expected: Mapping[str, int], threshold: float
) -> bool:
    """Whether any node is further from its share than ``threshold`` percent."""
    if threshold <= 0:
        return False
    for node_id in involved:
        count = len(slots[node_id])
        if count > 0:
            if math.fabs(100 - (100.0 * expected[node_id] / count)) > threshold:
                return True
        elif expected[node_id] > 1:
            return True
    return False


def _absorb_rounding(involved: list[str], balance: dict[str, int]) -> None:
    """Expected counts are rounded down, so givers can outnumber takers: make up the difference.

    redis-cli walks the nodes in cluster order, one slot at a time, giving each node that is not
    a giver one more slot to take, until the balances sum to zero.
    """
    total = sum(balance.values())
    while total > 0:
        for node_id in involved:
            if balance[node_id] <= 0 and total > 0:
                balance[node_id] -= 1
                total -= 1


def _match_givers_and_takers(
    ordered: list[str], balance: dict[str, int], slots: dict[str, list[int]]
) -> list[SlotMove]:
    """Pair the node that must take most with the node that must give most, until all are even."""
    moves: list[SlotMove] = []
    dst_idx, src_idx = 0, len(ordered) - 1
    while dst_idx < src_idx:
        dst, src = ordered[dst_idx], ordered[src_idx]
        count = min(abs(balance[dst]), abs(balance[src]))
        if count > 0:
            if len(slots[src]) < count:
                raise PlanError("node %s must give %d slots but holds %d" % (src, count, len(slots[src])))
            taken, slots[src] = slots[src][:count], slots[src][count:]
            slots[dst] = sorted(slots[dst] + taken)
            moves.append(SlotMove(src, dst, tuple(taken)))
        balance[dst] += count
        balance[src] -= count
        if balance[dst] == 0:
            dst_idx += 1
        if balance[src] == 0:
            src_idx -= 1
    return moves


def slot_ranges(slots: Iterable[int]) -> list[tuple[int, int]]:
    """Contiguous ``(first, last)`` ranges of a set of slots, ascending."""
    ranges: list[tuple[int, int]] = []
    for slot in sorted(set(slots)):
        if ranges and ranges[-1][1] == slot - 1:
            ranges[-1] = (ranges[-1][0], slot)
        else:
            ranges.append((slot, slot))
    return ranges


def format_slot_ranges(slots: Iterable[int]) -> list[str]:
    """Ranges as redis-cli prints them: ``0-1364``, ``5461``."""
    return ["%d" % first if first == last else "%d-%d" % (first, last) for first, last in slot_ranges(slots)]
