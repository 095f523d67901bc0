variable "name" {
  description = "Prefix of this VPC's resources: <app>-<region name> (orders-east)."
  type        = string
}

variable "aws_region" {
  description = "The AWS Region of this VPC; its first two Availability Zones are used (a and b), as the CDK app does, so nothing is looked up."
  type        = string
}

variable "account_id" {
  description = "The AWS account, for the flow logs key's policy."
  type        = string
  validation {
    condition     = can(regex("^[0-9]{12}$", var.account_id))
    error_message = "account_id must be 12 digits."
  }
}

variable "cidr" {
  description = "The VPC's CIDR (a /16: three tiers of subnets are carved from it)."
  type        = string
  validation {
    condition     = can(cidrhost(var.cidr, 0)) && endswith(var.cidr, "/16")
    error_message = "cidr must be an IPv4 /16, e.g. 10.10.0.0/16."
  }
}

variable "log_retention_days" {
  description = "Retention of the flow logs (the CDK app keeps one month)."
  type        = number
  default     = 30
}
