from tests.factories import Harness


def test_quick_flow(harness: Harness) -> None:
    owner = harness.user()
    org = harness.org(owner)
    project = harness.project(owner, org["id"])
    key = harness.key(owner, project["id"])
    assert key["key"].startswith("sk_live_")
    response = harness.backend("/v1/backend/project", key["key"])
    assert response.status_code == 200, response.text
    assert response.json()["project"]["id"] == project["id"]
