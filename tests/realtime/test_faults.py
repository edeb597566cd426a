"""Redis unreachable at start: every entry point stops at once with an error naming REDIS_URL
(no stack trace, no restart loop)."""
from __future__ import annotations

import subprocess

import pytest

from tests.realtime.conftest import PYTHON, ROOT, free_port, process_env

ENTRY_POINTS = {
    "python main.py": [PYTHON, str(ROOT / "main.py")],
    "flask worker": [PYTHON, "-m", "flask", "--app", "main", "worker"],
    "gunicorn": [PYTHON, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), "main:app"],
}


@pytest.mark.parametrize("entry_point", list(ENTRY_POINTS))
def test_unreachable_redis_stops_the_start_with_a_clear_error(tmp_path, entry_point):
    env = process_env(
        DANA_ENV="production", DATABASE_URL=f"sqlite:///{tmp_path / 'dana.db'}",
        INSTANCE_PATH=str(tmp_path / "instance"), SECRET_KEY="s" * 40, JWT_SECRET_KEY="j" * 40,
        ENCRYPTION_KEYS="aGVsbG8taGVsbG8taGVsbG8taGVsbG8taGVsbG8tMTI=",
        REDIS_URL="redis://127.0.0.1:1/0", AUTOMATION_QUEUE="rq",  # nothing listens on port 1
        HOST="127.0.0.1", PORT=str(free_port()))
    try:
        proc = subprocess.run(ENTRY_POINTS[entry_point], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=30,
                              stdin=subprocess.DEVNULL, start_new_session=True)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{entry_point} kept running with Redis unreachable")
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "dana: configuration error: REDIS_URL" in proc.stderr
    assert "redis://127.0.0.1:1/0" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
