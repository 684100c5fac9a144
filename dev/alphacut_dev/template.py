"""template.yaml, translated offline: SAM -> CloudFormation with samtranslator, no AWS account.

The local stack creates its resources from this translation, and the tests lint it with cfn-lint.

Usage::

    cfn = translate_template()            # dict: the CloudFormation template
    cfn["Resources"]["CutoutFunction"]["Properties"]["Handler"]
"""

from __future__ import annotations

import json
from pathlib import Path

import boto3
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator
from samtranslator.yaml_helper import yaml_parse

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"


class OfflineManagedPolicies:
    """samtranslator asks IAM for managed policy ARNs only for bare policy names; the template
    uses policy templates and full ARNs, so an empty map keeps the translation offline."""

    def load(self) -> dict[str, str]:
        return {}


LOCAL_CODE_BUCKET = "alphacut-local-code"
_URI_PROPERTIES = {"AWS::Serverless::Function": "CodeUri", "AWS::Serverless::LayerVersion": "ContentUri"}


def load_sam(path: Path = TEMPLATE) -> dict:
    return yaml_parse(path.read_text())


def table_definition(logical: str, table_name: str, template: dict | None = None) -> dict:
    """``create_table`` arguments for the template's table ``logical`` (its keys and indexes), so a
    test's table holds what the stack's does."""
    props = (template or load_sam())["Resources"][logical]["Properties"]
    indexes = (
        {"GlobalSecondaryIndexes": props["GlobalSecondaryIndexes"]}
        if "GlobalSecondaryIndexes" in props
        else {}
    )
    return {
        "TableName": table_name,
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": "PAY_PER_REQUEST",
        **indexes,
    }


def _point_code_at_s3(template: dict, root: Path = ROOT) -> None:
    """SAM only translates S3 code locations (``sam package`` makes them); stand in
    ``s3://alphacut-local-code/<local folder>`` so the folder can be read back from the result.
    A state machine's local DefinitionUri is inlined, as ``sam package`` would upload it."""
    for resource in template.get("Resources", {}).values():
        props = resource.get("Properties") or {}
        if resource.get("Type") == "AWS::Serverless::StateMachine" and isinstance(
            props.get("DefinitionUri"), str
        ):
            props["Definition"] = json.loads((root / props.pop("DefinitionUri")).read_text())
            continue
        prop = _URI_PROPERTIES.get(resource.get("Type"))
        uri = (resource.get("Properties") or {}).get(prop) if prop else None
        if isinstance(uri, str) and not uri.startswith("s3://"):
            resource["Properties"][prop] = f"s3://{LOCAL_CODE_BUCKET}/{uri.strip('/')}"


def local_code_dir(code: dict) -> Path | None:
    """The checkout folder behind a translated ``Code``/``Content`` property, if it is a local one."""
    bucket = code.get("S3Bucket")
    key = code.get("S3Key")
    if bucket == LOCAL_CODE_BUCKET and key:
        return ROOT / key
    return None


DEFAULT_REGION = "us-east-1"


def translate_template(
    path: Path = TEMPLATE, parameters: dict | None = None, region: str = DEFAULT_REGION
) -> dict:
    """The CloudFormation template; ``region`` fills AWS::Region where SAM needs it (ARNs)."""
    return translate_sam(load_sam(path), parameters, region)


def translate_sam(template: dict, parameters: dict | None = None, region: str = DEFAULT_REGION) -> dict:
    """A SAM template already loaded (tests change one before translating it)."""
    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name=region))
    _point_code_at_s3(template)
    translated = translator.translate(
        template,
        parameter_values=dict(parameters or {}),
        get_managed_policy_map=OfflineManagedPolicies().load,
    )
    return json.loads(json.dumps(translated))  # plain dicts and lists


def main() -> None:
    print(json.dumps(translate_template(), indent=2))


if __name__ == "__main__":
    main()
