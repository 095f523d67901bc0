output "function_arn" {
  description = "The guard function in this site."
  value       = aws_lambda_function.guard.arn
}

output "role_arn" {
  description = "The guard's role (the registry's statements)."
  value       = aws_iam_role.guard.arn
}
