variable "account_id" {
  description = "The AWS account (key policies)."
  type        = string
}

variable "app_name" {
  description = "The app's name in AWS resource names (the keys' descriptions)."
  type        = string
}

variable "table_name" {
  description = "The sessions table (aws_naming: <app>-sessions); each Region's key is alias/<table_name>."
  type        = string
}

variable "primary_label" {
  description = "The topology's name of the home primary's region (east): the table is created there."
  type        = string
}

variable "standby_label" {
  description = "The topology's name of the home standby's region (west)."
  type        = string
}

variable "standby_region" {
  description = "The home standby's AWS Region: the table's second replica."
  type        = string
}
