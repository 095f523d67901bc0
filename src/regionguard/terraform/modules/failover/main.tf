# The guard Lambda (the regionguard engine with AWS providers) in one site. The same function
# runs in both app regions and in the witness Region, each on its own EventBridge Scheduler
# schedule (rate(1 minute)): a vantage point outside whichever region is primary, and, in the
# failover target's Region, the executor of the plan. Nothing here depends on another site.
#
# Its IAM policy is the registry's (providers/aws/iam_actions.py, passed in as `grants`): the
# same statements the CDK app grants, limited to what this deployment has; plus the key of its
# own encrypted topic (and, where the canary credential's primary copy lives, that key).
# Reserved concurrency 3: one run executing a plan, the next scheduled run, and an alarm.

locals {
  events_alias = "alias/${var.app_name}-regionguard-events"
  key_aliases  = compact([local.events_alias, var.admin_key_alias])
}

# named (aws_naming): readiness simulates this role's policy by its ARN
resource "aws_iam_role" "guard" {
  name = var.role_name
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "lambda.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
}

# AWS managed: the function's own log streams
resource "aws_iam_role_policy_attachment" "guard_logs" {
  role       = aws_iam_role.guard.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
}

resource "aws_iam_role_policy" "grants" {
  name = "regionguard-registry"
  role = aws_iam_role.guard.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [for g in var.grants : {
      Effect   = "Allow"
      Action   = g.actions
      Resource = g.resources
    }]
  })
}

# keys by alias (known before they exist): publishing to the encrypted topic, and reading the
# canary credential's primary copy where it lives
resource "aws_iam_role_policy" "keys" {
  name = "regionguard-keys"
  role = aws_iam_role.guard.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat(
      [{
        Sid       = "PublishEncrypted"
        Effect    = "Allow"
        Action    = ["kms:GenerateDataKey*", "kms:Decrypt"]
        Resource  = ["arn:aws:kms:${var.site}:${var.account_id}:key/*"]
        Condition = { "ForAnyValue:StringEquals" = { "kms:ResourceAliases" = [local.events_alias] } }
      }],
      var.admin_key_alias == null ? [] : [{
        Sid       = "ReadCanaryCredential"
        Effect    = "Allow"
        Action    = ["kms:Decrypt"]
        Resource  = ["arn:aws:kms:${var.site}:${var.account_id}:key/*"]
        Condition = { "ForAnyValue:StringEquals" = { "kms:ResourceAliases" = [var.admin_key_alias] } }
      }],
    )
  })
}

resource "aws_kms_key" "events" {
  description         = "regionguard notifications in ${var.site}"
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
        Sid       = "LogsEncrypt"
        Effect    = "Allow"
        Principal = { Service = "logs.${var.site}.amazonaws.com" }
        Action    = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
        Resource  = "*"
      },
    ]
  })
}

resource "aws_kms_alias" "events" {
  name          = local.events_alias
  target_key_id = aws_kms_key.events.key_id
}

resource "aws_sns_topic" "events" {
  name              = var.notify_topic
  kms_master_key_id = aws_kms_key.events.arn
}

resource "aws_sns_topic_policy" "events" {
  arn = aws_sns_topic.events.arn
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "TlsOnly"
      Effect    = "Deny"
      Principal = "*"
      Action    = "sns:Publish"
      Resource  = aws_sns_topic.events.arn
      Condition = { Bool = { "aws:SecureTransport" = "false" } }
    }]
  })
}

resource "aws_cloudwatch_log_group" "guard" {
  #checkov:skip=CKV_AWS_338:the guard's logs are operational, kept one month as in the CDK app; its journal and reports live in the arbiter table
  name              = "/aws/lambda/${var.function_name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.events.arn
}

