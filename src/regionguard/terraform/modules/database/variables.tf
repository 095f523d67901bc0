variable "role" {
  description = "This region's home role: the primary holds the writer; the standby holds the cross-region replica (or the Aurora secondary cluster), or nothing but the subnet and security groups for backup & restore."
  type        = string
  validation {
    condition     = contains(["primary", "standby"], var.role)
    error_message = "role must be \"primary\" or \"standby\"."
  }
}

variable "aws_region" {
  description = "This region's AWS Region."
  type        = string
}

variable "account_id" {
  description = "The AWS account (key policies)."
  type        = string
}

variable "label" {
  description = "The topology's name of this region (east): descriptions only."
  type        = string
}

variable "database" {
  description = "rds (PostgreSQL or MySQL Multi-AZ with a cross-region read replica) or aurora-global (Aurora PostgreSQL Global Database)."
  type        = string
  validation {
    condition     = contains(["rds", "aurora-global"], var.database)
    error_message = "database must be \"rds\" or \"aurora-global\"."
  }
}

variable "engine" {
  description = "postgres or mysql (RDS only; Aurora Global is PostgreSQL)."
  type        = string
  validation {
    condition     = contains(["postgres", "mysql"], var.engine)
    error_message = "engine must be \"postgres\" or \"mysql\"."
  }
}

variable "replica" {
  description = "Whether the standby keeps a standing replica (false for backup & restore: a restore creates the instance under identifier, in subnet_group_name)."
  type        = bool
}

variable "identifier" {
  description = "This region's DB instance identifier (aws_naming: <app>-db-<region>)."
  type        = string
}

variable "cluster_identifier" {
  description = "This region's Aurora cluster identifier (aws_naming: <app>-aurora-<region>)."
  type        = string
}

variable "global_cluster_identifier" {
  description = "The Aurora global cluster (aws_naming: <app>-global)."
  type        = string
}

variable "subnet_group_name" {
  description = "The DB subnet group (aws_naming): a restore targets it by name."
  type        = string
}

variable "security_group_name" {
  description = "The database's security group (aws_naming): a restore targets it by name."
  type        = string
}

variable "secret_name" {
  description = "The credentials secret (aws_naming: <app>/regionguard/db); created in the primary, replicated to replica_regions under the same name."
  type        = string
}

variable "secret_replica_regions" {
  description = "Where the credentials secret is replicated (the other app region), so each region's app reads its own copy."
  type        = list(string)
  default     = []
}

variable "database_name" {
  description = "The database inside the instance (the topology's app)."
  type        = string
}

variable "instance_class" {
  description = "The DB instance class (db.t4g.medium by default for RDS; Aurora Global needs a memory-optimized class)."
  type        = string
  validation {
    condition     = can(regex("^db\\.[a-z0-9-]+\\.[a-z0-9]+$", var.instance_class))
    error_message = "instance_class must look like db.t4g.medium."
  }
}

variable "allocated_storage" {
  description = "GiB of storage (RDS; the CDK app's default is 100)."
  type        = number
  default     = 100
}

variable "backup_retention_days" {
  description = "Automated backups kept this many days."
  type        = number
  validation {
    condition     = var.backup_retention_days >= 1 && var.backup_retention_days <= 35
    error_message = "backup_retention_days must be 1..35."
  }
}

variable "vpc_id" {
  description = "The region's VPC."
  type        = string
}

variable "vpc_cidr" {
  description = "The VPC's CIDR: the only source the database accepts."
  type        = string
}

variable "subnet_ids" {
  description = "The isolated subnets."
  type        = list(string)
}

variable "source_instance_arn" {
  description = "Standby, RDS: the primary instance's ARN, the source of the cross-region read replica."
  type        = string
  default     = null
}

variable "global_cluster_id" {
  description = "Standby, Aurora: the global cluster the secondary joins (the primary module's output, so it exists first)."
  type        = string
  default     = null
}

variable "rds_proxy" {
  description = "Primary, RDS: put RDS Proxy in front of the instance (serverless compute)."
  type        = bool
  default     = false
}
