"""Events in the shapes AWS delivers them, for invoking the same handler as AWS would."""

from __future__ import annotations

import json
from typing import Any

from regionguard.infra.view import AwsView


def alarm_sns_event(view: AwsView, state: str = "ALARM",
                    message_id: str = "b1c9a4e3-6f0d-4c45-9b4e-1d2c3e4f5a6b") -> dict[str, Any]:
    """The SNS -> Lambda event CloudWatch produces for the primary's Route 53 health-check alarm
    (its alarm and topic live in us-east-1, where Route 53's metrics are)."""
    account = view.names.account
    topic = f"arn:aws:sns:us-east-1:{account}:{view.names.alarm_topic()}"
    name = f"{view.names.app}-PrimaryUnhealthy"
    message = {
        "AlarmName": name, "AlarmDescription": "primary down", "AWSAccountId": account,
        "AlarmConfigurationUpdatedTimestamp": "2026-11-23T10:00:00.000+0000",
        "NewStateValue": state, "NewStateReason": "Threshold Crossed: 1 out of the last 1 "
        "datapoints [0.0 (23/11/26 10:01:00)] was less than the threshold (1.0).",
        "StateChangeTime": "2026-11-23T10:02:00.000+0000", "Region": "US East (N. Virginia)",
        "AlarmArn": f"arn:aws:cloudwatch:us-east-1:{account}:alarm:{name}",
        "OldStateValue": "OK", "OKActions": [], "AlarmActions": [topic],
        "InsufficientDataActions": [],
        "Trigger": {"MetricName": "HealthCheckStatus", "Namespace": "AWS/Route53",
                    "StatisticType": "Statistic", "Statistic": "MINIMUM", "Unit": None,
                    "Dimensions": [{"value": "abcd-1234", "name": "HealthCheckId"}],
                    "Period": 60, "EvaluationPeriods": 1, "DatapointsToAlarm": 1,
                    "ComparisonOperator": "LessThanThreshold", "Threshold": 1.0,
                    "TreatMissingData": "breaching", "EvaluateLowSampleCountPercentile": ""},
    }
    return {"Records": [{
        "EventSource": "aws:sns", "EventVersion": "1.0",
        "EventSubscriptionArn": f"{topic}:0b5a9a4c-1111-2222-3333-444455556666",
        "Sns": {
            "Type": "Notification", "MessageId": message_id, "TopicArn": topic,
            "Subject": f'{state}: "{name}" in US East (N. Virginia)',
            "Message": json.dumps(message), "Timestamp": "2026-11-23T10:02:00.123Z",
            "SignatureVersion": "1", "Signature": "EXAMPLE", "SigningCertUrl": "EXAMPLE",
            "UnsubscribeUrl": "EXAMPLE", "MessageAttributes": {}}}]}
