variable "label" {
  description = "The topology's name of this region (east)."
  type        = string
}

variable "account_id" {
  description = "The AWS account (key policy)."
  type        = string
}

variable "vault_name" {
  description = "This region's vault (aws_naming: <app>-vault-<region>): a restore finds the copies there."
  type        = string
}

variable "database_arn" {
  description = "The primary's database (RDS instance or Aurora cluster) the plan backs up; null in the region that only receives copies."
  type        = string
  default     = null
}

variable "copy_to_vault_arn" {
  description = "The other region's vault: every backup is copied there (cross-region). Set with database_arn."
  type        = string
  default     = null
}

variable "retention_days" {
  description = "Days a backup (and its copy) is kept: the topology's backup_retention_days."
  type        = number
  validation {
    condition     = var.retention_days >= 1 && var.retention_days <= 35
    error_message = "retention_days must be 1..35."
  }
}
