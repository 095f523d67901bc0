# Backup & restore: a vault per region (each with that region's CMK) and, in the primary region,
# an AWS Backup plan whose copy action sends every backup of the database to the other region's
# vault. Retention comes from the topology. The same as the CDK app's BackupStack.

resource "aws_kms_key" "vault" {
  description         = "regionguard: backup vault in ${var.label}"
  enable_key_rotation = true
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "AccountAdministers"
      Effect    = "Allow"
      Principal = { AWS = "arn:aws:iam::${var.account_id}:root" }
      Action    = "kms:*"
      Resource  = "*"
    }]
  })
}

resource "aws_backup_vault" "this" {
  name        = var.vault_name
  kms_key_arn = aws_kms_key.vault.arn
}

resource "aws_backup_plan" "this" {
  count = var.database_arn == null ? 0 : 1
  name  = "${var.vault_name}-daily"

  rule {
    rule_name         = "daily-copy-to-other-region"
    target_vault_name = aws_backup_vault.this.name
    schedule          = "cron(0 3 * * ? *)"
    lifecycle {
      delete_after = var.retention_days
    }
    copy_action {
      destination_vault_arn = var.copy_to_vault_arn
      lifecycle {
        delete_after = var.retention_days
      }
    }
  }
}

resource "aws_iam_role" "backup" {
  count       = var.database_arn == null ? 0 : 1
  name_prefix = "${var.vault_name}-"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "backup.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
}

# AWS maintained: what AWS Backup needs to snapshot the database
resource "aws_iam_role_policy_attachment" "backup" {
  count      = var.database_arn == null ? 0 : 1
  role       = aws_iam_role.backup[0].name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForBackup"
}

resource "aws_backup_selection" "database" {
  count        = var.database_arn == null ? 0 : 1
  name         = "database"
  plan_id      = aws_backup_plan.this[0].id
  iam_role_arn = aws_iam_role.backup[0].arn
  resources    = [var.database_arn]
}
