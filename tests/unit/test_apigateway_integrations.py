"""API Gateway's rules for binary media types and mock integrations, as the local gateway applies
them (a CORS preflight's mock fails under */* unless it converts the request to text)."""

from __future__ import annotations

from alphacut_dev.local.apigateway_integrations import MockIntegration, is_binary

SAM_CORS_MOCK = {  # what SAM's Cors generates: no contentHandling
    "type": "mock",
    "requestTemplates": {"application/json": '{"statusCode": 200}'},
    "responses": {"default": {"statusCode": "200", "responseParameters": {
        "method.response.header.Access-Control-Allow-Origin": "'*'"}}},
}  # fmt: skip


def test_star_slash_star_makes_every_request_binary_even_without_a_content_type():
    assert is_binary(None, ["*/*"]) and is_binary("application/json", ["*/*"])
    assert is_binary("image/png; q=1", ["image/*"]) and not is_binary(None, ["image/*"])
    assert not is_binary("application/json", ["image/*", "multipart/form-data"])


def test_sams_cors_mock_fails_under_star_slash_star_and_answers_with_text_conversion():
    def same(value):
        return value

    broken = MockIntegration.from_swagger(SAM_CORS_MOCK, ["*/*"], same)
    assert broken.fails(None) and broken.fails("text/plain")
    fixed = MockIntegration.from_swagger(
        {**SAM_CORS_MOCK, "contentHandling": "CONVERT_TO_TEXT"}, ["*/*"], same
    )
    assert not fixed.fails(None) and fixed.headers == {"Access-Control-Allow-Origin": "*"}
    assert not MockIntegration.from_swagger(SAM_CORS_MOCK, ["image/*"], same).fails(None)
