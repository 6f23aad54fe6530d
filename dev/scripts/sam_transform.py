#!/usr/bin/env python3
"""Offline AWS SAM -> CloudFormation transform, for linting the generated template.

Usage: sam_transform.py [--region REGION] [--inline-defaults] TEMPLATE OUTPUT_JSON

Runs samtranslator's Translator locally: no AWS credentials, no network. Local code paths
(CodeUri, ContentUri, DefinitionUri) are replaced by placeholder s3:// URIs first, because the
translator only accepts S3 locations (`sam package` does the same replacement for real), and
managed policy names are resolved from the map bundled with samtranslator instead of IAM.

SAM resolves parameter references in some properties (e.g. Api Auth.UsagePlan) at transform time,
using the values CloudFormation passes at deploy time. Offline it would inline the parameter
defaults there, which hides the parameter (cfn-lint then reports it unused) and lints one set of
values only. By default the translator therefore sees the parameters without their defaults, so
such references stay `Ref`s; the output keeps the original Parameters section.
--inline-defaults translates with the defaults instead.
Exit status: 0 on success, 1 on a transform error (messages on stderr).
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import sys
from pathlib import Path
from typing import Any

import boto3
from samtranslator.internal.managed_policies import get_bundled_managed_policy_map
from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.parser.parser import Parser
from samtranslator.translator.arn_generator import ArnGenerator
from samtranslator.translator.translator import Translator
from samtranslator.yaml_helper import yaml_parse

# Property holding a code or definition location, per SAM resource type.
LOCAL_URI_PROPERTIES = {
    "AWS::Serverless::Function": "CodeUri",
    "AWS::Serverless::LayerVersion": "ContentUri",
    "AWS::Serverless::Api": "DefinitionUri",
    "AWS::Serverless::HttpApi": "DefinitionUri",
    "AWS::Serverless::StateMachine": "DefinitionUri",
}
# Types whose Globals section may carry the same property.
GLOBALS_SECTIONS = {"AWS::Serverless::Function": "Function", "AWS::Serverless::Api": "Api", "AWS::Serverless::HttpApi": "HttpApi"}


def _is_local(value: Any) -> bool:
    """A plain string that is not already an S3 URI is a local path (`.`, `functions/x`, ...)."""
    return isinstance(value, str) and not value.startswith("s3://")


def replace_local_uris(template: dict[str, Any]) -> int:
    """Swap local paths for placeholder s3:// URIs in place; returns how many were replaced."""
    replaced = 0
    globals_ = template.get("Globals") or {}
    for rtype, section in GLOBALS_SECTIONS.items():
        prop = LOCAL_URI_PROPERTIES[rtype]
        props = globals_.get(section)
        if isinstance(props, dict) and _is_local(props.get(prop)):
            props[prop] = f"s3://placeholder-bucket/globals-{section.lower()}"
            replaced += 1
    for logical_id, resource in (template.get("Resources") or {}).items():
        if not isinstance(resource, dict):
            continue
        prop = LOCAL_URI_PROPERTIES.get(resource.get("Type", ""))
        props = resource.get("Properties")
        if prop and isinstance(props, dict) and _is_local(props.get(prop)):
            props[prop] = f"s3://placeholder-bucket/{logical_id}"
            replaced += 1
    return replaced


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("template", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--region", default="us-east-1", help="AWS::Region used for pseudo parameters")
    parser.add_argument(
        "--inline-defaults", action="store_true", help="let SAM inline parameter defaults where it resolves refs"
    )
    args = parser.parse_args()
    # The translator warns about feature toggles it has no (remote) config for: offline noise.
    logging.getLogger("samtranslator.feature_toggle").setLevel(logging.ERROR)

    sam = yaml_parse(args.template.read_text(encoding="utf-8"))
    replace_local_uris(sam)
    original_parameters = copy.deepcopy(sam.get("Parameters"))
    if not args.inline_defaults:
        for parameter in (sam.get("Parameters") or {}).values():
            if isinstance(parameter, dict):
                parameter.pop("Default", None)

    # A session with only a region: the translator reads region_name, nothing else.
    session = boto3.session.Session(region_name=args.region)
    partition = ArnGenerator.get_partition_name(args.region)
    policy_map = get_bundled_managed_policy_map(partition) or {}

    try:
        cfn = Translator(None, Parser(), boto_session=session).translate(
            sam, parameter_values={}, get_managed_policy_map=lambda: policy_map
        )
    except InvalidDocumentException as exc:
        print(f"sam_transform: {args.template}: invalid SAM template:", file=sys.stderr)
        for cause in exc.causes:
            print(f"  - {cause.message}", file=sys.stderr)
        return 1

    if original_parameters is not None:
        cfn["Parameters"] = original_parameters

    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(cfn, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
