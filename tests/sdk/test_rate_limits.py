"""The client against the service's real limiter: a 429 with a Retry-After longer than the client's
`max_retry_wait` is raised at once as RateLimitedError (with `retry_after`), after one request only.
(The retry itself, within the budget, is test_client.py's test of the policy: the limiter's windows
are a minute long.)"""

from __future__ import annotations

import pytest

from seqn_auth import InvalidGrantError, RateLimitedError, SeqnClient
from tests.endusers.support import REDIRECT, CustomerProject
from tests.processes import ApiProcess
from tests.sdk.test_verify import CountingTransport


@pytest.fixture
def service_env() -> dict[str, str]:
    return {"SILVER_RATE_LIMIT_CODE_EXCHANGE_PER_MINUTE": "2"}


def test_a_429_is_typed_and_not_waited_for_past_max_retry_wait(
    service: ApiProcess, project: CustomerProject
) -> None:
    transport = CountingTransport()
    with SeqnClient(service.url, project.secret, max_retry_wait=0.5, transport=transport) as seqn:
        for _ in range(2):
            with pytest.raises(InvalidGrantError):
                seqn.exchange_code("not-a-code", REDIRECT)
        with pytest.raises(RateLimitedError) as limited:
            seqn.exchange_code("not-a-code", REDIRECT)
    error = limited.value
    assert error.status == 429 and error.reason == "rate-limited"
    assert error.retry_after is not None and error.retry_after > 0.5
    assert len(transport.requests) == 3  # the refused one was not retried: its wait is over budget
    assert project.secret not in repr(error) + str(error)
