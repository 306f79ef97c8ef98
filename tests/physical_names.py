#!/usr/bin/env python3
"""Print the physical names a stack of TEMPLATE named STACK_NAME would create, as JSON.

Expands AWS::LanguageExtensions (Fn::ForEach) with the SAM CLI's own code, then runs the SAM
translator, as `sam validate` does, offline. tests/tests/template_stack.rs compares two stacks.

Usage: physical_names.py TEMPLATE STACK_NAME
Each line of the output names a resource, its type, its name property and the name (null when
the template leaves it to CloudFormation, which makes it unique per stack). A resource type
this script does not know is an error, so a new one must be classified here.
"""

import json
import sys

try:
    import boto3
    from samcli.lib.cfn_language_extensions.sam_integration import expand_language_extensions
    from samcli.yamlhelper import yaml_parse
    from samtranslator.parser import parser
    from samtranslator.translator.translator import Translator
except ImportError as e:
    sys.exit(f"physical_names.py needs the SAM CLI in this python3 (scripts/python-env installs it): {e}")

# The property holding each type's physical name.
NAME_PROPERTY = {
    "AWS::CloudTrail::Trail": "TrailName",
    "AWS::CloudWatch::Alarm": "AlarmName",
    "AWS::CloudWatch::Dashboard": "DashboardName",
    "AWS::Cognito::UserPool": "UserPoolName",
    "AWS::EC2::SecurityGroup": "GroupName",
    "AWS::Events::Rule": "Name",
    "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
    "AWS::IAM::Role": "RoleName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::Lambda::LayerVersion": "LayerName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::S3::Bucket": "BucketName",
    "AWS::Scheduler::Schedule": "Name",
    "AWS::Scheduler::ScheduleGroup": "Name",
    "AWS::SecretsManager::Secret": "Name",
    "AWS::SNS::Topic": "TopicName",
    "AWS::SQS::Queue": "QueueName",
}
# Types with no name of their own (they attach to a resource that has one; an inline
# policy's name is unique only within its role).
NAMELESS = {
    "AWS::EC2::VPCEndpoint",
    "AWS::IAM::Policy",
    "AWS::Lambda::Alias",
    "AWS::Lambda::EventInvokeConfig",
    "AWS::Lambda::Permission",
    "AWS::Lambda::Url",
    "AWS::Lambda::Version",
    "AWS::S3::BucketPolicy",
    "AWS::SQS::QueuePolicy",
}

REGION = "us-east-1"
ACCOUNT = "123456789012"


def resolve(value, stack):
    """A name as a string; what only CloudFormation can resolve becomes stack-specific text."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        (fn, arg), = value.items()
        if fn == "Ref":
            return f"{stack}/{arg}"
        if fn == "Fn::GetAtt":
            return f"{stack}/{'.'.join(arg) if isinstance(arg, list) else arg}"
        if fn == "Fn::Join":
            return arg[0].join(resolve(v, stack) for v in arg[1])
    # Anything else (Fn::If, Fn::Select, ...) is printed as is and compared verbatim.
    return json.dumps(value, sort_keys=True)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    path, stack = sys.argv[1], sys.argv[2]
    with open(path, encoding="utf-8") as f:
        template = yaml_parse(f.read())
    params = {
        "AWS::StackName": stack,
        "AWS::Region": REGION,
        "AWS::AccountId": ACCOUNT,
        "AWS::Partition": "aws",
        # Two callers, so the Fn::ForEach expands to real resources.
        "IpChangeCallerArns": f"arn:aws:iam::{ACCOUNT}:user/a,arn:aws:iam::{ACCOUNT}:role/b",
        "DbSecretArn": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:db",
        "DatabaseSecurityGroupId": "sg-0123456789abcdef0",
    }
    template = expand_language_extensions(template, parameter_values=params, enabled=True).expanded_template
    # The translator takes only S3 code locations, as `sam validate` does.
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://bucket/code.zip"
    translated = Translator(
        managed_policy_map=None,
        sam_parser=parser.Parser(),
        plugins=[],
        boto_session=boto3.Session(region_name=REGION),
    ).translate(sam_template=template, parameter_values=params, get_managed_policy_map=lambda: {})

    names, unknown = [], []
    for logical_id, resource in translated["Resources"].items():
        kind = resource["Type"]
        # A custom resource is whatever its function makes; it claims no name of its own.
        if kind in NAMELESS or kind.startswith("Custom::"):
            continue
        if kind not in NAME_PROPERTY:
            unknown.append(f"{logical_id} ({kind})")
            continue
        prop = NAME_PROPERTY[kind]
        value = resource.get("Properties", {}).get(prop)
        names.append({
            "resource": logical_id,
            "type": kind,
            "property": prop,
            "name": None if value is None else resolve(value, stack),
        })
    if unknown:
        sys.exit(f"physical_names.py: classify these types in NAME_PROPERTY or NAMELESS: {', '.join(unknown)}")
    json.dump(names, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
