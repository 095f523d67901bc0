# The topology's values: `regionguard synth --format terraform` writes them from regionguard.toml
# into terraform.tfvars.json (and the guard's IAM into failover_grants.auto.tfvars.json).

variable "app_name" {
  description = "The app's name in AWS resource names (aws_naming: the topology's app with - for _)."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,40}$", var.app_name))
    error_message = "app_name must be lower-case letters, digits and -, starting with a letter (at most 41 characters)."
  }
}

variable "database_name" {
  description = "The database inside the instance: the topology's app."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9_]{0,40}$", var.database_name))
    error_message = "database_name must be the topology's app (lower-case letters, digits and _)."
  }
}

variable "account_id" {
  description = "The AWS account of every region (the providers refuse any other)."
  type        = string
  validation {
    condition     = can(regex("^[0-9]{12}$", var.account_id))
    error_message = "account_id must be 12 digits."
  }
}

variable "domain" {
  description = "The app's public name, in hosted_zone_id: the failover or latency record."
  type        = string
  validation {
    condition     = can(regex("^[a-z0-9.-]+\\.[a-z]{2,}$", var.domain))
    error_message = "domain must be a DNS name such as app.example.com."
  }
}

variable "hosted_zone_id" {
  description = "The Route 53 public hosted zone of domain."
  type        = string
  validation {
    condition     = can(regex("^[A-Z0-9]{4,32}$", var.hosted_zone_id))
    error_message = "hosted_zone_id must be a Route 53 zone id (upper-case letters and digits)."
  }
}

variable "primary" {
  description = "The home primary region: its topology name, AWS Region, capacity (instances as primary) and standby_capacity."
  type = object({
    name             = string
    aws_region       = string
    capacity         = number
    standby_capacity = number
  })
  validation {
    condition     = var.primary.capacity >= 1 && var.primary.capacity <= 16 && can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.primary.aws_region))
    error_message = "primary.capacity must be 1..16 and primary.aws_region an AWS Region such as us-east-1."
  }
  validation {
    condition = (local.strategy_rules[var.strategy].standby_capacity == "zero" ? var.primary.standby_capacity == 0
      : local.strategy_rules[var.strategy].standby_capacity == "full" ? var.primary.standby_capacity == var.primary.capacity
    : var.primary.standby_capacity > 0 && var.primary.standby_capacity < var.primary.capacity)
    error_message = "primary.standby_capacity does not fit strategy ${var.strategy}: ${local.strategy_rules[var.strategy].standby_text}."
  }
}

variable "standby" {
  description = "The home standby region: its topology name, AWS Region, capacity (instances as primary) and standby_capacity."
  type = object({
    name             = string
    aws_region       = string
    capacity         = number
    standby_capacity = number
  })
  validation {
    condition     = var.standby.capacity >= 1 && var.standby.capacity <= 16 && can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.standby.aws_region))
    error_message = "standby.capacity must be 1..16 and standby.aws_region an AWS Region such as us-west-2."
  }
  validation {
    condition = (local.strategy_rules[var.strategy].standby_capacity == "zero" ? var.standby.standby_capacity == 0
      : local.strategy_rules[var.strategy].standby_capacity == "full" ? var.standby.standby_capacity == var.standby.capacity
    : var.standby.standby_capacity > 0 && var.standby.standby_capacity < var.standby.capacity)
    error_message = "standby.standby_capacity does not fit strategy ${var.strategy}: ${local.strategy_rules[var.strategy].standby_text}."
  }
}

variable "witness_region" {
  description = "The arbiter's third site (aws.witness_region, default the MRSC Region set's remaining Region): it votes and hosts a prober."
  type        = string
  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.witness_region))
    error_message = "witness_region must be an AWS Region such as us-east-2."
  }
}

variable "compute" {
  description = "ec2 (an Auto Scaling group behind an ALB) or lambda (the app on Lambda behind API Gateway)."
  type        = string
  validation {
    condition     = contains(local.strategy_rules[var.strategy].compute, var.compute)
    error_message = "compute must be one of ${join(" or ", local.strategy_rules[var.strategy].compute)} with strategy ${var.strategy}."
  }
}

variable "database" {
  description = "rds (Multi-AZ with a cross-region read replica) or aurora-global (Aurora PostgreSQL Global Database)."
  type        = string
  validation {
    condition     = contains(local.strategy_rules[var.strategy].database, var.database)
    error_message = "database must be one of ${join(" or ", local.strategy_rules[var.strategy].database)} with strategy ${var.strategy}."
  }
}

