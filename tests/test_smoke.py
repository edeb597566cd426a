from tests.conftest import auth_header


def test_register_then_me(client, user):
    resp = client.get("/api/auth/me", headers=user["headers"])
    assert resp.status_code == 200
    assert resp.get_json()["email"] == user["user"]["email"]
    assert "password_hash" not in resp.get_json()
