"""The AWS world: the engine's ports over boto3, and the failover Lambda's wiring.

Every boto3 call goes through `AwsClients.get(service, region).<operation>(...)`: one place to
inject a session (tests use moto) and one shape the IAM coverage test can find in the source.
"""
