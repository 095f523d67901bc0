# regionguard: the AWS architecture of one topology, as Terraform. The same stacks as the CDK
# app (src/regionguard/infra), with the same names (aws_naming, passed in as `names`), the same
# guard IAM (the registry in providers/aws/iam_actions.py, passed in as `failover_grants`) and
# the same Lambda bundle. `regionguard synth --format terraform --out DIR` writes this root, its
# modules and the topology's values (terraform.tfvars.json); then `terraform init && terraform
# apply` in DIR. Every root (one per strategy) has this same main.tf; their variables.tf hold
# the strategy's own rules.

provider "aws" {
  alias               = "primary"
  region              = var.primary.aws_region
  allowed_account_ids = [var.account_id]
  default_tags {
    tags = local.tags
  }
}

provider "aws" {
  alias               = "standby"
  region              = var.standby.aws_region
  allowed_account_ids = [var.account_id]
  default_tags {
    tags = local.tags
  }
}

# the arbiter's third site: it votes in the MRSC quorum and hosts a prober
provider "aws" {
  alias               = "witness"
  region              = var.witness_region
  allowed_account_ids = [var.account_id]
  default_tags {
    tags = local.tags
  }
}

# us-east-1: CloudFront and its web ACL, Route 53 health-check metrics (the trigger), the dashboard
provider "aws" {
  alias               = "global"
  region              = "us-east-1"
  allowed_account_ids = [var.account_id]
  default_tags {
    tags = local.tags
  }
}

locals {
  tags = {
    "regionguard:app"      = var.app_name
    "regionguard:strategy" = var.strategy
    "managed-by"           = "terraform"
  }
  p          = var.primary
  s          = var.standby
  serverless = var.compute == "lambda"
  # backup & restore keeps no standing replica and runs no guard: it restores from copies
  replica = var.strategy != "backup-restore"
  # the instances each region runs as deployed (home roles)
  standby_desired = contains(["pilot-light", "backup-restore"], var.strategy) ? 0 : local.s.standby_capacity
  region_hosts    = join(",", [for r in [local.p, local.s] : "${r.name}=${var.names.region_host[r.aws_region]}"])
  # the topology the guard runs with, carrying the lease, probe and DNS settings of this file, so
  # the guards and the apps never disagree about the lease
  topology = jsondecode(var.topology_json)
  guard_topology = jsonencode(merge(local.topology, {
    aws = merge(local.topology.aws, {
      lease_s               = var.lease_s
      probe_interval_s      = var.probe_interval_s
      probe_timeout_s       = var.probe_timeout_s
      dns_check_interval_s  = var.dns_check_interval_s
      dns_failure_threshold = var.dns_failure_threshold
    })
  }))
  names_json    = jsonencode({ app = var.app_name, account = var.account_id })
  alarm_topic   = "arn:aws:sns:us-east-1:${var.account_id}:${var.names.alarm_topic}"
  origin_header = "X-Regionguard-Origin" # app/origin.py checks it
  db_arn = {
    for r in [local.p, local.s] : r.aws_region => (var.database == "rds"
      ? "arn:aws:rds:${r.aws_region}:${var.account_id}:db:${var.names.db_instance[r.aws_region]}"
    : "arn:aws:rds:${r.aws_region}:${var.account_id}:cluster:${var.names.db_cluster[r.aws_region]}")
  }
}

# The topology's rules that span variables (Terraform >= 1.5 validates one variable at a time).
resource "terraform_data" "topology_rules" {
  input = var.strategy
  lifecycle {
    precondition {
      condition     = var.database != "aurora-global" || can(regex("^db\\.(r|x2g)", var.db_instance_class))
      error_message = "db_instance_class ${var.db_instance_class} cannot run Aurora Global Database, which needs a memory-optimized class: use db.r6g.large (or another db.r*/db.x2g class), or database = \"rds\"."
    }
    precondition {
      condition     = var.database != "aurora-global" || var.engine == "postgres"
      error_message = "engine: Aurora Global Database is built for PostgreSQL only; use database = \"rds\" for MySQL."
    }
    precondition {
      condition     = !var.rds_proxy || (var.compute == "lambda" && var.database == "rds")
      error_message = "rds_proxy: RDS Proxy is built for compute = \"lambda\" with database = \"rds\"."
    }
    precondition {
      condition     = length(var.cors_origins) == 0 || var.compute == "lambda"
      error_message = "cors_origins: CORS is answered by API Gateway, which compute = \"ec2\" does not use."
    }
    precondition {
      condition     = var.probe_timeout_s < var.probe_interval_s
      error_message = "probe_timeout_s must be below probe_interval_s."
    }
    precondition {
      condition     = var.primary.aws_region != var.standby.aws_region
      error_message = "primary and standby need their own AWS Regions."
    }
    precondition {
      condition = anytrue([for set in local.mrsc_sets :
        contains(set, var.primary.aws_region) && contains(set, var.standby.aws_region) && contains(set, var.witness_region)
      ]) && !contains([var.primary.aws_region, var.standby.aws_region], var.witness_region)
      error_message = "witness_region must be a third Region of the app regions' DynamoDB multi-Region strong consistency Region set (MRSC tables cannot span Region sets)."
    }
  }
}

