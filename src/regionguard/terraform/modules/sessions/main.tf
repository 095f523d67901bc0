# The app's sessions (app/sessions): a DynamoDB global table (version 2019) with a replica in each
# app region, created from the primary's. Multi-Region eventual consistency (MREC, the only mode
# of this provider's aws_dynamodb_table): each region's app reads and writes its own replica,
# DynamoDB replicates every write to the other within about a second, and the last writer wins.
# Nothing fails over for it, unlike the orders in the relational database. Each replica is
# encrypted with its own region's customer managed key, both with the alias alias/<table_name>,
# by which the apps' roles name their own region's key. The same table as the CDK app's (its
# state stack; the keys are in each region's database stack there).
#
# The AWS provider 5.x's replica block has no deletion protection of its own: the table's
# protects the primary's replica; the CDK app protects both.

locals {
  key_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "AccountAdministers" # IAM policies grant the roles that use it (compute)
      Effect    = "Allow"
      Principal = { AWS = "arn:aws:iam::${var.account_id}:root" }
      Action    = "kms:*"
      Resource  = "*"
    }]
  })
}

resource "aws_kms_key" "primary" {
  description         = "regionguard: ${var.app_name} sessions table (its replica in ${var.primary_label})"
  enable_key_rotation = true
  policy              = local.key_policy
}

resource "aws_kms_alias" "primary" {
  name          = "alias/${var.table_name}"
  target_key_id = aws_kms_key.primary.key_id
}

resource "aws_kms_key" "standby" {
  provider            = aws.standby
  description         = "regionguard: ${var.app_name} sessions table (its replica in ${var.standby_label})"
  enable_key_rotation = true
  policy              = local.key_policy
}

resource "aws_kms_alias" "standby" {
  provider      = aws.standby
  name          = "alias/${var.table_name}"
  target_key_id = aws_kms_key.standby.key_id
}

resource "aws_dynamodb_table" "sessions" {
  name                        = var.table_name
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "id"
  deletion_protection_enabled = true
  # global tables version 2019 replicate through the table's stream
  stream_enabled   = true
  stream_view_type = "NEW_AND_OLD_IMAGES"

  attribute {
    name = "id"
    type = "S"
  }

  # DynamoDB deletes expired sessions (epoch seconds) in each region, without the app
  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.primary.arn
  }

  replica {
    region_name            = var.standby_region
    kms_key_arn            = aws_kms_key.standby.arn
    point_in_time_recovery = true
  }

  timeouts {
    create = "60m" # the replica in the other region
    update = "60m"
  }
}
