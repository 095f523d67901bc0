output "bucket_arn" {
  description = "This region's static-content bucket (versioned: a replication destination)."
  value       = aws_s3_bucket.static.arn
  depends_on  = [aws_s3_bucket_versioning.static]
}

output "bucket_regional_domain_name" {
  description = "This region's bucket as a CloudFront origin."
  value       = aws_s3_bucket.static.bucket_regional_domain_name
}

output "distribution_domain_name" {
  description = "The CloudFront distribution's name (the primary's call), or null."
  value       = length(aws_cloudfront_distribution.this) > 0 ? aws_cloudfront_distribution.this[0].domain_name : null
}