locals {
  mrsc_sets = [
    ["us-east-1", "us-east-2", "us-west-2"],
    ["eu-west-1", "eu-west-2", "eu-west-3", "eu-central-1"],
    ["ap-northeast-1", "ap-northeast-2", "ap-northeast-3"],
  ]
}

# -- the arbiter and the shared credentials (from the primary region) -------------------------

module "state" {
  source         = "./modules/state"
  providers      = { aws = aws.primary }
  account_id     = var.account_id
  app_name       = var.app_name
  primary_region = local.p.aws_region
  standby_region = local.s.aws_region
  witness_region = var.witness_region
  table_name     = var.names.state_table
  admin_secret   = var.names.admin_secret
  origin_secret  = local.serverless ? var.names.origin_secret : null
}

# -- the app's sessions table (a replica in each app region, created from the primary's) -------

module "sessions" {
  source         = "./modules/sessions"
  providers      = { aws = aws.primary, aws.standby = aws.standby }
  account_id     = var.account_id
  app_name       = var.app_name
  table_name     = var.names.sessions_table
  primary_label  = local.p.name
  standby_label  = local.s.name
  standby_region = local.s.aws_region
}

# -- network ---------------------------------------------------------------------------------

module "network_primary" {
  source     = "./modules/network"
  providers  = { aws = aws.primary }
  name       = "${var.app_name}-${local.p.name}"
  aws_region = local.p.aws_region
  account_id = var.account_id
  cidr       = "10.10.0.0/16"
}

module "network_standby" {
  source     = "./modules/network"
  providers  = { aws = aws.standby }
  name       = "${var.app_name}-${local.s.name}"
  aws_region = local.s.aws_region
  account_id = var.account_id
  cidr       = "10.20.0.0/16"
}

# -- database --------------------------------------------------------------------------------

module "database_primary" {
  source                    = "./modules/database"
  providers                 = { aws = aws.primary }
  role                      = "primary"
  aws_region                = local.p.aws_region
  account_id                = var.account_id
  label                     = local.p.name
  database                  = var.database
  engine                    = var.engine
  replica                   = local.replica
  identifier                = var.names.db_instance[local.p.aws_region]
  cluster_identifier        = var.names.db_cluster[local.p.aws_region]
  global_cluster_identifier = var.names.global_cluster
  subnet_group_name         = var.names.db_subnet_group[local.p.aws_region]
  security_group_name       = var.names.db_security_group[local.p.aws_region]
  secret_name               = var.names.db_secret
  secret_replica_regions    = [local.s.aws_region]
  database_name             = var.database_name
  instance_class            = var.db_instance_class
  backup_retention_days     = var.backup_retention_days
  vpc_id                    = module.network_primary.vpc_id
  vpc_cidr                  = module.network_primary.vpc_cidr
  subnet_ids                = module.network_primary.isolated_subnet_ids
  rds_proxy                 = var.rds_proxy
}

module "database_standby" {
  source                    = "./modules/database"
  providers                 = { aws = aws.standby }
  role                      = "standby"
  aws_region                = local.s.aws_region
  account_id                = var.account_id
  label                     = local.s.name
  database                  = var.database
  engine                    = var.engine
  replica                   = local.replica
  identifier                = var.names.db_instance[local.s.aws_region]
  cluster_identifier        = var.names.db_cluster[local.s.aws_region]
  global_cluster_identifier = var.names.global_cluster
  subnet_group_name         = var.names.db_subnet_group[local.s.aws_region]
  security_group_name       = var.names.db_security_group[local.s.aws_region]
  secret_name               = var.names.db_secret
  database_name             = var.database_name
  instance_class            = var.db_instance_class
  backup_retention_days     = var.backup_retention_days
  vpc_id                    = module.network_standby.vpc_id
  vpc_cidr                  = module.network_standby.vpc_cidr
  subnet_ids                = module.network_standby.isolated_subnet_ids
  source_instance_arn       = module.database_primary.instance_arn
  global_cluster_id         = module.database_primary.global_cluster_id
}