variable "engine" {
  description = "The RDS engine: postgres, or mysql (RDS MySQL 8.4, seed 000)."
  type        = string
  default     = "postgres"
  validation {
    condition     = contains(["postgres", "mysql"], var.engine)
    error_message = "engine must be \"postgres\" or \"mysql\"."
  }
}

variable "rds_proxy" {
  description = "Lambda compute on RDS: connect through RDS Proxy."
  type        = bool
  default     = false
}

variable "routing" {
  description = "failover (PRIMARY/SECONDARY records on each region's /health/route) or latency (active-active; /health/deep)."
  type        = string
  validation {
    condition     = contains(local.strategy_rules[var.strategy].routing, var.routing)
    error_message = "routing must be one of ${join(" or ", local.strategy_rules[var.strategy].routing)} with strategy ${var.strategy} (latency routing sends traffic to both regions)."
  }
}

variable "db_instance_class" {
  description = "The DB instance class (db.t4g.medium by default for RDS, db.r6g.large for Aurora Global Database, which needs a memory-optimized class)."
  type        = string
  validation {
    condition     = can(regex("^db\\.[a-z0-9-]+\\.[a-z0-9]+$", var.db_instance_class))
    error_message = "db_instance_class must look like db.t4g.medium."
  }
}

variable "instance_type" {
  description = "The app's EC2 instance type."
  type        = string
  default     = "t3.small"
}

variable "backup_retention_days" {
  description = "Automated backups and AWS Backup copies are kept this many days."
  type        = number
  default     = 7
  validation {
    condition     = var.backup_retention_days >= 1 && var.backup_retention_days <= 35
    error_message = "backup_retention_days must be 1..35."
  }
}

variable "provisioned_concurrency" {
  description = "Provisioned concurrency of the app function where it runs (0: none)."
  type        = number
  default     = 0
  validation {
    condition     = var.provisioned_concurrency >= 0 && var.provisioned_concurrency <= 100
    error_message = "provisioned_concurrency must be 0..100."
  }
}

variable "alarm_email" {
  description = "An address subscribed to each region's operations topic, or null."
  type        = string
  default     = null
}

variable "api_rate_limit" {
  description = "API Gateway stage throttling: steady requests per second."
  type        = number
  default     = 100
  validation {
    condition     = var.api_rate_limit > 0 && var.api_rate_limit <= 10000
    error_message = "api_rate_limit must be in (0, 10000]."
  }
}

variable "api_burst_limit" {
  description = "API Gateway stage throttling: burst."
  type        = number
  default     = 200
  validation {
    condition     = var.api_burst_limit >= 1 && var.api_burst_limit <= 5000
    error_message = "api_burst_limit must be 1..5000."
  }
}

variable "cors_origins" {
  description = "Origins allowed to call the API from a browser (API Gateway only; none: no CORS)."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for o in var.cors_origins : can(regex("^https?://[a-z0-9.-]+(:[0-9]+)?$", o))])
    error_message = "cors_origins must be origins such as https://shop.example.com."
  }
}

variable "waf_rate_limit" {
  description = "AWS WAF's rate-based rule: requests per client IP per 5 minutes."
  type        = number
  default     = 2000
  validation {
    condition     = var.waf_rate_limit >= 10 && var.waf_rate_limit <= 2000000000
    error_message = "waf_rate_limit must be 10..2000000000."
  }
}

variable "lease_s" {
  description = "The write lease: an app refuses writes it cannot confirm from the arbiter for this long; a plan waits it out before routing writes elsewhere."
  type        = number
  default     = 30
  validation {
    condition     = var.lease_s >= 5 && var.lease_s <= 600
    error_message = "lease_s must be 5..600."
  }
}

variable "probe_interval_s" {
  description = "Each vantage point (guard) probes the live primary this often."
  type        = number
  default     = 5
  validation {
    condition     = var.probe_interval_s >= 1 && var.probe_interval_s <= 60
    error_message = "probe_interval_s must be 1..60."
  }
}

variable "probe_timeout_s" {
  description = "A probe that takes longer has failed (below probe_interval_s)."
  type        = number
  default     = 2
  validation {
    condition     = var.probe_timeout_s > 0 && var.probe_timeout_s <= 30
    error_message = "probe_timeout_s must be in (0, 30]."
  }
}

