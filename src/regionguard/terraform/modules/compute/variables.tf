variable "label" {
  description = "The topology's name of this region (east)."
  type        = string
}

variable "aws_region" {
  description = "This region's AWS Region."
  type        = string
}

variable "account_id" {
  description = "The AWS account (key policies, ARNs)."
  type        = string
}

variable "app_name" {
  description = "The app's name in AWS resource names (aws_naming: the topology's app with - for _)."
  type        = string
}

variable "compute" {
  description = "ec2 (an Auto Scaling group behind an ALB) or lambda (the app on Lambda behind an API Gateway HTTP API)."
  type        = string
  validation {
    condition     = contains(["ec2", "lambda"], var.compute)
    error_message = "compute must be \"ec2\" or \"lambda\"."
  }
}

variable "domain" {
  description = "The app's public name (the failover or latency record's name)."
  type        = string
}

variable "hosted_zone_id" {
  description = "The Route 53 public hosted zone of domain (certificate validation records)."
  type        = string
}

variable "region_host" {
  description = "This region's own name (aws_naming: <aws region>.<domain>): the health checks ask it."
  type        = string
}

variable "health_host" {
  description = "The /health-check API's name (aws_naming: health.<domain>)."
  type        = string
}

variable "region_hosts" {
  description = "RG_REGION_HOSTS for the app: region name=host pairs, every region."
  type        = string
}

variable "region_names" {
  description = "The topology's region names, every region (the health rows the function reports)."
  type        = list(string)
}

variable "arbiter_regions" {
  description = "The arbiter's replicas, this region first (the app confirms its write lease from the nearest)."
  type        = list(string)
}

variable "state_table" {
  description = "The arbiter table (aws_naming)."
  type        = string
}

variable "sessions_table" {
  description = "The app's sessions table (aws_naming): the app uses this region's replica (RG_SESSIONS_TABLE)."
  type        = string
}

variable "session_grant" {
  description = "What the app's role may do on the sessions table in this region, from regionguard's registry (providers/aws/iam_actions.py): its actions on this region's replica only."
  type = object({
    actions   = list(string)
    resources = list(string)
  })
}

variable "sessions_key_alias" {
  description = "The alias of this region's key of its sessions replica (the sessions module's)."
  type        = string
}

variable "lease_s" {
  description = "The write lease: the app refuses writes it cannot confirm for this long."
  type        = number
  validation {
    condition     = var.lease_s >= 5 && var.lease_s <= 600
    error_message = "lease_s must be 5..600."
  }
}

variable "engine" {
  description = "The database engine (postgres or mysql)."
  type        = string
}

variable "database_name" {
  description = "The database inside the instance."
  type        = string
}

variable "db_host" {
  description = "This region's database endpoint; empty when it does not exist yet (backup & restore's standby: the app finds the restored instance by db_instance)."
  type        = string
}

variable "db_port" {
  description = "The database's port."
  type        = number
}

variable "db_instance" {
  description = "The DB instance identifier a restore creates (backup & restore's standby)."
  type        = string
}

variable "db_secret" {
  description = "The credentials secret's name (its replica in this region is read)."
  type        = string
}

variable "db_key_arn" {
  description = "The key of the secret's primary copy when it lives in this region, else null (a replica uses Secrets Manager's key, which needs no grant)."
  type        = string
  default     = null
}

variable "admin_secret" {
  description = "The canary's credential (aws_naming)."
  type        = string
}

variable "admin_key_alias" {
  description = "The alias of the key of the admin (and origin) secrets' primary copy when it lives in this region, else null."
  type        = string
  default     = null
}

variable "origin_secret" {
  description = "CloudFront's origin header secret (serverless), or null."
  type        = string
  default     = null
}

variable "instance_type" {
  description = "EC2 instance type of the app."
  type        = string
}

variable "capacity" {
  description = "Instances (or nothing for Lambda) the region runs as primary."
  type        = number
}

variable "desired_capacity" {
  description = "Instances the region runs as deployed (home roles): 0 for the standby of pilot light and backup & restore."
  type        = number
}

variable "vpc_id" {
  description = "The region's VPC."
  type        = string
}

variable "vpc_cidr" {
  description = "The VPC's CIDR."
  type        = string
}

variable "public_subnet_ids" {
  description = "Public subnets (the ALB)."
  type        = list(string)
}

variable "private_subnet_ids" {
  description = "Private subnets (instances, the app function)."
  type        = list(string)
}

variable "asg_name" {
  description = "The Auto Scaling group (aws_naming: <app>-asg-<region>): the engine scales it by name."
  type        = string
}

variable "app_function_name" {
  description = "The app function (aws_naming: <app>-app-<region>)."
  type        = string
}

variable "health_function_name" {
  description = "The health writer function (aws_naming: <app>-health-writer-<region>)."
  type        = string
}

variable "lambda_bundle_zip" {
  description = "The Lambda bundle (make lambda-bundle), zipped: the code of the app and health functions."
  type        = string
}

variable "lambda_runtime" {
  description = "The Lambda runtime the bundle is built for."
  type        = string
}

variable "app_wheelhouse_zip" {
  description = "The app's wheelhouse (make wheelhouse), zipped: EC2 instances install it with pip --no-index --require-hashes."
  type        = string
}

variable "provisioned_concurrency" {
  description = "Provisioned concurrency of the app function's live alias (0: none)."
  type        = number
  default     = 0
}

variable "api_rate_limit" {
  description = "API Gateway stage throttling: steady requests per second."
  type        = number
}

variable "api_burst_limit" {
  description = "API Gateway stage throttling: burst."
  type        = number
}

variable "cors_origins" {
  description = "Origins allowed to call the API from a browser (none: no CORS)."
  type        = list(string)
  default     = []
}

variable "waf_rate_limit" {
  description = "AWS WAF's rate-based rule: requests per client IP per 5 minutes."
  type        = number
}

variable "log_retention_days" {
  description = "Retention of the functions' and APIs' logs (the CDK app keeps one month)."
  type        = number
  default     = 30
}