# -- compute and its entry points ------------------------------------------------------------

module "compute_primary" {
  source                  = "./modules/compute"
  providers               = { aws = aws.primary }
  label                   = local.p.name
  aws_region              = local.p.aws_region
  account_id              = var.account_id
  app_name                = var.app_name
  compute                 = var.compute
  domain                  = var.domain
  hosted_zone_id          = var.hosted_zone_id
  region_host             = var.names.region_host[local.p.aws_region]
  health_host             = var.names.health_host
  region_hosts            = local.region_hosts
  region_names            = [local.p.name, local.s.name]
  arbiter_regions         = [local.p.aws_region, local.s.aws_region]
  state_table             = var.names.state_table
  lease_s                 = var.lease_s
  sessions_table          = var.names.sessions_table
  session_grant           = var.app_session_grants[local.p.aws_region]
  sessions_key_alias      = module.sessions.key_alias
  engine                  = var.engine
  database_name           = var.database_name
  db_host                 = module.database_primary.endpoint_host
  db_port                 = module.database_primary.port
  db_instance             = var.names.db_instance[local.p.aws_region]
  db_secret               = var.names.db_secret
  db_key_arn              = module.database_primary.key_arn
  admin_secret            = var.names.admin_secret
  admin_key_alias         = module.state.admin_key_alias
  origin_secret           = local.serverless ? var.names.origin_secret : null
  instance_type           = var.instance_type
  capacity                = local.p.capacity
  desired_capacity        = local.p.capacity
  vpc_id                  = module.network_primary.vpc_id
  vpc_cidr                = module.network_primary.vpc_cidr
  public_subnet_ids       = module.network_primary.public_subnet_ids
  private_subnet_ids      = module.network_primary.private_subnet_ids
  asg_name                = var.names.asg[local.p.aws_region]
  app_function_name       = var.names.app_function[local.p.aws_region]
  health_function_name    = var.names.health_function[local.p.aws_region]
  lambda_bundle_zip       = var.lambda_bundle_zip
  lambda_runtime          = var.lambda_runtime
  app_wheelhouse_zip      = var.app_wheelhouse_zip
  provisioned_concurrency = var.provisioned_concurrency
  api_rate_limit          = var.api_rate_limit
  api_burst_limit         = var.api_burst_limit
  cors_origins            = var.cors_origins
  waf_rate_limit          = var.waf_rate_limit
}

module "compute_standby" {
  source                  = "./modules/compute"
  providers               = { aws = aws.standby }
  label                   = local.s.name
  aws_region              = local.s.aws_region
  account_id              = var.account_id
  app_name                = var.app_name
  compute                 = var.compute
  domain                  = var.domain
  hosted_zone_id          = var.hosted_zone_id
  region_host             = var.names.region_host[local.s.aws_region]
  health_host             = var.names.health_host
  region_hosts            = local.region_hosts
  region_names            = [local.p.name, local.s.name]
  arbiter_regions         = [local.s.aws_region, local.p.aws_region]
  state_table             = var.names.state_table
  lease_s                 = var.lease_s
  sessions_table          = var.names.sessions_table
  session_grant           = var.app_session_grants[local.s.aws_region]
  sessions_key_alias      = module.sessions.key_alias
  engine                  = var.engine
  database_name           = var.database_name
  db_host                 = module.database_standby.endpoint_host
  db_port                 = module.database_standby.port
  db_instance             = var.names.db_instance[local.s.aws_region]
  db_secret               = var.names.db_secret
  admin_secret            = var.names.admin_secret
  origin_secret           = local.serverless ? var.names.origin_secret : null
  instance_type           = var.instance_type
  capacity                = local.s.capacity
  desired_capacity        = local.standby_desired
  vpc_id                  = module.network_standby.vpc_id
  vpc_cidr                = module.network_standby.vpc_cidr
  public_subnet_ids       = module.network_standby.public_subnet_ids
  private_subnet_ids      = module.network_standby.private_subnet_ids
  asg_name                = var.names.asg[local.s.aws_region]
  app_function_name       = var.names.app_function[local.s.aws_region]
  health_function_name    = var.names.health_function[local.s.aws_region]
  lambda_bundle_zip       = var.lambda_bundle_zip
  lambda_runtime          = var.lambda_runtime
  app_wheelhouse_zip      = var.app_wheelhouse_zip
  provisioned_concurrency = var.provisioned_concurrency
  api_rate_limit          = var.api_rate_limit
  api_burst_limit         = var.api_burst_limit
  cors_origins            = var.cors_origins
  waf_rate_limit          = var.waf_rate_limit
}

