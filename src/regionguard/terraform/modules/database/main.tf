# Per region: the database. RDS Multi-AZ (PostgreSQL, or MySQL for seed 000) in the primary
# region with a cross-region read replica in the standby region, or an Aurora PostgreSQL Global
# Database (primary cluster + secondary cluster); each region's storage encrypted with a
# customer-managed key of that region. The same as the CDK app's DatabaseStack, with the same
# names (identifiers, subnet group, security group, secret) from aws_naming.

locals {
  primary = var.role == "primary"
  aurora  = var.database == "aurora-global"
  rds     = !local.aurora
  engines = {
    postgres = {
      label   = "PostgreSQL"
      engine  = "postgres"
      version = "16.9"
      family  = "postgres16"
      port    = 5432
      logs    = ["postgresql"]
      # RDS for PostgreSQL read replicas take no automated backups (RDS User Guide,
      # "Differences between read replicas for DB engines")
      replica_backups = false
      # TLS only, and what pg_rewind needs; statements slower than 1 s are logged
      parameters = {
        "rds.force_ssl"              = "1"
        "wal_log_hints"              = "1"
        "log_min_duration_statement" = "1000"
        "log_statement"              = "ddl"
      }
    }
    mysql = {
      label      = "MySQL"
      engine     = "mysql"
      version    = "8.4.6"
      family     = "mysql8.4"
      port       = 3306
      logs       = ["error", "slowquery"]
      parameters = { "require_secure_transport" = "1" }
      # MySQL replicas keep automated backups: a promotion then takes none (AWS advises
      # enabling them before PromoteReadReplica)
      replica_backups = true
    }
  }
  spec = local.aurora ? local.engines.postgres : local.engines[var.engine]

  rds_primary   = local.rds && local.primary
  rds_replica   = local.rds && !local.primary && var.replica
  aurora_global = local.aurora && local.primary
  aurora_second = local.aurora && !local.primary
  owns_secret   = local.primary
}

