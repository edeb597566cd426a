"""/api/analytics/summary on each store backend: computed on SQL, a clear 501 on Supabase."""
from __future__ import annotations

from tests.helpers import assert_error


def test_summary_per_backend(client, user, backend):
    resp = client.get("/api/analytics/summary", headers=user["headers"])
    if backend == "sql":
        assert resp.status_code == 200 and resp.get_json()["totals"] == {"inbound": 0,
                                                                         "outbound": 0}
    else:
        error = assert_error(resp, 501, "not_implemented")
        assert "DATA_BACKEND=sql" in error["message"]