# -- DNS on Route 53's data plane ------------------------------------------------------------

module "routing_primary" {
  source            = "./modules/routing"
  providers         = { aws = aws.primary }
  label             = local.p.name
  aws_region        = local.p.aws_region
  app_name          = var.app_name
  role              = "primary"
  routing           = var.routing
  hosted_zone_id    = var.hosted_zone_id
  domain            = var.domain
  region_host       = var.names.region_host[local.p.aws_region]
  health_host       = var.names.health_host
  entry_alias       = module.compute_primary.entry_alias
  shared_alias      = module.compute_primary.shared_alias
  health_alias      = module.compute_primary.health_alias
  check_interval_s  = var.dns_check_interval_s
  failure_threshold = var.dns_failure_threshold
  record_type       = var.dns_record
  ttl_s             = var.dns_ttl_s
}

module "routing_standby" {
  source            = "./modules/routing"
  providers         = { aws = aws.standby }
  label             = local.s.name
  aws_region        = local.s.aws_region
  app_name          = var.app_name
  role              = "standby"
  routing           = var.routing
  hosted_zone_id    = var.hosted_zone_id
  domain            = var.domain
  region_host       = var.names.region_host[local.s.aws_region]
  health_host       = var.names.health_host
  entry_alias       = module.compute_standby.entry_alias
  shared_alias      = module.compute_standby.shared_alias
  health_alias      = module.compute_standby.health_alias
  check_interval_s  = var.dns_check_interval_s
  failure_threshold = var.dns_failure_threshold
  record_type       = var.dns_record
  ttl_s             = var.dns_ttl_s
}

# -- static site and edge (serverless) -------------------------------------------------------

module "static_standby" {
  source      = "./modules/static_site"
  count       = local.serverless ? 1 : 0
  providers   = { aws = aws.standby, aws.global = aws.global }
  role        = "standby"
  label       = local.s.name
  aws_region  = local.s.aws_region
  account_id  = var.account_id
  app_name    = var.app_name
  bucket_name = var.names.static_bucket[local.s.aws_region]
}

module "static_primary" {
  source                  = "./modules/static_site"
  count                   = local.serverless ? 1 : 0
  providers               = { aws = aws.primary, aws.global = aws.global }
  role                    = "primary"
  label                   = local.p.name
  aws_region              = local.p.aws_region
  account_id              = var.account_id
  app_name                = var.app_name
  bucket_name             = var.names.static_bucket[local.p.aws_region]
  replicate_to_bucket_arn = module.static_standby[0].bucket_arn
  edge = {
    domain                = var.domain
    primary_bucket_domain = "${var.names.static_bucket[local.p.aws_region]}.s3.${local.p.aws_region}.amazonaws.com"
    standby_bucket_domain = "${var.names.static_bucket[local.s.aws_region]}.s3.${local.s.aws_region}.amazonaws.com"
    waf_rate_limit        = var.waf_rate_limit
    origin_header_name    = local.origin_header
  }
  origin_header_value = module.state.origin_secret_value
}

# -- backups ---------------------------------------------------------------------------------

module "backup_standby" {
  source         = "./modules/backup"
  providers      = { aws = aws.standby }
  label          = local.s.name
  account_id     = var.account_id
  vault_name     = var.names.backup_vault[local.s.aws_region]
  retention_days = var.backup_retention_days
}

module "backup_primary" {
  source            = "./modules/backup"
  providers         = { aws = aws.primary }
  label             = local.p.name
  account_id        = var.account_id
  vault_name        = var.names.backup_vault[local.p.aws_region]
  retention_days    = var.backup_retention_days
  database_arn      = local.db_arn[local.p.aws_region]
  copy_to_vault_arn = module.backup_standby.vault_arn
}

# -- the guard in each of the three sites ----------------------------------------------------

