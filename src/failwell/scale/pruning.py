"""Skip partitions that a ``--where`` cannot match, from what is known without reading them.

Parquet footers hold each row group's minimum and maximum per column, and partition folders
give a file's value of their columns: ``day >= 20`` cannot match a row group whose ``day``
tops out at 19. :func:`may_match` answers *False* only when those bounds prove that no row
passes; anything it does not understand (a function call, a column without statistics, a
comparison of a date with a string) counts as a possible match, so pruning never drops a row
the filter would keep. The filter itself still runs on every row that is read.
"""

from __future__ import annotations

import ast
import math
import operator
from typing import Any

# column -> (min, max over the partition's non-null values, whether it may hold a null)
Bounds = dict[str, tuple[Any, Any, bool]]

_FLIP = {ast.Lt: ast.Gt, ast.LtE: ast.GtE, ast.Gt: ast.Lt, ast.GtE: ast.LtE,
         ast.Eq: ast.Eq, ast.NotEq: ast.NotEq}


def parse(where: str) -> ast.expr | None:
    """The expression's tree, or None when Python cannot read it (pandas-only syntax)."""
    try:
        return ast.parse(where.strip(), mode="eval").body
    except (SyntaxError, ValueError):
        return None


def names(tree: ast.expr | None) -> set[str]:
    return set() if tree is None else {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}


def may_match(tree: ast.expr | None, bounds: Bounds) -> bool:
    """False only when ``bounds`` prove that no row can pass the expression."""
    if tree is None:
        return True
    try:
        return _may(tree, bounds)
    except Exception:  # incomparable types, odd literals: cannot prove anything
        return True


def _may(node: ast.expr, bounds: Bounds) -> bool:
    if isinstance(node, ast.BoolOp):
        parts = [_may(v, bounds) for v in node.values]
        return all(parts) if isinstance(node.op, ast.And) else any(parts)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitAnd | ast.BitOr):
        left, right = _may(node.left, bounds), _may(node.right, bounds)
        return (left and right) if isinstance(node.op, ast.BitAnd) else (left or right)
    if isinstance(node, ast.Compare):
        terms = [node.left, *node.comparators]
        return all(_pair(terms[i], op, terms[i + 1], bounds)
                   for i, op in enumerate(node.ops))
    return True  # not, ~, calls, attributes: unknown


def _pair(left: ast.expr, op: ast.cmpop, right: ast.expr, bounds: Bounds) -> bool:
    if isinstance(right, ast.Name) and not isinstance(left, ast.Name):
        if type(op) not in _FLIP:
            return True
        left, op, right = right, _FLIP[type(op)](), left
    if not isinstance(left, ast.Name) or left.id not in bounds:
        return True
    low, high, nulls = bounds[left.id]
    if _unusable(low) or _unusable(high):
        return True
    # a null passes `!=` and `not in` (NaN != 5 is True): only a column without nulls
    # can rule them out
    if isinstance(op, ast.In | ast.NotIn):
        if not isinstance(right, ast.List | ast.Tuple | ast.Set):
            return True
        values = [_literal(v) for v in right.elts]
        if isinstance(op, ast.NotIn):
            return nulls or not (low == high and low in values)
        return any(low <= v <= high for v in values)
    value = _literal(right)
    if isinstance(op, ast.Eq):
        return low <= value <= high
    if isinstance(op, ast.NotEq):
        return nulls or not (low == high == value)
    compare = {ast.Lt: operator.lt, ast.LtE: operator.le,
               ast.Gt: operator.gt, ast.GtE: operator.ge}.get(type(op))
    if compare is None:
        return True
    # some row can be below c when the minimum is; above c when the maximum is
    return bool(compare(low, value) if isinstance(op, ast.Lt | ast.LtE)
                else compare(high, value))


def _literal(node: ast.expr) -> Any:
    value = ast.literal_eval(node)
    if isinstance(value, bool | int | float | str):
        return value
    raise TypeError("not a scalar literal")


def _unusable(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
