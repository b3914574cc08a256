"""Property-based fuzzing of the live server with schemathesis, from the project's own OpenAPI document:
no status outside 200/400/401/503, every response conforming to the document (bounded examples)."""

from __future__ import annotations

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from kms_live import LIMITS, SAES
from schemathesis.checks import content_type_conformance, response_schema_conformance, status_code_conformance

from qverify.kms.openapi import openapi_document

schema = schemathesis.openapi.from_dict(openapi_document(LIMITS, sorted(SAES)))


@pytest.fixture(scope="module")
def as_a(live) -> requests.Session:
    s = requests.Session()
    s.cert = (str(live.pki / "SAE_A.pem"), str(live.pki / "SAE_A.key"))
    s.verify = str(live.pki / "ca.pem")
    s.trust_env = False  # else REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE from the environment replace verify
    yield s
    s.close()


@schema.parametrize()
@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
def test_fuzz_key_endpoints(case, live, as_a):
    live.network.advance(1)  # fuzzing consumes key: keep the pool refilling
    r = case.call_and_validate(
        base_url=live.server.addresses["A"],
        session=as_a,
        timeout=10,
        verify=as_a.verify,  # schemathesis passes its own verify otherwise
        cert=as_a.cert,
        checks=[status_code_conformance, content_type_conformance, response_schema_conformance],
    )
    assert r.status_code in (200, 400, 401, 503), (case.method, case.formatted_path, case.query, r.status_code)
    if r.status_code != 200:
        assert isinstance(r.json()["message"], str)
        if r.status_code == 503:  # only the documented reasons: too little key, or no key for this pair
            assert r.json()["message"].startswith(("insufficient amount of key material", "no key is delivered"))


def test_served_document_is_the_fuzzed_one(live, as_a):
    served = as_a.get(live.server.addresses["A"] + "/openapi.json", timeout=10).json()
    assert served == openapi_document(LIMITS, sorted(SAES))
