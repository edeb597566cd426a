"""Property-based API run: schemathesis over /api/openapi.json finds no 5xx and no response
that contradicts the spec.

Seeded and bounded (hypothesis `derandomize=True`, a fixed number of examples per operation,
no shrinking), so it is the same run on every machine and takes about a minute; `make test`
runs it on SQLite and on PostgreSQL. The caller is an authenticated administrator, so every
operation is reached past its authentication. SCHEMATHESIS_EXAMPLES raises the budget for a
deeper local run; a summary of what was tried per operation is written to the log.

Every built-in check runs except `positive_data_acceptance`: a schema-valid request may rightly
be refused here (an opaque cursor that no list made is 400 invalid_cursor, an id of nothing
is 404, a plan limit is 402), which that check would call a failure. Graph is the loopback
fake, so connecting a platform never leaves the machine.
"""
from __future__ import annotations

import logging
import os
import traceback

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.fakes.graph import FakeGraph

log = logging.getLogger("dana.tests.schemathesis")
EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "12"))
SHRINK = os.environ.get("SCHEMATHESIS_SHRINK") == "1"
ONLY = os.environ.get("SCHEMATHESIS_ONLY", "")  # e.g. "/api/tasks" while investigating


@pytest.fixture
def fake_graph():
    """Graph on loopback: connecting a platform makes one Graph call, never to the internet."""
    server = FakeGraph().start()
    yield server
    server.stop()


@pytest.fixture
def settings_overrides(fake_graph):
    """The app under test talks to the fake Graph, with tiny retry waits."""
    return {"GRAPH_API_URL": fake_graph.base_url, "GRAPH_RETRY_WAIT_SECONDS": 0.001,
            "GRAPH_RETRY_ATTEMPTS": 2, "GRAPH_TIMEOUT_SECONDS": 3.0}


def _run_operation(operation, mode, headers) -> tuple[int, str | None]:
    """Run one operation in one generation mode; (cases tried, first failure or None)."""
    tried = 0

    @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
              phases=[Phase.explicit, Phase.generate] + ([Phase.shrink] if SHRINK else []),
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case):
        nonlocal tried
        tried += 1
        case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])

    try:
        run()
    except Unsatisfiable:  # nothing invalid to send (an operation without parameters)
        return tried, None
    except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - reported below
        return tried, "".join(traceback.format_exception(exc))[-6000:]
    return tried, None


@pytest.mark.timeout(1200)  # bounded by EXAMPLES; a busy shared machine is slow
def test_api_has_no_server_errors_and_conforms_to_its_spec(app, admin, fake_graph):
    """Every documented operation, valid and invalid inputs: no 5xx, answers as documented."""
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    headers = admin["headers"]
    failures, total, operations = [], 0, 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        if ONLY not in f"{operation.method.upper()} {operation.path}":
            continue
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            tried, failure = _run_operation(operation, mode, headers)
            total += tried
            if failure:
                failures.append(f"{operation.method.upper()} {operation.path} [{mode}]: {failure}")
    dialect = app.config["SQLALCHEMY_DATABASE_URI"].split(":")[0]
    summary = (f"schemathesis on {dialect}: {operations} operations, {total} cases, "
               f"{len(failures)} failing operation/mode pairs")
    log.warning(summary)
    print(summary)
    assert operations > 50
    assert not failures, "\n\n".join(failures)
