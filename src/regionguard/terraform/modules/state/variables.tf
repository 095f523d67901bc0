variable "account_id" {
  description = "The AWS account (key policy)."
  type        = string
}

variable "app_name" {
  description = "The app's name in AWS resource names."
  type        = string
}

variable "primary_region" {
  description = "The home primary's AWS Region: the table's stack and the secrets' primary copies live here."
  type        = string
}

variable "standby_region" {
  description = "The home standby's AWS Region: the table's second replica."
  type        = string
}

variable "witness_region" {
  description = "The arbiter's third site: a witness of the same DynamoDB multi-Region strong consistency Region set (it votes; it holds no readable replica)."
  type        = string
}

variable "table_name" {
  description = "The arbiter table (aws_naming: <app>-regionguard-state)."
  type        = string
}

variable "admin_secret" {
  description = "The canary's credential (aws_naming: <app>/regionguard/admin-token), replicated to every site."
  type        = string
}

variable "origin_secret" {
  description = "CloudFront's origin header secret (aws_naming), replicated to every site and us-east-1; null when nothing is serverless."
  type        = string
  default     = null
}