resource "aws_kms_key" "db" {
  description         = "regionguard: ${var.database_name} database storage in ${var.label}"
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

# named: a restore (backup & restore) puts the new instance into them by name
resource "aws_security_group" "db" {
  name        = var.security_group_name
  description = "${local.spec.label} from inside the VPC only"
  vpc_id      = var.vpc_id
  tags        = { Name = var.security_group_name }
}

resource "aws_vpc_security_group_ingress_rule" "db_from_vpc" {
  security_group_id = aws_security_group.db.id
  description       = "${local.spec.label} from the VPC"
  cidr_ipv4         = var.vpc_cidr
  ip_protocol       = "tcp"
  from_port         = local.spec.port
  to_port           = local.spec.port
}

resource "aws_db_subnet_group" "this" {
  name        = var.subnet_group_name
  description = "isolated subnets"
  subnet_ids  = var.subnet_ids
}

# -- the credentials (primary): generated once, replicated to the standby ------------------

resource "aws_secretsmanager_secret" "db" {
  #checkov:skip=CKV2_AWS_57:rotation is deliberately manual, as in the CDK app: a rotated password must reach the cross-region replica and every app at once; rotate with the runbook during a switchover window
  count       = local.owns_secret ? 1 : 0
  name        = var.secret_name
  description = "regionguard: the ${local.spec.label} credentials; each region's app reads its own replica"
  kms_key_id  = aws_kms_key.db.arn

  dynamic "replica" {
    for_each = toset(var.secret_replica_regions)
    content {
      region = replica.value # encrypted there with that region's Secrets Manager key
    }
  }
}

resource "aws_secretsmanager_secret_version" "db" {
  count     = local.owns_secret ? 1 : 0
  secret_id = aws_secretsmanager_secret.db[0].id
  # Terraform's own random source (uuid(), 122 random bits): the AWS provider is the only one
  # this configuration needs; the value is generated once, then kept
  secret_string = jsonencode({
    username = "regionguard"
    password = replace(uuid(), "-", "")
  })
  lifecycle {
    ignore_changes = [secret_string]
  }
}

locals {
  master_password = local.owns_secret ? jsondecode(aws_secretsmanager_secret_version.db[0].secret_string).password : null
}

# -- RDS: the Multi-AZ primary -------------------------------------------------------------

# the primary's parameters in both regions: promoted, the replica is the primary, and must
# refuse plain-text clients as its source did (a parameter group is regional)
resource "aws_db_parameter_group" "this" {
  count       = local.rds_primary || local.rds_replica ? 1 : 0
  name_prefix = "${var.identifier}-"
  family      = local.spec.family
  description = "regionguard: TLS only"

  dynamic "parameter" {
    for_each = local.spec.parameters
    content {
      name  = parameter.key
      value = parameter.value
    }
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_db_instance" "primary" {
  #checkov:skip=CKV_AWS_118:enhanced monitoring (OS metrics) is an opt-in cost the CDK app does not take either; CloudWatch metrics and the exported logs remain
  #checkov:skip=CKV_AWS_353:Performance Insights is not enabled by the CDK app either; turn it on for instance classes that support it
  count                               = local.rds_primary ? 1 : 0
  identifier                          = var.identifier
  engine                              = local.spec.engine
  engine_version                      = local.spec.version
  instance_class                      = var.instance_class
  allocated_storage                   = var.allocated_storage
  storage_type                        = "gp3"
  db_name                             = var.database_name
  username                            = "regionguard"
  password                            = local.master_password
  port                                = local.spec.port
  multi_az                            = true
  storage_encrypted                   = true
  kms_key_id                          = aws_kms_key.db.arn
  db_subnet_group_name                = aws_db_subnet_group.this.name
  vpc_security_group_ids              = [aws_security_group.db.id]
  parameter_group_name                = aws_db_parameter_group.this[0].name
  publicly_accessible                 = false
  backup_retention_period             = var.backup_retention_days
  deletion_protection                 = true
  iam_database_authentication_enabled = true
  enabled_cloudwatch_logs_exports     = local.spec.logs
  auto_minor_version_upgrade          = true
  copy_tags_to_snapshot               = true
  skip_final_snapshot                 = false
  final_snapshot_identifier           = "${var.identifier}-final"

  lifecycle {
    ignore_changes = [password] # the secret is the source of truth once created
  }
}

# -- RDS: the cross-region read replica (standby) ------------------------------------------

resource "aws_db_instance" "replica" {
  #checkov:skip=CKV_AWS_133:RDS for PostgreSQL read replicas take no automated backups (the engine sets the retention on promotion); a MySQL replica keeps them (backup_retention_period below), as in the CDK app
  #checkov:skip=CKV_AWS_118:enhanced monitoring (OS metrics) is an opt-in cost the CDK app does not take either
  #checkov:skip=CKV_AWS_353:Performance Insights is not enabled by the CDK app either
  count                               = local.rds_replica ? 1 : 0
  identifier                          = var.identifier
  replicate_source_db                 = var.source_instance_arn
  backup_retention_period             = local.spec.replica_backups ? var.backup_retention_days : null
  instance_class                      = var.instance_class
  storage_type                        = "gp3"
  storage_encrypted                   = true
  kms_key_id                          = aws_kms_key.db.arn # this region's CMK encrypts it
  parameter_group_name                = aws_db_parameter_group.this[0].name
  db_subnet_group_name                = aws_db_subnet_group.this.name
  vpc_security_group_ids              = [aws_security_group.db.id]
  publicly_accessible                 = false
  multi_az                            = true
  deletion_protection                 = true
  iam_database_authentication_enabled = true
  enabled_cloudwatch_logs_exports     = local.spec.logs
  auto_minor_version_upgrade          = true
  copy_tags_to_snapshot               = true
  skip_final_snapshot                 = false
  final_snapshot_identifier           = "${var.identifier}-final"

  lifecycle {
    # promotion (the engine's failover) turns the replica into a standalone instance: that is
    # the deployment working, not drift
    ignore_changes = [replicate_source_db, backup_retention_period]
  }
}

# -- RDS Proxy (serverless compute on RDS) -------------------------------------------------

resource "aws_security_group" "proxy" {
  #checkov:skip=CKV2_AWS_5:attached to the RDS Proxy (aws_db_proxy.this, vpc_security_group_ids), a resource type this check does not follow
  count       = local.rds_primary && var.rds_proxy ? 1 : 0
  name_prefix = "${var.identifier}-proxy-"
  description = "RDS Proxy: ${local.spec.label} from the VPC, to the database only"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "proxy_from_vpc" {
  count             = local.rds_primary && var.rds_proxy ? 1 : 0
  security_group_id = aws_security_group.proxy[0].id
  description       = "${local.spec.label} from the VPC"
  cidr_ipv4         = var.vpc_cidr
  ip_protocol       = "tcp"
  from_port         = local.spec.port
  to_port           = local.spec.port
}

resource "aws_vpc_security_group_egress_rule" "proxy_to_db" {
  count                        = local.rds_primary && var.rds_proxy ? 1 : 0
  security_group_id            = aws_security_group.proxy[0].id
  description                  = "to the database"
  referenced_security_group_id = aws_security_group.db.id
  ip_protocol                  = "tcp"
  from_port                    = local.spec.port
  to_port                      = local.spec.port
}

resource "aws_iam_role" "proxy" {
  count       = local.rds_primary && var.rds_proxy ? 1 : 0
  name_prefix = "${var.identifier}-proxy-"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "rds.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
}

resource "aws_iam_role_policy" "proxy" {
  count = local.rds_primary && var.rds_proxy ? 1 : 0
  name  = "read-db-secret"
  role  = aws_iam_role.proxy[0].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Effect   = "Allow"
        Action   = ["secretsmanager:GetSecretValue"]
        Resource = aws_secretsmanager_secret.db[0].arn
      },
      {
        Effect    = "Allow"
        Action    = ["kms:Decrypt"]
        Resource  = aws_kms_key.db.arn
        Condition = { StringEquals = { "kms:ViaService" = "secretsmanager.${var.aws_region}.amazonaws.com" } }
      },
    ]
  })
}

