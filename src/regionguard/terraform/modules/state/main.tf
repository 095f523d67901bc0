# The arbiter: one DynamoDB global table with multi-Region strong consistency (MRSC), with
# replicas in both app regions and a witness in a third Region of the same Region set. Any two of
# the three sites decide: a conditional write or a strongly consistent read on either replica
# succeeds while that replica reaches one more site, so the epoch, the plan lease and its
# progress, the write lease and the vantage points' reports survive the loss of any one Region.
# Also the canary's credential (and serverless, CloudFront's origin secret), replicated to every
# site so that no Region's loss takes it away.
#
# The AWS provider's aws_dynamodb_table (5.x) can create neither a strongly consistent global
# table nor its witness, so the table is the same CloudFormation resource the CDK app deploys
# (AWS::DynamoDB::GlobalTable), in a stack this module owns. MRSC tables support neither TTL nor
# transactions, and the engine uses neither.

resource "aws_cloudformation_stack" "arbiter" {
  #checkov:skip=CKV_AWS_124:a one-resource stack that Terraform creates and reads back; Terraform reports its outcome, so no SNS topic is needed for its events
  name         = "${var.app_name}-regionguard-arbiter"
  on_failure   = "DELETE"
  capabilities = []
  template_body = jsonencode({
    AWSTemplateFormatVersion = "2010-09-09"
    Description              = "regionguard: the arbiter (DynamoDB MRSC global table with a witness)"
    Resources = {
      State = {
        Type                = "AWS::DynamoDB::GlobalTable"
        DeletionPolicy      = "Retain"
        UpdateReplacePolicy = "Retain"
        Properties = {
          TableName              = var.table_name
          AttributeDefinitions   = [{ AttributeName = "pk", AttributeType = "S" }]
          KeySchema              = [{ AttributeName = "pk", KeyType = "HASH" }]
          BillingMode            = "PAY_PER_REQUEST"
          MultiRegionConsistency = "STRONG"
          StreamSpecification    = { StreamViewType = "NEW_AND_OLD_IMAGES" }
          SSESpecification       = { SSEEnabled = true, SSEType = "KMS" }
          Replicas = [for region in [var.standby_region, var.primary_region] : {
            Region                           = region
            DeletionProtectionEnabled        = true
            PointInTimeRecoverySpecification = { PointInTimeRecoveryEnabled = true }
          }]
          GlobalTableWitnesses = [{ Region = var.witness_region }]
        }
      }
    }
    Outputs = {
      TableArn = { Value = { "Fn::GetAtt" = ["State", "Arn"] } }
    }
  })

  timeouts {
    create = "60m" # a replica and a witness in two other Regions
    update = "60m"
  }
}

resource "aws_kms_key" "admin" {
  description         = "regionguard: regionguard's credentials (the canary's token, the edge's origin secret)"
  enable_key_rotation = true
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "AccountAdministers" # IAM policies grant the roles that use it
      Effect    = "Allow"
      Principal = { AWS = "arn:aws:iam::${var.account_id}:root" }
      Action    = "kms:*"
      Resource  = "*"
    }]
  })
}

# the roles that decrypt the secrets' primary copy name the key by this alias
resource "aws_kms_alias" "admin" {
  name          = "alias/${var.app_name}-regionguard-admin"
  target_key_id = aws_kms_key.admin.key_id
}

resource "aws_secretsmanager_secret" "admin" {
  #checkov:skip=CKV2_AWS_57:rotation would have to reach every app and guard at once; rotate it by hand (the apps read it at start) during a quiet window, as in the CDK app
  name        = var.admin_secret
  description = "regionguard: the canary's credential (the apps check it, the guards present it)"
  kms_key_id  = aws_kms_key.admin.arn

  dynamic "replica" {
    for_each = toset([var.standby_region, var.witness_region])
    content {
      region = replica.value # each replica uses its own Region's Secrets Manager key
    }
  }
}

resource "aws_secretsmanager_secret_version" "admin" {
  secret_id = aws_secretsmanager_secret.admin.id
  # 64 hex characters from Terraform's own random source, generated once, then kept
  secret_string = "${replace(uuid(), "-", "")}${replace(uuid(), "-", "")}"
  lifecycle {
    ignore_changes = [secret_string]
  }
}

resource "aws_secretsmanager_secret" "origin" {
  #checkov:skip=CKV2_AWS_57:rotation must reach CloudFront and every app together: rotate it by hand, apply the edge again and restart the apps (as in the CDK app)
  count       = var.origin_secret == null ? 0 : 1
  name        = var.origin_secret
  description = "regionguard: the header CloudFront adds to API requests; the app refuses API calls without it"
  kms_key_id  = aws_kms_key.admin.arn

  dynamic "replica" {
    for_each = setsubtract(toset([var.standby_region, var.witness_region, "us-east-1"]), [var.primary_region])
    content {
      region = replica.value
    }
  }
}

resource "aws_secretsmanager_secret_version" "origin" {
  count         = var.origin_secret == null ? 0 : 1
  secret_id     = aws_secretsmanager_secret.origin[0].id
  secret_string = "${replace(uuid(), "-", "")}${replace(uuid(), "-", "")}"
  lifecycle {
    ignore_changes = [secret_string]
  }
}
