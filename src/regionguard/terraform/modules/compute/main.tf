# Per region: the app's compute and its entry point, plus the /health-check API (seed 004).
#
# EC2: an internet-facing ALB (HTTPS, AWS WAF) in front of an Auto Scaling group from a launch
# template whose user data installs the app from the wheelhouse this repo builds; the standby of
# pilot light (and backup & restore) runs 0/0/0. Lambda: the same app behind an API Gateway HTTP
# API. The same as the CDK app's ComputeStack; the DNS records and their health checks are the
# routing module's.

locals {
  ec2         = var.compute == "ec2"
  serverless  = var.compute == "lambda"
  app_port    = 8000
  provisioned = local.serverless && var.provisioned_concurrency > 0 && var.desired_capacity > 0

  # the app's environment: this region's database with the credentials of the secret's copy in
  # this region; nothing the app needs to start lives in another region
  db_env = var.db_host == "" ? {
    RG_DB_INSTANCE = var.db_instance # backup & restore: found by identifier once restored
    } : {
    RG_DB_HOST = var.db_host
    RG_DB_PORT = tostring(var.db_port)
  }
  app_env = merge(local.db_env, {
    RG_REGION             = var.label
    RG_DB_ENGINE          = var.engine
    RG_DB_NAME            = var.database_name
    RG_DB_SECRET_ID       = var.db_secret
    RG_DB_SECRET_REGION   = var.aws_region
    RG_ADMIN_TOKEN_SECRET = var.admin_secret
    RG_ARBITER_TABLE      = var.state_table
    RG_ARBITER_REGIONS    = join(",", var.arbiter_regions)
    RG_LEASE_S            = format("%g", var.lease_s)
    RG_REGION_HOSTS       = var.region_hosts
    # sessions: this region's replica of the global table, by this region's endpoint
    RG_SESSIONS_TABLE  = var.sessions_table
    RG_SESSIONS_REGION = var.aws_region
  }, var.origin_secret == null ? {} : { RG_ORIGIN_SECRET = var.origin_secret })

  secret_arn_patterns = concat(
    ["arn:aws:secretsmanager:${var.aws_region}:${var.account_id}:secret:${var.db_secret}-??????",
    "arn:aws:secretsmanager:${var.aws_region}:${var.account_id}:secret:${var.admin_secret}-??????"],
    var.origin_secret == null ? [] : ["arn:aws:secretsmanager:${var.aws_region}:${var.account_id}:secret:${var.origin_secret}-??????"],
  )
  # the arbiter's replicas, where the app confirms and records its write lease
  arbiter_tables = [for r in var.arbiter_regions : "arn:aws:dynamodb:${r}:${var.account_id}:table/${var.state_table}"]
  # what the app's role may do, whichever compute runs it
  app_statements = concat(
    [
      {
        Sid      = "ReadSecretsInThisRegion"
        Effect   = "Allow"
        Action   = ["secretsmanager:GetSecretValue"]
        Resource = local.secret_arn_patterns
      },
    ],
    var.db_host == "" ? [{
      Sid      = "FindRestoredInstance"
      Effect   = "Allow"
      Action   = ["rds:DescribeDBInstances"]
      Resource = ["arn:aws:rds:${var.aws_region}:${var.account_id}:db:${var.db_instance}"]
    }] : [],
    var.db_key_arn == null ? [] : [{
      Sid      = "DecryptDbSecret"
      Effect   = "Allow"
      Action   = ["kms:Decrypt"]
      Resource = [var.db_key_arn]
    }],
    var.admin_key_alias == null ? [] : [{
      Sid       = "DecryptAdminSecret"
      Effect    = "Allow"
      Action    = ["kms:Decrypt"]
      Resource  = ["arn:aws:kms:${var.aws_region}:${var.account_id}:key/*"]
      Condition = { "ForAnyValue:StringEquals" = { "kms:ResourceAliases" = [var.admin_key_alias] } }
    }],
  )
}

