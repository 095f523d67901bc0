variable "site" {
  description = "The AWS Region of this site: one of the two app regions or the witness."
  type        = string
}

variable "label" {
  description = "The site's name in resource names: the topology's region name, or witness."
  type        = string
}

variable "account_id" {
  description = "The AWS account (key policy, ARNs)."
  type        = string
  validation {
    condition     = can(regex("^[0-9]{12}$", var.account_id))
    error_message = "account_id must be 12 digits."
  }
}

variable "app_name" {
  description = "The app's name in AWS resource names."
  type        = string
}

variable "function_name" {
  description = "The guard function (aws_naming: <app>-regionguard-failover), the same name in every site."
  type        = string
}

variable "role_name" {
  description = "The guard's role in this site (aws_naming: <app>-regionguard-guard-<region>); the registry's grants name it (IAM policy simulation)."
  type        = string
}

variable "notify_topic" {
  description = "The guard's notification topic in this site (aws_naming: <app>-regionguard-events)."
  type        = string
}

variable "state_table" {
  description = "The arbiter table (aws_naming)."
  type        = string
}

variable "admin_secret" {
  description = "The canary's credential, read from its copy in this site (aws_naming)."
  type        = string
}

variable "admin_key_alias" {
  description = "The alias of the admin secret's key when the secret's primary copy is in this site, else null (a replica uses Secrets Manager's key)."
  type        = string
  default     = null
}

variable "alarm_topic_arn" {
  description = "The us-east-1 alarm topic allowed to invoke this site's guard (the home standby's), or null."
  type        = string
  default     = null
}

variable "grants" {
  description = "The guard's IAM statements: generated from regionguard's registry (providers/aws/iam_actions.py) for this deployment, never written by hand."
  type = list(object({
    actions   = list(string)
    resources = list(string)
  }))
  validation {
    condition     = length(var.grants) > 0 && alltrue([for g in var.grants : length(g.actions) > 0 && length(g.resources) > 0])
    error_message = "grants must be the registry's statements, each with actions and resources (regionguard synth --format terraform writes them)."
  }
  validation {
    condition     = !anytrue([for g in var.grants : anytrue([for a in g.actions : startswith(a, "route53:")])])
    error_message = "grants must not contain a Route 53 action: the failover path never calls Route 53's control plane."
  }
}

variable "topology_json" {
  description = "The topology (JSON, without state_dir): the guard's RG_TOPOLOGY."
  type        = string
}

variable "names_json" {
  description = "RG_NAMES: the app's name and account as the guard's providers address resources."
  type        = string
}

variable "lambda_bundle_zip" {
  description = "The Lambda bundle (make lambda-bundle), zipped: the same code as the CDK app's guard."
  type        = string
}

variable "lambda_runtime" {
  description = "The Lambda runtime the bundle is built for."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the guard's logs (the CDK app keeps one month)."
  type        = number
  default     = 30
}

variable "second_prober" {
  description = "Whether this site (an app region) also runs the guard's second prober, on its own schedule."
  type        = bool
  default     = false
}