module "failover_primary" {
  source            = "./modules/failover"
  count             = local.replica ? 1 : 0
  providers         = { aws = aws.primary }
  site              = local.p.aws_region
  role_name         = var.names.guard_role[local.p.aws_region]
  label             = local.p.name
  account_id        = var.account_id
  app_name          = var.app_name
  function_name     = var.names.failover_function
  notify_topic      = var.names.notify_topic
  state_table       = var.names.state_table
  admin_secret      = var.names.admin_secret
  admin_key_alias   = module.state.admin_key_alias # the secret's primary copy is here
  grants            = var.failover_grants
  topology_json     = local.guard_topology
  names_json        = local.names_json
  lambda_bundle_zip = var.lambda_bundle_zip
  lambda_runtime    = var.lambda_runtime
  second_prober     = true
}

module "failover_standby" {
  source            = "./modules/failover"
  count             = local.replica ? 1 : 0
  providers         = { aws = aws.standby }
  site              = local.s.aws_region
  role_name         = var.names.guard_role[local.s.aws_region]
  label             = local.s.name
  account_id        = var.account_id
  app_name          = var.app_name
  function_name     = var.names.failover_function
  notify_topic      = var.names.notify_topic
  state_table       = var.names.state_table
  admin_secret      = var.names.admin_secret
  alarm_topic_arn   = local.alarm_topic # the trigger wakes the failover target's guard
  grants            = var.failover_grants
  topology_json     = local.guard_topology
  names_json        = local.names_json
  lambda_bundle_zip = var.lambda_bundle_zip
  lambda_runtime    = var.lambda_runtime
  second_prober     = true
}

module "failover_witness" {
  source            = "./modules/failover"
  count             = local.replica ? 1 : 0
  providers         = { aws = aws.witness }
  site              = var.witness_region
  role_name         = var.names.guard_role[var.witness_region]
  label             = "witness"
  account_id        = var.account_id
  app_name          = var.app_name
  function_name     = var.names.failover_function
  notify_topic      = var.names.notify_topic
  state_table       = var.names.state_table
  admin_secret      = var.names.admin_secret
  grants            = var.failover_grants
  topology_json     = local.guard_topology
  names_json        = local.names_json
  lambda_bundle_zip = var.lambda_bundle_zip
  lambda_runtime    = var.lambda_runtime
}

# -- alarms, the us-east-1 trigger and the dashboard -----------------------------------------

module "monitoring_primary" {
  source         = "./modules/monitoring"
  providers      = { aws = aws.primary, aws.global = aws.global }
  label          = local.p.name
  aws_region     = local.p.aws_region
  app_name       = var.app_name
  account_id     = var.account_id
  topic_arn      = module.compute_primary.ops_topic_arn
  alarm_email    = var.alarm_email
  app_function   = local.serverless ? var.names.app_function[local.p.aws_region] : null
  compute        = var.compute
  alb_arn_suffix = module.compute_primary.alb_arn_suffix
  guard_function = local.replica ? var.names.failover_function : null
  trigger = {
    primary_host     = var.names.region_host[local.p.aws_region]
    alarm_topic      = var.names.alarm_topic
    subscribe_guard  = local.replica
    guard_arn        = local.replica ? module.failover_standby[0].function_arn : null
    sites            = [local.p.aws_region, local.s.aws_region, var.witness_region]
    app_regions      = [local.p.aws_region, local.s.aws_region]
    standby_region   = local.s.aws_region
    guard_function   = var.names.failover_function
    app_functions    = local.serverless ? { for r in [local.p.aws_region, local.s.aws_region] : r => var.names.app_function[r] } : {}
    replica_instance = var.database == "rds" && local.replica ? var.names.db_instance[local.s.aws_region] : null
  }
}

module "monitoring_standby" {
  source               = "./modules/monitoring"
  providers            = { aws = aws.standby, aws.global = aws.global }
  label                = local.s.name
  aws_region           = local.s.aws_region
  app_name             = var.app_name
  account_id           = var.account_id
  topic_arn            = module.compute_standby.ops_topic_arn
  alarm_email          = var.alarm_email
  replica_lag_instance = var.database == "rds" && local.replica ? var.names.db_instance[local.s.aws_region] : null
  rpo_target_s         = var.rpo_target_s
  app_function         = local.serverless ? var.names.app_function[local.s.aws_region] : null
  compute              = var.compute
  alb_arn_suffix       = module.compute_standby.alb_arn_suffix
  guard_function       = local.replica ? var.names.failover_function : null
}
