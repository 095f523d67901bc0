"""A two-region estate built in moto (in-process), shaped like what the CDK app deploys: the
failover records are the IaC's and carry health checks of each region's `/health/route`; the
engine never edits them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3

from regionguard.aws_naming import names_for
from regionguard.config import Topology
from regionguard.emulated import events
from regionguard.emulated.estate import EMULATED_AMI
from regionguard.infra.view import aws_view

from .topologies import topology

ACCOUNT = "123456789012"
EAST, WEST = "us-east-1", "us-west-2"


@dataclass
class Estate:
    topology: Topology
    zone_id: str
    queue_url: str
    alb: dict[str, str]  # aws region -> ALB DNS name

    def client(self, service: str, region: str) -> Any:
        return boto3.client(service, region_name=region)


def build_estate(topology_for_zone: Any) -> Estate:
    r53 = boto3.client("route53", region_name=EAST)
    zone_id = r53.create_hosted_zone(Name="app.example.com", CallerReference="t")[
        "HostedZone"]["Id"].split("/")[-1]
    topology: Topology = topology_for_zone(zone_id)
    n = names_for(topology)
    alb: dict[str, str] = {}
    for region, desired in ((EAST, 2), (WEST, 0)):
        ec2 = boto3.client("ec2", region_name=region)
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24",
                                     AvailabilityZone=f"{region}{az}")["Subnet"]["SubnetId"]
                   for i, az in enumerate("ab")]
        elb = boto3.client("elbv2", region_name=region)
        lb = elb.create_load_balancer(Name=f"alb-{region}", Subnets=subnets)[
            "LoadBalancers"][0]
        alb[region] = lb["DNSName"]
        tg = elb.create_target_group(Name=f"tg-{region}", Protocol="HTTP", Port=8000,
                                     VpcId=vpc, HealthCheckPath="/health/deep")[
            "TargetGroups"][0]["TargetGroupArn"]
        lt = ec2.create_launch_template(LaunchTemplateName=f"lt-{region}", LaunchTemplateData={
            "ImageId": EMULATED_AMI, "InstanceType": "t3.small"})["LaunchTemplate"][
            "LaunchTemplateId"]
        boto3.client("autoscaling", region_name=region).create_auto_scaling_group(
            AutoScalingGroupName=n.asg(region), MinSize=desired, MaxSize=desired,
            DesiredCapacity=desired, LaunchTemplate={"LaunchTemplateId": lt},
            VPCZoneIdentifier=",".join(subnets), TargetGroupARNs=[tg])
        r53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": [{
            "Action": "CREATE", "ResourceRecordSet": {
                "Name": n.region_host(region), "Type": "A", "AliasTarget": {
                    "HostedZoneId": lb["CanonicalHostedZoneId"], "DNSName": lb["DNSName"],
                    "EvaluateTargetHealth": True}}}]})
        if region == WEST:  # the MRSC arbiter: one table (in-process moto cannot share it;
            # a call to the other replica finds none and moves on, as to a dead replica)
            boto3.client("dynamodb", region_name=region).create_table(
                TableName=n.state_table(), BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
    for region in (EAST, WEST):  # the app's sessions: one replica of the global table each
        boto3.client("dynamodb", region_name=region).create_table(
            TableName=n.sessions_table(), BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}])
    changes = []
    for region, role in ((EAST, "PRIMARY"), (WEST, "SECONDARY")):
        health = r53.create_health_check(CallerReference=f"route-{region}", HealthCheckConfig={
            "Type": "HTTPS", "FullyQualifiedDomainName": n.region_host(region),
            "ResourcePath": "/health/route", "Port": 443})["HealthCheck"]["Id"]
        lbs = boto3.client("elbv2", region_name=region).describe_load_balancers()[
            "LoadBalancers"][0]
        rec: dict[str, Any] = {
            "Name": "app.example.com", "Type": "A", "SetIdentifier":
                "east" if region == EAST else "west", "Failover": role,
            "HealthCheckId": health,
            "AliasTarget": {"HostedZoneId": lbs["CanonicalHostedZoneId"],
                            "DNSName": lbs["DNSName"], "EvaluateTargetHealth": True}}
        changes.append({"Action": "CREATE", "ResourceRecordSet": rec})
    r53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": changes})
    rds_east = boto3.client("rds", region_name=EAST)
    rds_east.create_db_instance(
        DBInstanceIdentifier=n.db_instance(EAST), Engine="postgres",
        DBInstanceClass="db.t4g.medium",
        MasterUsername="regionguard", MasterUserPassword="not-a-secret-1", AllocatedStorage=20,
        MultiAZ=True, StorageEncrypted=True)
    boto3.client("rds", region_name=WEST).create_db_instance_read_replica(
        DBInstanceIdentifier=n.db_instance(WEST),
        SourceDBInstanceIdentifier=n.arn("rds", EAST, f"db:{n.db_instance(EAST)}"),
        DBInstanceClass="db.t4g.medium", SourceRegion=EAST)
    for site in (EAST, "us-east-2"):
        boto3.client("sns", region_name=site).create_topic(Name=n.notify_topic())
    sns = boto3.client("sns", region_name=WEST)
    topic = sns.create_topic(Name=n.notify_topic())["TopicArn"]
    sqs = boto3.client("sqs", region_name=WEST)
    queue_url = sqs.create_queue(QueueName="notifications")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    return Estate(topology, zone_id, queue_url, alb)


def write_report(estate: Estate, vantage: str, target: str, failures: int, at: float,
                 only_over_seeds: bool = False) -> bool:
    """A vantage point's report on `target`, as its guard would have published it at `at`.
    `only_over_seeds`: write only while no guard has published its own report there since;
    False when one has."""
    n = names_for(estate.topology)
    item = {"pk": {"S": f"obs#{target}#{vantage}"}, "vantage": {"S": vantage},
            "target": {"S": target}, "failures": {"N": str(failures)},
            "successes": {"N": "0" if failures else "1"}, "observed_at": {"N": f"{at:.3f}"},
            "detail": {"S": "seeded"}}
    if failures:
        item["failing_since"] = {"N": f"{at - 10:.3f}"}
    condition: dict[str, Any] = {
        "ConditionExpression": "attribute_not_exists(pk) OR detail = :seeded",
        "ExpressionAttributeValues": {":seeded": {"S": "seeded"}}} if only_over_seeds else {}
    client = boto3.client("dynamodb", region_name=WEST)
    try:
        client.put_item(TableName=n.state_table(), Item=item, **condition)
    except client.exceptions.ConditionalCheckFailedException:
        return False
    return True


def alarm_sns_event(state: str = "ALARM", message_id: str = "b1c9a4e3-6f0d-4c45-9b4e-1d2c3e4f5a6b"
                    ) -> dict[str, Any]:
    """The SNS -> Lambda event CloudWatch produces for an alarm state change (real format)."""
    return events.alarm_sns_event(aws_view(topology("pilot-light")), state, message_id)
