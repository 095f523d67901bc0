variable "label" {
  description = "The topology's name of this region (east)."
  type        = string
}

variable "aws_region" {
  description = "This region's AWS Region."
  type        = string
}

variable "account_id" {
  description = "The AWS account (bucket policies)."
  type        = string
}

variable "app_name" {
  description = "The app's name in AWS resource names."
  type        = string
}

variable "role" {
  description = "The region's home role: the primary's bucket replicates to the standby's, and the primary's call builds the edge."
  type        = string
  validation {
    condition     = contains(["primary", "standby"], var.role)
    error_message = "role must be \"primary\" or \"standby\"."
  }
}

variable "bucket_name" {
  description = "This region's static-content bucket (aws_naming: <app>-static-<account>-<region>)."
  type        = string
}

variable "replicate_to_bucket_arn" {
  description = "Primary: the bucket every object is replicated to (the standby's, versioned)."
  type        = string
  default     = null
}

variable "edge" {
  description = "In the primary's call only: CloudFront (us-east-1) in front of both buckets (an origin group that fails over from the primary's to the standby's) and of the API, with AWS WAF."
  type = object({
    domain                = string
    primary_bucket_domain = string
    standby_bucket_domain = string
    waf_rate_limit        = number
    origin_header_name    = string
  })
  default = null
}

variable "origin_header_value" {
  description = "The value CloudFront adds as edge.origin_header_name to API requests (the origin secret); the app refuses API calls without it."
  type        = string
  default     = null
  sensitive   = true
}
