# Per region: alarms on what matters for failover (replica lag above the RPO target, 5xx or app
# Lambda errors, guard errors) to the region's operations topic. In one call (trigger), in
# us-east-1 (where Route 53 health-check metrics live): an extra, faster signal, never a
# required one. The HTTPS check of the home primary's /health/deep, its alarm, the SNS topic and
# the subscription that wakes the standby's guard all die with us-east-1, which is why failing
# over never waits for them: the guards' own probes decide. And one dashboard across both
# regions. The same as the CDK app's MonitoringStack and TriggerStack.

resource "aws_sns_topic_subscription" "email" {
  count     = var.alarm_email == null ? 0 : 1
  topic_arn = var.topic_arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

resource "aws_cloudwatch_metric_alarm" "replica_lag" {
  count               = var.replica_lag_instance == null ? 0 : 1
  alarm_name          = "${var.app_name}-${var.label}-replica-lag"
  alarm_description   = "replica lag above the RPO target: a failover would lose more than the target allows"
  namespace           = "AWS/RDS"
  metric_name         = "ReplicaLag"
  dimensions          = { DBInstanceIdentifier = var.replica_lag_instance }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 3
  threshold           = max(1, var.rpo_target_s)
  comparison_operator = "GreaterThanOrEqualToThreshold"
  alarm_actions       = [var.topic_arn]
}

resource "aws_cloudwatch_metric_alarm" "app_errors" {
  count               = var.compute == "lambda" ? 1 : 0
  alarm_name          = "${var.app_name}-${var.label}-app-errors"
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = var.app_function }
  statistic           = "Sum"
  period              = 60
  evaluation_periods  = 2
  threshold           = 5
  comparison_operator = "GreaterThanOrEqualToThreshold"
  alarm_actions       = [var.topic_arn]
}

resource "aws_cloudwatch_metric_alarm" "alb_5xx" {
  count               = var.compute == "ec2" ? 1 : 0
  alarm_name          = "${var.app_name}-${var.label}-alb-5xx"
  namespace           = "AWS/ApplicationELB"
  metric_name         = "HTTPCode_ELB_5XX_Count"
  dimensions          = { LoadBalancer = var.alb_arn_suffix }
  statistic           = "Sum"
  period              = 60
  evaluation_periods  = 2
  threshold           = 10
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [var.topic_arn]
}

resource "aws_cloudwatch_metric_alarm" "guard_errors" {
  count               = var.guard_function == null ? 0 : 1
  alarm_name          = "${var.app_name}-${var.label}-guard-errors"
  alarm_description   = "the guard Lambda failed"
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = var.guard_function }
  statistic           = "Sum"
  period              = 60
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [var.topic_arn]
}

# -- the trigger and the dashboard (us-east-1) -----------------------------------------------

locals {
  trigger = var.trigger == null ? [] : [var.trigger]
}

resource "aws_route53_health_check" "primary_deep" {
  provider          = aws.global
  count             = length(local.trigger)
  type              = "HTTPS"
  fqdn              = var.trigger.primary_host
  port              = 443
  resource_path     = "/health/deep"
  request_interval  = 10
  failure_threshold = 3
  measure_latency   = true
  tags              = { Name = "${var.app_name}-primary-deep" }
}

resource "aws_kms_key" "alarms" {
  provider            = aws.global
  count               = length(local.trigger)
  description         = "regionguard alarm notifications"
  enable_key_rotation = true
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "AccountAdministers"
        Effect    = "Allow"
        Principal = { AWS = "arn:aws:iam::${var.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        Sid       = "AlarmsPublish"
        Effect    = "Allow"
        Principal = { Service = "cloudwatch.amazonaws.com" }
        Action    = ["kms:Decrypt", "kms:GenerateDataKey*"]
        Resource  = "*"
      },
    ]
  })
}

resource "aws_sns_topic" "alarms" {
  provider          = aws.global
  count             = length(local.trigger)
  name              = var.trigger.alarm_topic
  kms_master_key_id = aws_kms_key.alarms[0].arn
}

