"""Runs named cases of cases.py in this process, one JSON line per finished case on stdout:

    python tests/robustness/run_cases.py CASE [CASE ...]

{"name", "outcome": "returned" | "raised", "type", "message"}. Each line is flushed before the next case
starts, so when the process dies (segfault, abort) the first case without a line is the one that killed
it. The workspace limit is reset before every case (some cases lower it).
"""
from __future__ import annotations

import faulthandler
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import convkit  # noqa: E402
from cases import CASES, PROBES  # noqa: E402

RUNNABLE = {**CASES, **PROBES}


def run(name: str) -> dict:
    convkit.set_workspace_limit(convkit.workspace.DEFAULT_WORKSPACE_LIMIT)
    try:
        RUNNABLE[name].run()
    except BaseException as err:  # noqa: BLE001 - the report says what was raised
        return {"name": name, "outcome": "raised", "type": type(err).__name__,
                "mro": [c.__name__ for c in type(err).__mro__], "message": str(err)}
    return {"name": name, "outcome": "returned"}


if __name__ == "__main__":
    faulthandler.enable()
    for case_name in sys.argv[1:]:
        print(json.dumps(run(case_name)), flush=True)