variable "dns_check_interval_s" {
  description = "Route 53 health checks' RequestInterval: 10 or 30 seconds."
  type        = number
  default     = 10
  validation {
    condition     = contains([10, 30], var.dns_check_interval_s)
    error_message = "dns_check_interval_s must be 10 or 30."
  }
}

variable "dns_failure_threshold" {
  description = "Route 53 health checks' FailureThreshold."
  type        = number
  default     = 2
  validation {
    condition     = var.dns_failure_threshold >= 1 && var.dns_failure_threshold <= 10
    error_message = "dns_failure_threshold must be 1..10."
  }
}

variable "dns_record" {
  description = "The app's failover (or latency) records: alias (the target's TTL: an ALB's 60 s; queries not billed) or cname (its own TTL, dns_ttl_s; not at a zone's apex)."
  type        = string
  default     = "alias"
  validation {
    condition     = contains(["cname", "alias"], var.dns_record)
    error_message = "dns_record must be \"cname\" or \"alias\"."
  }
}

variable "dns_ttl_s" {
  description = "The CNAME records' TTL: how long a client may keep the old answer after a failover."
  type        = number
  default     = 15
  validation {
    condition     = var.dns_ttl_s >= 1 && var.dns_ttl_s <= 86400 && floor(var.dns_ttl_s) == var.dns_ttl_s
    error_message = "dns_ttl_s must be a whole number of seconds, 1..86400."
  }
}

variable "rpo_target_s" {
  description = "The RPO target: the standby's replica lag is alarmed above it."
  type        = number
  default     = 0
  validation {
    condition     = var.rpo_target_s >= 0
    error_message = "rpo_target_s must be >= 0."
  }
}

variable "names" {
  description = "Every resource name, from regionguard's aws_naming (the CDK app and the engine's providers use the same): per-region names are maps keyed by AWS Region."
  type = object({
    db_instance       = map(string)
    db_cluster        = map(string)
    global_cluster    = string
    asg               = map(string)
    app_function      = map(string)
    failover_function = string
    guard_role        = map(string)
    health_function   = map(string)
    db_subnet_group   = map(string)
    db_security_group = map(string)
    db_secret         = string
    admin_secret      = string
    origin_secret     = string
    state_table       = string
    sessions_table    = string
    alarm_topic       = string
    notify_topic      = string
    region_host       = map(string)
    health_host       = string
    static_bucket     = map(string)
    backup_vault      = map(string)
  })
}

variable "app_session_grants" {
  description = "What each app region's role may do on the sessions table, keyed by AWS Region, from regionguard's registry (providers/aws/iam_actions.py: APP_SESSION_ACTIONS on that region's replica only): never written by hand."
  type = map(object({
    actions   = list(string)
    resources = list(string)
  }))
  validation {
    condition     = alltrue([for region, grant in var.app_session_grants : alltrue([for arn in grant.resources : startswith(arn, "arn:aws:dynamodb:${region}:")])])
    error_message = "app_session_grants: each region's app may use its own region's replica only (an ARN of another region is named)."
  }
}

variable "topology_json" {
  description = "The topology as JSON (without state_dir): the guard runs with it (RG_TOPOLOGY); the lease, probe and DNS settings above replace its own."
  type        = string
  validation {
    condition     = can(jsondecode(var.topology_json).aws)
    error_message = "topology_json must be the topology as JSON, with its aws section."
  }
}

variable "failover_grants" {
  description = "The guard's IAM statements, generated from regionguard's registry (providers/aws/iam_actions.py) for this deployment: never written by hand."
  type = list(object({
    actions   = list(string)
    resources = list(string)
  }))
}

variable "lambda_bundle_zip" {
  description = "The Lambda bundle (make lambda-bundle), zipped: the code of the guard, app and health functions, the same bundle the CDK app deploys."
  type        = string
  default     = "build/lambda.zip"
}

variable "lambda_runtime" {
  description = "The Lambda runtime the bundle is built for (the CDK app's)."
  type        = string
  default     = "python3.13"
  validation {
    condition     = can(regex("^python3\\.[0-9]+$", var.lambda_runtime))
    error_message = "lambda_runtime must be a Python runtime such as python3.13."
  }
}

variable "app_wheelhouse_zip" {
  description = "The app's wheelhouse (make wheelhouse), zipped: EC2 instances install it with pip --no-index --require-hashes."
  type        = string
  default     = "build/wheelhouse.zip"
}
