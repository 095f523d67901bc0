variable "label" {
  description = "The topology's name of this region (east)."
  type        = string
}

variable "aws_region" {
  description = "This region's AWS Region (metrics carry it)."
  type        = string
}

variable "app_name" {
  description = "The app's name in AWS resource names."
  type        = string
}

variable "account_id" {
  description = "The AWS account (key policy, ARNs)."
  type        = string
}

variable "topic_arn" {
  description = "The region's operations topic: every alarm notifies it."
  type        = string
}

variable "alarm_email" {
  description = "An address subscribed to the operations topic, or null."
  type        = string
  default     = null
  validation {
    condition     = var.alarm_email == null || can(regex("^[^@\\s]+@[^@\\s]+\\.[a-z]{2,}$", var.alarm_email))
    error_message = "alarm_email must be an e-mail address."
  }
}

variable "replica_lag_instance" {
  description = "The standby's RDS read replica (its ReplicaLag is alarmed above the RPO target), or null."
  type        = string
  default     = null
}

variable "rpo_target_s" {
  description = "The RPO target: replica lag above it means a failover would lose more than allowed."
  type        = number
  default     = 0
}

variable "compute" {
  description = "ec2 (the ALB's 5xx are alarmed) or lambda (the app function's errors are)."
  type        = string
  validation {
    condition     = contains(["ec2", "lambda"], var.compute)
    error_message = "compute must be \"ec2\" or \"lambda\"."
  }
}

variable "app_function" {
  description = "The app function (serverless: its Errors are alarmed), or null."
  type        = string
  default     = null
}

variable "alb_arn_suffix" {
  description = "The ALB (EC2: its 5xx are alarmed), or null."
  type        = string
  default     = null
}

variable "guard_function" {
  description = "The guard function (its Errors are alarmed), or null when no guard runs (backup & restore)."
  type        = string
  default     = null
}

variable "trigger" {
  description = "In one module call only: the us-east-1 trigger (HTTPS health check of the primary's /health/deep -> alarm -> SNS -> the standby's guard) and the dashboard across both regions."
  type = object({
    primary_host     = string
    alarm_topic      = string
    subscribe_guard  = bool
    guard_arn        = optional(string)
    sites            = list(string)
    app_regions      = list(string)
    standby_region   = string
    guard_function   = string
    app_functions    = map(string)
    replica_instance = optional(string)
  })
  default = null
}
