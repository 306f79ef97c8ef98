#!/usr/bin/env python3
"""Seeds and shows the local stack's AWS side (moto) for scripts/run-local.

  local_aws.py group NAME            ensure a security group, print its id
  local_aws.py rules GROUP           print the group's ingress rules
  local_aws.py open GROUP CIDR       open port 5432 to CIDR by hand, as in the console
  local_aws.py pool NAME             ensure a user pool, print its id
  local_aws.py confirmed-user POOL USERNAME   ensure a confirmed user, print its sub
"""
import sys

import boto3

ec2 = boto3.client("ec2")
idp = boto3.client("cognito-idp")


def group(name):
    found = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [name]}])["SecurityGroups"]
    if found:
        return found[0]["GroupId"]
    return ec2.create_security_group(GroupName=name, Description="local RDS security group")["GroupId"]


def rules(group_id):
    out = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group_id]}])
    ingress = [r for r in out["SecurityGroupRules"] if not r["IsEgress"]]
    if not ingress:
        return "  (no ingress rules)"
    return "\n".join(
        f"  {r['SecurityGroupRuleId']}  {r['IpProtocol']} {r['FromPort']}-{r['ToPort']}  "
        f"{r.get('CidrIpv4') or r.get('CidrIpv6')}  {r.get('Description', '')}"
        for r in ingress
    )


def open_port(group_id, cidr):
    ec2.authorize_security_group_ingress(
        GroupId=group_id,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "IpRanges": [{"CidrIp": cidr}]}],
    )
    return f"opened 5432 to {cidr} in {group_id}"


def pool(name):
    for p in idp.list_user_pools(MaxResults=60)["UserPools"]:
        if p["Name"] == name:
            return p["Id"]
    return idp.create_user_pool(PoolName=name)["UserPool"]["Id"]


def confirmed_user(pool_id, username):
    try:
        idp.admin_get_user(UserPoolId=pool_id, Username=username)
    except idp.exceptions.UserNotFoundException:
        idp.admin_create_user(
            UserPoolId=pool_id,
            Username=username,
            MessageAction="SUPPRESS",
            UserAttributes=[{"Name": "email", "Value": f"{username}@example.com"}, {"Name": "email_verified", "Value": "true"}, {"Name": "name", "Value": username.title()}],
        )
        idp.admin_set_user_password(UserPoolId=pool_id, Username=username, Password="Local-Passw0rd!", Permanent=True)
    attrs = idp.admin_get_user(UserPoolId=pool_id, Username=username)["UserAttributes"]
    return next(a["Value"] for a in attrs if a["Name"] == "sub")


commands = {"group": group, "rules": rules, "open": open_port, "pool": pool, "confirmed-user": confirmed_user}
if len(sys.argv) < 2 or sys.argv[1] not in commands:
    sys.exit(__doc__)
print(commands[sys.argv[1]](*sys.argv[2:]))
