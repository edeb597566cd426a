"""A separate process that runs stored webhook events, for the tests that need two processes
on one database (python -m tests.channels._event_process '<json>').

The JSON gives the test app's tmp_path, database URL and settings overrides (the app is
built exactly like the test's, tests/conftest.py:base_settings) and the event ids to run.
The process builds its app, reads what the offline AI needs, prints "ready", waits for a line
on stdin (so that several processes start their runs together), runs the events one after
the other and prints their final statuses as JSON.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from app import create_app
from automation.ai.response_generator import warm_up
from automation.core.event_runner import run_event
from tests.conftest import base_settings


def main() -> None:
    """Build the app, wait for the go, run the events, print their statuses."""
    spec = json.loads(sys.argv[1])
    app = create_app(base_settings(Path(spec["tmp_path"]), spec["database_url"],
                                   **spec["overrides"]))
    with app.app_context():
        warm_up()
        print("ready", flush=True)
        sys.stdin.readline()
        print(json.dumps([run_event(event_id) for event_id in spec["event_ids"]]), flush=True)


if __name__ == "__main__":
    main()
