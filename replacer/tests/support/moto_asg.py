"""Sets up and inspects Auto Scaling groups in a moto server, for replacer/tests/aws.rs.

    python3 moto_asg.py setup ENDPOINT GROUP=SIZE [GROUP=SIZE ...]
        creates a launch template and each group with SIZE instances, and an IAM user allowed
        everything with an access key; then turns on moto's authentication, so that every
        later call must be signed, and rightly, with that key. Prints, as JSON:
        {"groups": {"GROUP": [{"id": ..., "private_ip": ...}, ...], ...},
         "key": {"id": ..., "secret": ...}}
    python3 moto_asg.py describe ENDPOINT
        prints what Auto Scaling knows, as JSON: {"instances": [{"id", "group", "health",
        "lifecycle"}, ...], "desired": {"GROUP": desired capacity, ...}}

Credentials and region come from the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
AWS_DEFAULT_REGION), as the test sets them: any key for setup, the key setup made afterwards.
boto3 here only prepares and checks: the provider under test speaks to moto on its own.
"""

import json
import sys
import urllib.request

import boto3


def clients(endpoint):
    return (
        boto3.client("autoscaling", endpoint_url=endpoint),
        boto3.client("ec2", endpoint_url=endpoint),
    )


def setup(endpoint, specs):
    autoscaling, ec2 = clients(endpoint)
    image = ec2.describe_images()["Images"][0]["ImageId"]
    zone = ec2.describe_availability_zones()["AvailabilityZones"][0]["ZoneName"]
    ec2.create_launch_template(
        LaunchTemplateName="lookout-test",
        LaunchTemplateData={"ImageId": image, "InstanceType": "t3.micro"},
    )
    out = {}
    for spec in specs:
        name, size = spec.split("=")
        size = int(size)
        autoscaling.create_auto_scaling_group(
            AutoScalingGroupName=name,
            LaunchTemplate={"LaunchTemplateName": "lookout-test", "Version": "$Latest"},
            MinSize=0,
            MaxSize=size + 2,
            DesiredCapacity=size,
            AvailabilityZones=[zone],
        )
        group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])
        ids = [i["InstanceId"] for i in group["AutoScalingGroups"][0]["Instances"]]
        reservations = ec2.describe_instances(InstanceIds=ids)["Reservations"]
        ips = {
            i["InstanceId"]: i.get("PrivateIpAddress")
            for r in reservations
            for i in r["Instances"]
        }
        out[name] = [{"id": i, "private_ip": ips.get(i)} for i in ids]
    key = user_with_key(endpoint)
    # From now on moto checks each request's SigV4 signature against IAM's keys.
    urllib.request.urlopen(
        urllib.request.Request(
            endpoint + "/moto-api/reset-auth",
            data=b"0",
            # Not a form, or Flask would take the body for one and moto would read nothing.
            headers={"Content-Type": "text/plain"},
            method="POST",
        )
    ).read()
    print(json.dumps({"groups": out, "key": key}))


def user_with_key(endpoint):
    iam = boto3.client("iam", endpoint_url=endpoint)
    iam.create_user(UserName="lookout-replacer")
    iam.put_user_policy(
        UserName="lookout-replacer",
        PolicyName="everything",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
            }
        ),
    )
    key = iam.create_access_key(UserName="lookout-replacer")["AccessKey"]
    return {"id": key["AccessKeyId"], "secret": key["SecretAccessKey"]}


def describe(endpoint):
    autoscaling, _ = clients(endpoint)
    seen = autoscaling.describe_auto_scaling_instances()["AutoScalingInstances"]
    groups = autoscaling.describe_auto_scaling_groups()["AutoScalingGroups"]
    print(
        json.dumps(
            {
                "instances": [
                    {
                        "id": i["InstanceId"],
                        "group": i["AutoScalingGroupName"],
                        "health": i["HealthStatus"],
                        "lifecycle": i["LifecycleState"],
                    }
                    for i in seen
                ],
                "desired": {
                    g["AutoScalingGroupName"]: g["DesiredCapacity"] for g in groups
                },
            }
        )
    )


def main(argv):
    if len(argv) >= 3 and argv[1] == "setup":
        setup(argv[2], argv[3:])
    elif len(argv) == 3 and argv[1] == "describe":
        describe(argv[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
