"""The selection rule of the search: the W-coefficient, the ε-partition of
the candidates by cost and the Pareto front.

W-coefficient (Definition 8 of de Wynter 2020, arXiv 2010.08512, as quoted
by a reimplementation): for a candidate f with parameter count p(f),
inference cost i(f) and error e(f),

    W(f) = |(T_p − p(f)) / T_p| · |(T_i − i(f)) / T_i| · 1 / e(f)

where T_p and T_i are the largest parameter count and inference cost in
the space. The best candidate maximises W. The product of the two cost
factors (``cost_factor``) needs no training; only e(f) does.

ε-partition (the rule trimzoo uses): every candidate sits in the cell
``(⌊p/T_p / ε⌋, ⌊i/T_i / ε⌋)`` of a grid of side ε over the normalised
costs. Inside a cell the cost factors differ by at most about 2ε, so W is
decided by the error, which only training measures; trimzoo trains one
member per cell, the one with the largest cost factor (the cheapest: with
near-equal costs nothing favours the others a priori), and leaves the rest
untrained ("skipped"). With ``epsilon=None`` ε is the smallest of 0.02·1.25^k
that leaves at most ``max_fraction`` of the space to train.

Examples:

>>> round(w_coefficient(p=25, i=2.0, e=0.5, max_p=100, max_i=8.0), 4)
1.125
>>> groups = partition([1, 2, 9, 10], [1.0, 1.1, 9.0, 10.0], epsilon=0.3)
>>> [(g["members"], g["representative"]) for g in groups]
[([0, 1], 0), ([2, 3], 2)]
>>> pareto_front([1.0, 2.0, 3.0], [0.5, 0.2, 0.3])
[0, 1]
"""

import math

import numpy as np


def cost_factor(p, i, max_p, max_i):
    """``|(T_p − p) / T_p| · |(T_i − i) / T_i|``: the part of W that needs
    no training."""
    return abs((max_p - p) / max_p) * abs((max_i - i) / max_i)


#: Errors below this count as this in W: an exact copy of the teacher
#: (error 0) then ranks first among candidates of equal cost instead of
#: dividing by zero.
ERROR_FLOOR = 1e-9


def w_coefficient(p, i, e, max_p, max_i):
    """W(f) (see the module docstring); ``e`` must be >= 0 (floored at
    ``ERROR_FLOOR``); W is 0 wherever a cost factor is 0 (the largest
    candidates)."""
    if not e >= 0:
        raise ValueError(f"The error must be >= 0 for W, got {e}.")
    factor = cost_factor(p, i, max_p, max_i)
    return factor / max(e, ERROR_FLOOR) if factor else 0.0


def partition(params, costs, epsilon):
    """Cells of side ``epsilon`` over the normalised costs.

    Args:
        params: sequence of parameter counts.
        costs: sequence of inference costs.
        epsilon: float in (0, 1].

    Returns:
        list of dicts ``{"cell", "members", "representative"}`` (indices
        into the inputs), ordered by cell.
    """
    if not 0 < epsilon <= 1:
        raise ValueError(f"epsilon must be in (0, 1], got {epsilon}.")
    params = np.asarray(params, "float64")
    costs = np.asarray(costs, "float64")
    max_p, max_i = params.max(), costs.max()
    cells = {}
    for k, (p, i) in enumerate(zip(params, costs)):
        cell = (int(math.floor(p / max_p / epsilon + 1e-9)),
                int(math.floor(i / max_i / epsilon + 1e-9)))
        cells.setdefault(cell, []).append(k)
    groups = []
    for cell in sorted(cells):
        members = cells[cell]
        best = max(members, key=lambda k: (
            cost_factor(params[k], costs[k], max_p, max_i), -k))
        groups.append({"cell": list(cell), "members": members,
                       "representative": best})
    return groups


def choose_epsilon(params, costs, max_fraction, start=0.02, growth=1.25):
    """The smallest ``start · growth^k`` (≤ 1) whose partition has at most
    ``max_fraction`` of the candidates as cells."""
    if not 0 < max_fraction <= 1:
        raise ValueError(f"max_fraction must be in (0, 1], got "
                         f"{max_fraction}.")
    limit = max(1, int(max_fraction * len(params)))
    epsilon = start
    while epsilon < 1 and len(partition(params, costs, epsilon)) > limit:
        epsilon = min(1.0, epsilon * growth)
    return float(epsilon)


def pareto_front(costs, errors):
    """Indices of the candidates no other beats on both cost and error
    (lower is better), by increasing cost."""
    order = sorted(range(len(costs)), key=lambda k: (costs[k], errors[k]))
    front, best = [], math.inf
    for k in order:
        if errors[k] < best:
            front.append(k)
            best = errors[k]
    return front
