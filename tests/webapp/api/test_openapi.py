"""The OpenAPI document is served, names every route, and the API keeps to it:
schemathesis sends generated requests (valid and invalid) to every operation, with a
valid token, and checks that no answer is a 5xx and every answer matches the document."""

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from webapp.api.leads import LIST_PARAMETERS
from webapp.api.openapi import DOCUMENT

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def routes_of(document: dict) -> set[tuple[str, str]]:
    return {(path, method) for path, item in document["paths"].items() for method in item}


def test_the_document_is_public_json(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200 and response.is_json
    assert response.get_json()["openapi"].startswith("3.1")


def test_every_route_is_in_the_document_and_nothing_else(app):
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("api."):
            path = rule.rule.removeprefix("/api/v1").replace("<int:", "{").replace(">", "}")
            routes |= {(path, method.lower()) for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert routes == routes_of(DOCUMENT)


def test_the_lead_list_documents_every_filter():
    parameters = DOCUMENT["paths"]["/leads"]["get"]["parameters"]
    assert [parameter["name"] for parameter in parameters] == list(LIST_PARAMETERS)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_the_api_keeps_to_its_document(app, api, mode):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    # (schemathesis leaves out the document itself)
    assert len(operations) == len(routes_of(DOCUMENT) - {("/openapi.json", "get")})
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=30,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def call(case):
            case.call_and_validate(headers=api.headers(), checks=CHECKS)

        call()


def test_every_operation_with_a_bearer_names_its_scope_and_its_403():
    for path, item in DOCUMENT["paths"].items():
        for method, operation in item.items():
            if path in ("/openapi.json", "/oauth/token"):
                assert operation["security"] == []
                continue
            scope = "read" if method == "get" else "leads"
            assert operation["security"] == [{"apiToken": [scope]}, {"oauth2": [scope]}], path
            assert "403" in operation["responses"], (path, method)
    flows = DOCUMENT["components"]["securitySchemes"]["oauth2"]["flows"]
    assert set(flows["clientCredentials"]["scopes"]) == {"read", "leads"}


def test_the_lead_and_the_attempt_objects_are_documented_field_by_field(app, api, tenant_a):
    """What shapes.py writes is what the document lists (the campaign included)."""
    lead = api.get(f"/leads/{tenant_a.lead_id}").get_json()
    [attempt] = api.get(f"/leads/{tenant_a.lead_id}/attempts").get_json()["attempts"]
    schemas = DOCUMENT["components"]["schemas"]
    assert set(lead) == set(schemas["Lead"]["properties"]) == set(schemas["Lead"]["required"])
    assert set(attempt) == set(schemas["Attempt"]["properties"])
    assert set(lead["campaign"]) == set(attempt["campaign"]) == {"id", "key"}
    assert "campaign" in schemas["NewLead"]["properties"]