resource "aws_db_proxy" "this" {
  count                  = local.rds_primary && var.rds_proxy ? 1 : 0
  name                   = "${var.identifier}-proxy"
  engine_family          = var.engine == "mysql" ? "MYSQL" : "POSTGRESQL"
  role_arn               = aws_iam_role.proxy[0].arn
  vpc_subnet_ids         = var.subnet_ids
  vpc_security_group_ids = [aws_security_group.proxy[0].id]
  require_tls            = true

  # the app signs in with the secret's password (it has no IAM token path), over TLS
  auth {
    auth_scheme = "SECRETS"
    iam_auth    = "DISABLED"
    secret_arn  = aws_secretsmanager_secret.db[0].arn
  }
}

resource "aws_db_proxy_default_target_group" "this" {
  count         = local.rds_primary && var.rds_proxy ? 1 : 0
  db_proxy_name = aws_db_proxy.this[0].name
}

resource "aws_db_proxy_target" "this" {
  count                  = local.rds_primary && var.rds_proxy ? 1 : 0
  db_proxy_name          = aws_db_proxy.this[0].name
  target_group_name      = aws_db_proxy_default_target_group.this[0].name
  db_instance_identifier = aws_db_instance.primary[0].identifier
}

# -- Aurora Global Database ----------------------------------------------------------------

resource "aws_rds_cluster_parameter_group" "aurora" {
  count       = local.aurora ? 1 : 0
  name_prefix = "${var.cluster_identifier}-"
  family      = "aurora-postgresql16"
  description = "regionguard: TLS only, slow statements and DDL logged"

  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }

  parameter {
    name  = "log_min_duration_statement"
    value = "1000"
  }

  parameter {
    name  = "log_statement"
    value = "ddl"
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_rds_cluster" "primary" {
  #checkov:skip=CKV2_AWS_8:the root's backup module selects this cluster by its ARN (AWS Backup plan with a cross-region copy); the check cannot follow a module boundary
  #checkov:skip=CKV_AWS_324:PostgreSQL's log is exported (enabled_cloudwatch_logs_exports), as in the CDK app
  count                               = local.aurora_global ? 1 : 0
  cluster_identifier                  = var.cluster_identifier
  engine                              = "aurora-postgresql"
  engine_version                      = local.spec.version
  db_cluster_parameter_group_name     = aws_rds_cluster_parameter_group.aurora[0].name
  database_name                       = var.database_name
  master_username                     = "regionguard"
  master_password                     = local.master_password
  storage_encrypted                   = true
  kms_key_id                          = aws_kms_key.db.arn
  db_subnet_group_name                = aws_db_subnet_group.this.name
  vpc_security_group_ids              = [aws_security_group.db.id]
  backup_retention_period             = var.backup_retention_days
  deletion_protection                 = true
  iam_database_authentication_enabled = true
  enabled_cloudwatch_logs_exports     = ["postgresql"]
  copy_tags_to_snapshot               = true
  skip_final_snapshot                 = false
  final_snapshot_identifier           = "${var.cluster_identifier}-final"

  lifecycle {
    # the global cluster adopts this cluster (source_db_cluster_identifier)
    ignore_changes = [global_cluster_identifier, master_password]
  }
}

