#!/usr/bin/env python3
"""Seeds a running moto server for Bascule's AWS tests.

usage: moto-seed.py ENDPOINT_URL [--cluster NAME]...

Creates, in account 123456789012, us-east-1:
  - IAM user `bascule-hub` with an access key and a policy allowing eks:DescribeCluster,
    sts:AssumeRole and sts:GetCallerIdentity (the operator's identity);
  - IAM role `bascule-member` that the hub may assume;
  - IAM user `intruder` with an access key and no permission;
  - one EKS cluster per --cluster (default: shop-prod).
IAM enforcement stays off (moto's default); a test turns it on with POST /moto-api/reset-auth
when it wants unknown keys refused and IAM policies applied. Prints one JSON object: the keys (test data; moto's), the role ARN and the clusters.
"""

import json
import sys

import boto3


def main() -> None:
    endpoint = sys.argv[1]
    clusters = [sys.argv[i + 1] for i, a in enumerate(sys.argv) if a == "--cluster"] or ["shop-prod"]
    session = boto3.session.Session(
        aws_access_key_id="AKIASEEDSEEDSEEDSEED",
        aws_secret_access_key="seed",
        region_name="us-east-1",
    )
    iam = session.client("iam", endpoint_url=endpoint)
    eks = session.client("eks", endpoint_url=endpoint)

    allow = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["eks:DescribeCluster", "sts:AssumeRole", "sts:GetCallerIdentity"],
                "Resource": "*",
            }
        ],
    }
    iam.create_user(UserName="bascule-hub")
    iam.put_user_policy(UserName="bascule-hub", PolicyName="bascule", PolicyDocument=json.dumps(allow))
    hub = iam.create_access_key(UserName="bascule-hub")["AccessKey"]
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::123456789012:user/bascule-hub"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    role = iam.create_role(RoleName="bascule-member", AssumeRolePolicyDocument=json.dumps(trust))["Role"]
    iam.put_role_policy(RoleName="bascule-member", PolicyName="bascule", PolicyDocument=json.dumps(allow))
    iam.create_user(UserName="intruder")
    intruder = iam.create_access_key(UserName="intruder")["AccessKey"]
    for name in clusters:
        eks.create_cluster(
            name=name,
            roleArn=role["Arn"],
            resourcesVpcConfig={"subnetIds": []},
        )

    print(
        json.dumps(
            {
                "hub": {"id": hub["AccessKeyId"], "secret": hub["SecretAccessKey"]},
                "intruder": {"id": intruder["AccessKeyId"], "secret": intruder["SecretAccessKey"]},
                "role_arn": role["Arn"],
                "clusters": clusters,
            }
        )
    )


if __name__ == "__main__":
    main()
