"""The JSON request bodies are parsed with: the bounds of ``refmatch.domain.limits`` at the door.

Flask hands every ``request.get_json()`` (and so spectree's validation) to ``app.json.loads``;
this one turns what Python's parser would accept but no field may hold into InvalidInput
(400, naming where): nesting deeper than MAX_DEPTH (10,000 levels used to raise RecursionError,
a 500), lone surrogates such as ``"\\ud800"`` (which cannot be stored as UTF-8), and the
non-standard NaN and Infinity (and numbers like 1e999 that overflow to infinity).
"""

from __future__ import annotations

import json
import math
from typing import Any

from flask.json.provider import DefaultJSONProvider

from refmatch.domain.errors import InvalidInput
from refmatch.domain.limits import MAX_DEPTH, json_problem


def _refuse(where: str, what: str) -> InvalidInput:
    return InvalidInput(f"{where}: {what}", details=[{"field": where, "message": what}])


def _constant(name: str) -> float:
    raise _refuse("body", f"{name} is not a JSON number")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _refuse("body", f"the number {text[:40]} is too large")
    return value


class BoundedJSON(DefaultJSONProvider):
    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        try:
            value = json.loads(s, parse_constant=_constant, parse_float=_float, **kwargs)
        except RecursionError:
            raise _refuse("body", f"JSON nested deeper than {MAX_DEPTH} levels") from None
        if problem := json_problem(value):
            raise _refuse(*problem)
        return value