resource "aws_rds_cluster_instance" "primary" {
  #checkov:skip=CKV_AWS_118:enhanced monitoring (OS metrics) is an opt-in cost the CDK app does not take either
  #checkov:skip=CKV_AWS_353:Performance Insights is not enabled by the CDK app either
  for_each                   = local.aurora_global ? toset(["writer", "reader"]) : toset([])
  identifier_prefix          = "${var.cluster_identifier}-${each.key}-"
  cluster_identifier         = aws_rds_cluster.primary[0].id
  engine                     = aws_rds_cluster.primary[0].engine
  engine_version             = aws_rds_cluster.primary[0].engine_version
  instance_class             = var.instance_class
  publicly_accessible        = false
  auto_minor_version_upgrade = true
  promotion_tier             = each.key == "writer" ? 0 : 1
}

resource "aws_rds_global_cluster" "this" {
  count                        = local.aurora_global ? 1 : 0
  global_cluster_identifier    = var.global_cluster_identifier
  source_db_cluster_identifier = aws_rds_cluster.primary[0].arn
  deletion_protection          = true
  force_destroy                = false
  depends_on                   = [aws_rds_cluster_instance.primary]
}

resource "aws_rds_cluster" "secondary" {
  #checkov:skip=CKV2_AWS_8:the secondary cluster is the global database's copy of the primary, whose backups AWS Backup copies into this region's vault
  #checkov:skip=CKV_AWS_324:PostgreSQL's log is exported (enabled_cloudwatch_logs_exports), as in the CDK app
  count                               = local.aurora_second ? 1 : 0
  cluster_identifier                  = var.cluster_identifier
  engine                              = "aurora-postgresql"
  engine_version                      = local.spec.version
  db_cluster_parameter_group_name     = aws_rds_cluster_parameter_group.aurora[0].name
  global_cluster_identifier           = var.global_cluster_id
  storage_encrypted                   = true
  kms_key_id                          = aws_kms_key.db.arn
  db_subnet_group_name                = aws_db_subnet_group.this.name
  vpc_security_group_ids              = [aws_security_group.db.id]
  backup_retention_period             = var.backup_retention_days
  deletion_protection                 = true
  iam_database_authentication_enabled = true
  enabled_cloudwatch_logs_exports     = ["postgresql"]
  copy_tags_to_snapshot               = true
  skip_final_snapshot                 = false
  final_snapshot_identifier           = "${var.cluster_identifier}-final"

  lifecycle {
    # a global failover or switchover swaps the roles: the engine's work, not drift
    ignore_changes = [replication_source_identifier, global_cluster_identifier]
  }
}

resource "aws_rds_cluster_instance" "secondary" {
  #checkov:skip=CKV_AWS_118:enhanced monitoring (OS metrics) is an opt-in cost the CDK app does not take either
  #checkov:skip=CKV_AWS_353:Performance Insights is not enabled by the CDK app either
  count                      = local.aurora_second ? 1 : 0
  identifier_prefix          = "${var.cluster_identifier}-"
  cluster_identifier         = aws_rds_cluster.secondary[0].id
  engine                     = aws_rds_cluster.secondary[0].engine
  engine_version             = aws_rds_cluster.secondary[0].engine_version
  instance_class             = var.instance_class
  publicly_accessible        = false
  auto_minor_version_upgrade = true
}