resource "aws_lambda_function" "guard" {
  #checkov:skip=CKV_AWS_116:run by a schedule with retries off and by the alarm topic: the next minute's run is the retry, and a plan resumes from the arbiter's progress
  #checkov:skip=CKV_AWS_117:the guard calls AWS APIs and each region's public entry point only; a VPC would put a NAT gateway of one region on the failover path
  #checkov:skip=CKV_AWS_173:the environment holds the topology and names only; the canary credential is read from Secrets Manager
  #checkov:skip=CKV_AWS_45:RG_TOPOLOGY is the topology file as JSON (names, Regions, account, settings): no credential is in it
  #checkov:skip=CKV_AWS_272:the bundle is built by this repository (make lambda-bundle) and pinned by its hash; code signing would need a Signer profile the CDK app does not use either
  #checkov:skip=CKV_AWS_50:its runs are journaled in the arbiter table; tracing would add X-Ray actions to the registry's least-privilege role (the CDK app does not trace it either)
  function_name                  = var.function_name
  role                           = aws_iam_role.guard.arn
  runtime                        = var.lambda_runtime
  handler                        = "regionguard.providers.aws.lambda_entry.handler"
  filename                       = var.lambda_bundle_zip
  source_code_hash               = filebase64sha256(var.lambda_bundle_zip)
  timeout                        = 900 # Lambda's maximum; a longer plan is resumed, not lost
  memory_size                    = 512
  reserved_concurrent_executions = 5 # a plan's run, the next minute's, two of the second prober's, an alarm's

  environment {
    variables = {
      RG_TOPOLOGY             = var.topology_json
      RG_STATE_TABLE          = var.state_table
      RG_ADMIN_TOKEN_SECRET   = var.admin_secret # verify's canary credential
      POWERTOOLS_SERVICE_NAME = "regionguard-guard"
      RG_NAMES                = var.names_json
    }
  }

  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.guard.name
  }

  depends_on = [aws_iam_role_policy_attachment.guard_logs, aws_iam_role_policy.grants, aws_iam_role_policy.keys]
}

resource "aws_iam_role" "schedule" {
  name_prefix = "${var.app_name}-rg-sched-"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "scheduler.amazonaws.com" }
      Action    = "sts:AssumeRole"
      Condition = { StringEquals = { "aws:SourceAccount" = var.account_id } }
    }]
  })
}

resource "aws_iam_role_policy" "schedule" {
  name = "invoke-guard"
  role = aws_iam_role.schedule.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect   = "Allow"
      Action   = ["lambda:InvokeFunction"]
      Resource = [aws_lambda_function.guard.arn] # the function itself, no version wildcard
    }]
  })
}

locals {
  # the guard's run every minute, and in an app region its second prober's (reports only:
  # outside either primary there are then three vantage points, and losing the witness's
  # guard leaves a quorum of two)
  every_schedule = {
    guard = {
      input = jsonencode({ regionguard = "guard" }), what = "guard run", prefix = "guard"
    }
    second_prober = {
      input  = jsonencode({ regionguard = "guard", prober = "b" })
      what   = "second prober (reports only)"
      prefix = "prober"
    }
  }
  schedules = { for k, v in local.every_schedule : k => v if k == "guard" || var.second_prober }
}

resource "aws_scheduler_schedule" "guard" {
  #checkov:skip=CKV_AWS_297:the schedule's only data is its constant input ({"regionguard": "guard"}, and the second prober's "prober": "b"); EventBridge Scheduler's own key encrypts it
  for_each            = local.schedules
  name_prefix         = "${var.app_name}-rg-${each.value.prefix}-"
  description         = "${var.app_name}: the regionguard ${each.value.what} in ${var.site}"
  schedule_expression = "rate(1 minute)"

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = aws_lambda_function.guard.arn
    role_arn = aws_iam_role.schedule.arn
    input    = each.value.input
    retry_policy {
      maximum_retry_attempts = 0 # the next minute's run is the retry
    }
  }
}

# the schedules as they were before they became one resource
moved {
  from = aws_scheduler_schedule.guard
  to   = aws_scheduler_schedule.guard["guard"]
}

moved {
  from = aws_scheduler_schedule.second_prober[0]
  to   = aws_scheduler_schedule.guard["second_prober"]
}

# the extra, faster signal: the Route 53 alarm of the primary (us-east-1) wakes the standby's guard
resource "aws_lambda_permission" "alarm" {
  count         = var.alarm_topic_arn == null ? 0 : 1
  statement_id  = "FromAlarmTopic"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.guard.function_name
  principal     = "sns.amazonaws.com"
  source_arn    = var.alarm_topic_arn
}