resource "aws_sns_topic_policy" "alarms" {
  provider = aws.global
  count    = length(local.trigger)
  arn      = aws_sns_topic.alarms[0].arn
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "AlarmsPublish"
        Effect    = "Allow"
        Principal = { Service = "cloudwatch.amazonaws.com" }
        Action    = "sns:Publish"
        Resource  = aws_sns_topic.alarms[0].arn
        Condition = { StringEquals = { "aws:SourceAccount" = var.account_id } }
      },
      {
        Sid       = "TlsOnly"
        Effect    = "Deny"
        Principal = "*"
        Action    = "sns:Publish"
        Resource  = aws_sns_topic.alarms[0].arn
        Condition = { Bool = { "aws:SecureTransport" = "false" } }
      },
    ]
  })
}

resource "aws_cloudwatch_metric_alarm" "primary_unhealthy" {
  provider            = aws.global
  count               = length(local.trigger)
  alarm_name          = "${var.app_name}-primary-unhealthy"
  alarm_description   = "${var.app_name}: primary region's /health/deep failing; wakes the guard, whose vantage points decide"
  namespace           = "AWS/Route53"
  metric_name         = "HealthCheckStatus"
  dimensions          = { HealthCheckId = aws_route53_health_check.primary_deep[0].id }
  statistic           = "Minimum"
  period              = 60
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "LessThanThreshold"
  treat_missing_data  = "breaching"
  alarm_actions       = [aws_sns_topic.alarms[0].arn]
  ok_actions          = [aws_sns_topic.alarms[0].arn]
}

# backup & restore has no guard: the alarm informs people
resource "aws_sns_topic_subscription" "guard" {
  provider  = aws.global
  count     = var.trigger != null && try(var.trigger.subscribe_guard, false) ? 1 : 0
  topic_arn = aws_sns_topic.alarms[0].arn
  protocol  = "lambda"
  endpoint  = var.trigger.guard_arn
}

# one JSON string per widget (their shapes differ), joined into the dashboard's body
locals {
  widget_json = var.trigger == null ? [] : concat(
    [
      jsonencode({
        type = "metric", width = 12, height = 6
        properties = {
          title   = "Primary /health/deep (Route 53)", region = "us-east-1", stat = "Minimum", period = 60
          metrics = [["AWS/Route53", "HealthCheckStatus", "HealthCheckId", aws_route53_health_check.primary_deep[0].id]]
        }
      }),
      jsonencode({
        type = "metric", width = 12, height = 6
        properties = {
          title = "Guard Lambda runs", region = var.trigger.standby_region, stat = "Sum", period = 60
          metrics = flatten([for r in var.trigger.sites : [
            for m in ["Invocations", "Errors"] : ["AWS/Lambda", m, "FunctionName", var.trigger.guard_function, { region = r }]
          ]])
        }
      }),
      jsonencode({
        type = "metric", width = 12, height = 6
        properties = {
          title   = "RTO per failover (s)", region = var.trigger.standby_region, stat = "Maximum", period = 300
          metrics = [["RegionGuard", "RTO", "App", var.app_name]]
        }
      }),
    ],
    var.trigger.replica_instance == null ? [] : [jsonencode({
      type = "metric", width = 12, height = 6
      properties = {
        title   = "Replica lag (s)", region = var.trigger.standby_region, stat = "Maximum", period = 60
        metrics = [["AWS/RDS", "ReplicaLag", "DBInstanceIdentifier", var.trigger.replica_instance]]
      }
    })],
    [length(var.trigger.app_functions) > 0 ? jsonencode({
      type = "metric", width = 12, height = 6
      properties = {
        title   = "App Lambda errors", region = var.trigger.standby_region, stat = "Sum", period = 60
        metrics = [for r, fn in var.trigger.app_functions : ["AWS/Lambda", "Errors", "FunctionName", fn, { region = r }]]
      }
      }) : jsonencode({
      type = "metric", width = 12, height = 6
      properties = {
        title   = "ALB 5xx", region = var.trigger.standby_region, stat = "Sum", period = 60
        metrics = [for r in var.trigger.app_regions : ["AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count", { region = r }]]
      }
    })],
  )
}

resource "aws_cloudwatch_dashboard" "this" {
  provider       = aws.global
  count          = length(local.trigger)
  dashboard_name = "${var.app_name}-regionguard"
  dashboard_body = "{\"widgets\":[${join(",", local.widget_json)}]}"
}