# the write lease, a policy of its own (known at plan time, so the drift test reads it): the
# app reads the arbiter's `state` item from either replica, and records how long its lease may
# run in its own Region's item, the only one it may write (an app that could write `state`
# could name its own Region the writer). The same statements as the CDK app's
# ComputeStack._allow_lease.
resource "aws_iam_role_policy" "write_lease" {
  name = "write-lease"
  role = one(concat(aws_iam_role.instance[*].id, aws_iam_role.app_fn[*].id))
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "ConfirmWriteLease"
        Effect   = "Allow"
        Action   = ["dynamodb:GetItem"]
        Resource = local.arbiter_tables
      },
      {
        Sid      = "RecordWriteLease"
        Effect   = "Allow"
        Action   = ["dynamodb:UpdateItem"]
        Resource = local.arbiter_tables
        Condition = {
          "ForAllValues:StringEquals" = {
            "dynamodb:LeadingKeys" = ["lease#${var.label}"]
            "dynamodb:Attributes"  = ["pk", "until_s"]
          }
        }
      },
    ]
  })
}

# The app's sessions (app/sessions), in a policy of their own that the plan knows in full: this
# region's replica only, with the actions of the registry (providers/aws/iam_actions.py, passed in
# as session_grant, never written here), and that replica's key, named by its alias, only through
# DynamoDB in this region (the AWS KMS Developer Guide, "How Amazon DynamoDB uses AWS KMS": the
# principal that calls DynamoDB needs the key's use, limited by kms:ViaService; CreateGrant and
# ReEncrypt serve creating the table and changing its key, which the deployer does). The same
# statements as the CDK app's ComputeStack._allow_sessions.
resource "aws_iam_role_policy" "sessions" {
  name = "sessions"
  role = one(concat(aws_iam_role.instance[*].id, aws_iam_role.app_fn[*].id))
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "SessionsInThisRegion"
        Effect   = "Allow"
        Action   = var.session_grant.actions
        Resource = var.session_grant.resources
      },
      {
        Sid      = "SessionsKeyThroughDynamoDB"
        Effect   = "Allow"
        Action   = ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"]
        Resource = ["arn:aws:kms:${var.aws_region}:${var.account_id}:key/*"]
        Condition = {
          "ForAnyValue:StringEquals" = { "kms:ResourceAliases" = [var.sessions_key_alias] }
          StringEquals               = { "kms:ViaService" = "dynamodb.${var.aws_region}.amazonaws.com" }
        }
      },
    ]
  })
}

# -- certificate -----------------------------------------------------------------------------

resource "aws_acm_certificate" "this" {
  domain_name               = var.region_host
  subject_alternative_names = [var.domain, var.health_host]
  validation_method         = "DNS"
  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_route53_record" "validation" {
  for_each = {
    for o in aws_acm_certificate.this.domain_validation_options : o.domain_name => o
  }
  zone_id         = var.hosted_zone_id
  name            = each.value.resource_record_name
  type            = each.value.resource_record_type
  records         = [each.value.resource_record_value]
  ttl             = 300
  allow_overwrite = true
}

resource "aws_acm_certificate_validation" "this" {
  certificate_arn         = aws_acm_certificate.this.arn
  validation_record_fqdns = [for r in aws_route53_record.validation : r.fqdn]
}

# -- logs and notifications ------------------------------------------------------------------

resource "aws_kms_key" "logs" {
  description         = "regionguard: logs and notifications in ${var.label}"
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
        Principal = { Service = "logs.${var.aws_region}.amazonaws.com" }
        Action    = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
        Resource  = "*"
      },
      {
        Sid       = "AlarmsAndScalingNotify"
        Effect    = "Allow"
        Principal = { Service = ["cloudwatch.amazonaws.com", "autoscaling.amazonaws.com"] }
        Action    = ["kms:Decrypt", "kms:GenerateDataKey*"]
        Resource  = "*"
      },
    ]
  })
}

resource "aws_sns_topic" "ops" {
  name_prefix       = "${var.app_name}-ops-${var.label}-"
  kms_master_key_id = aws_kms_key.logs.arn
}

resource "aws_sns_topic_policy" "ops" {
  arn = aws_sns_topic.ops.arn
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "ScalingAndAlarmsPublish"
        Effect    = "Allow"
        Principal = { Service = ["autoscaling.amazonaws.com", "cloudwatch.amazonaws.com"] }
        Action    = "sns:Publish"
        Resource  = aws_sns_topic.ops.arn
        Condition = { StringEquals = { "aws:SourceAccount" = var.account_id } }
      },
      {
        Sid       = "TlsOnly"
        Effect    = "Deny"
        Principal = "*"
        Action    = "sns:Publish"
        Resource  = aws_sns_topic.ops.arn
        Condition = { Bool = { "aws:SecureTransport" = "false" } }
      },
    ]
  })
}
