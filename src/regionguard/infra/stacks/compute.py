"""Per region: the app's compute and its entry point, plus the `/health-check` API.

EC2: an internet-facing ALB (HTTPS) in front of an Auto Scaling group from a launch template
whose user data runs the workload app; the backup region's group is 0/0/0 in pilot light.
Lambda: the same app behind API Gateway (HTTP API) through Mangum. Either way the region gets
`<region>.<domain>` and its half of the failover (or latency) record for `<domain>`.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, Stack
from aws_cdk import aws_apigatewayv2 as apigw
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_route53_targets as r53targets
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sns as sns
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from regionguard.config import Role
from regionguard.infra.artifacts import wheelhouse_path
from regionguard.infra.stacks.common import (
    LAMBDA_RUNTIME,
    RUNTIME_NAG,
    cmk,
    lambda_code,
    lambda_role,
    log_group,
    secure_bucket,
)
from regionguard.infra.stacks.database import DatabaseStack
from regionguard.infra.stacks.nag import justify
from regionguard.infra.stacks.waf import web_acl
from regionguard.infra.view import AwsRegion, AwsView
from regionguard.providers.aws.iam_actions import (
    APP_LEASE_READ_ACTIONS,
    APP_LEASE_RECORD_ACTIONS,
    APP_SESSION_ACTIONS,
    app_lease_record_condition,
    app_session_resources,
)

APP_PORT = 8000
# What the app's role may do with its own Region's sessions key, and only through DynamoDB in that
# Region (kms:ViaService). Followed: the AWS KMS Developer Guide, "How Amazon DynamoDB uses AWS
# KMS" (key policy for a customer managed key): DynamoDB uses a customer managed key on behalf
# of the principal that calls it, which needs kms:Encrypt, kms:Decrypt, kms:ReEncrypt*,
# kms:GenerateDataKey*, kms:DescribeKey and kms:CreateGrant on the key, the example limited by
# kms:ViaService dynamodb.<region>.amazonaws.com. The keys' policy is the default one (the
# account, so IAM policies decide); CreateGrant and ReEncrypt* serve creating the table and
# changing its key, which the deployer does, not the app. The Terraform module grants the same.
SESSION_KEY_ACTIONS = ("kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey")


class ComputeStack(Stack):
    def __init__(self, scope: Construct, id: str, *, view: AwsView, region: AwsRegion,
                 vpc: ec2.IVpc, database: DatabaseStack, state_table_name: str,
                 admin_key: kms.IKey | None = None, **kwargs: Any) -> None:
        super().__init__(scope, id, **kwargs)
        self.view = view
        self.region_spec = region
        self.admin_key = admin_key  # the admin secret's CMK, where its primary copy lives
        names = view.names
        r = region.aws_region
        self.zone = route53.HostedZone.from_hosted_zone_attributes(
            self, "Zone", hosted_zone_id=view.settings.hosted_zone_id,
            zone_name=view.settings.hosted_zone_name or view.settings.domain)
        self.host = names.region_host(r)
        self.certificate = acm.Certificate(
            self, "Cert", domain_name=self.host,
            subject_alternative_names=[view.settings.domain, view.names.health_host()],
            validation=acm.CertificateValidation.from_dns(self.zone))
        self.log_key = cmk(self, "LogKey", f"logs and notifications in {region.name}")
        self.ops_topic = sns.Topic(self, "OpsTopic", master_key=self.log_key,
                                   enforce_ssl=True)
        self.ops_topic.add_to_resource_policy(iam.PolicyStatement(
            actions=["sns:Publish"], resources=[self.ops_topic.topic_arn],
            principals=[iam.ServicePrincipal("autoscaling.amazonaws.com")]))
        self.log_key.grant_encrypt_decrypt(iam.ServicePrincipal("cloudwatch.amazonaws.com"))
        self.log_key.grant_encrypt_decrypt(iam.ServicePrincipal("autoscaling.amazonaws.com"))
        replicas = [r, *(x for x in view.replica_regions if x != r)]
        dsn_env = {
            "RG_REGION": region.name,
            # this Region's database, with the credentials of the secret's replica in this
            # Region: nothing the app needs to start lives in another Region
            "RG_DB_ENGINE": view.settings.engine,
            "RG_DB_HOST": database.endpoint_host,
            "RG_DB_PORT": database.endpoint_port,
            "RG_DB_NAME": view.topology.app,
            "RG_DB_SECRET_ID": names.db_secret(),
            "RG_DB_SECRET_REGION": r,
            "RG_ADMIN_TOKEN_SECRET": names.admin_secret(),  # the canary's credential
            # serverless: API calls must carry CloudFront's origin header (app/origin.py)
            **({"RG_ORIGIN_SECRET": names.origin_secret()} if view.serverless else {}),
            # the write lease: confirmed from the arbiter, nearest replica first
            "RG_ARBITER_TABLE": names.state_table(),
            "RG_ARBITER_REGIONS": ",".join(replicas),
            "RG_LEASE_S": f"{view.settings.lease_s:g}",
            # reads local, writes to the Region the arbiter names (active-active)
            "RG_REGION_HOSTS": ",".join(f"{x.name}={names.region_host(x.aws_region)}"
                                        for x in view.regions),
            # sessions: this Region's replica of the global table, by this Region's endpoint
            # (written locally in every Region, last writer wins; nothing of it fails over)
            "RG_SESSIONS_TABLE": names.sessions_table(),
            "RG_SESSIONS_REGION": r,
        }
        if not database.endpoint_host:  # backup & restore: found by identifier once restored
            del dsn_env["RG_DB_HOST"], dsn_env["RG_DB_PORT"]
            dsn_env["RG_DB_INSTANCE"] = database.restore_into
        if view.serverless:
            alias = self._lambda_app(vpc, database, dsn_env)
        else:
            alias = self._ec2_app(vpc, database, dsn_env)
        self._records(*alias)
        self._health_check_api(state_table_name)

    # -- EC2 ---------------------------------------------------------------------------------

    def _ec2_app(self, vpc: ec2.IVpc, database: DatabaseStack,
                 env: dict[str, str]) -> tuple[route53.RecordTarget, str, str]:
        v, r = self.view, self.region_spec
        logs_bucket = secure_bucket(self, "AlbLogs", for_logs=True)
        alb_sg = ec2.SecurityGroup(self, "AlbSg", vpc=vpc, description="HTTPS from anywhere")
        alb_sg.add_ingress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS")
        alb_sg.add_ingress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(80), "HTTP -> HTTPS redirect")
        justify(alb_sg, {"AwsSolutions-EC23": "a public web entry point accepts 80/443 from "
                         "anywhere by design; the app tier is reachable only from this ALB"})
        self.alb = elbv2.ApplicationLoadBalancer(
            self, "Alb", vpc=vpc, internet_facing=True, security_group=alb_sg,
            drop_invalid_header_fields=True)
        self.alb.log_access_logs(logs_bucket, prefix="alb")
        acl = web_acl(self, "AlbWaf", name=f"{v.names.app}-alb-{r.name}", waf_scope="REGIONAL",
                      rate_limit=v.settings.waf_rate_limit)
        wafv2.CfnWebACLAssociation(self, "AlbWafAssociation", web_acl_arn=acl.attr_arn,
                                   resource_arn=self.alb.load_balancer_arn)
        self.alb.add_redirect(source_port=80, target_port=443)
        app_sg = ec2.SecurityGroup(self, "AppSg", vpc=vpc, description="app from the ALB")
        app_sg.add_ingress_rule(alb_sg, ec2.Port.tcp(APP_PORT), "app port from the ALB")
        role = iam.Role(self, "InstanceRole",
                        assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
                        managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name(
                            "AmazonSSMManagedInstanceCore")])
        justify(role, {"AwsSolutions-IAM4": "AmazonSSMManagedInstanceCore: Session Manager "
                       "access instead of SSH keys, maintained by AWS"})
        self._allow_secret(role, database)
        self._allow_lease(role)
        self._allow_sessions(role, database)
        user_data = ec2.UserData.for_linux()
        exports = "\n".join(f"{k}={v_}" for k, v_ in env.items())  # one per line (systemd)
        # the app is the wheelhouse this repo builds, from the CDK asset bucket, installed
        # from that folder only and against the sha256 of every wheel: no package index
        wheels = s3_assets.Asset(self, "AppWheels", path=str(wheelhouse_path(self)))
        role.add_to_principal_policy(iam.PolicyStatement(  # that one object, no wildcard
            actions=["s3:GetObject"],
            resources=[wheels.bucket.arn_for_objects(wheels.s3_object_key)]))
        user_data.add_commands("set -euo pipefail")
        archive = user_data.add_s3_download_command(
            bucket=wheels.bucket, bucket_key=wheels.s3_object_key,
            local_file="/opt/regionguard/wheels.zip")
        user_data.add_commands(
            "dnf install -y python3.11 python3.11-pip unzip",
            f"unzip -o -q {archive} -d /opt/regionguard/wheels",
            "python3.11 -m venv /opt/regionguard/venv",
            "/opt/regionguard/venv/bin/pip install --no-index --find-links "
            "/opt/regionguard/wheels --require-hashes "
            "-r /opt/regionguard/wheels/requirements.txt",
            f"cat > /etc/regionguard.env <<'ENV'\n{exports}\nENV",
            "useradd --system regionguard || true",
            "cat > /etc/systemd/system/regionguard-app.service <<'UNIT'\n[Unit]\n"
            "After=network-online.target\nWants=network-online.target\n"
            "StartLimitIntervalSec=0\n[Service]\n"
            "EnvironmentFile=/etc/regionguard.env\nUser=regionguard\nRestartSec=5\n"
            f"ExecStart=/opt/regionguard/venv/bin/python -m uvicorn "
            "regionguard.app.main:create_app "
            f"--factory --host 0.0.0.0 --port {APP_PORT}\nRestart=always\n[Install]\n"
            "WantedBy=multi-user.target\nUNIT",
            "systemctl daemon-reload && systemctl enable --now regionguard-app",
        )
        template = ec2.LaunchTemplate(
            self, "LaunchTemplate",
            machine_image=ec2.MachineImage.latest_amazon_linux2023(),
            instance_type=ec2.InstanceType(v.settings.instance_type),
            security_group=app_sg, role=role, user_data=user_data, require_imdsv2=True,
            block_devices=[ec2.BlockDevice(device_name="/dev/xvda", volume=ec2.BlockDeviceVolume
                                           .ebs(20, encrypted=True))],
        )
        desired = v.desired_capacity(r)
        self.asg = autoscaling.AutoScalingGroup(
            self, "Asg", vpc=vpc, launch_template=template,
            auto_scaling_group_name=v.names.asg(r.aws_region),
            min_capacity=desired, max_capacity=max(desired, r.capacity if desired else 0),
            desired_capacity=desired,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
            health_checks=autoscaling.HealthChecks.with_additional_checks(
                additional_types=[autoscaling.AdditionalHealthCheckType.ELB],
                grace_period=Duration.seconds(60)),
            notifications=[autoscaling.NotificationConfiguration(topic=self.ops_topic)],
        )
        listener = self.alb.add_listener(
            "Https", port=443, certificates=[self.certificate],
            ssl_policy=elbv2.SslPolicy.RECOMMENDED_TLS, open=False)
        listener.add_targets(
            "App", port=APP_PORT, protocol=elbv2.ApplicationProtocol.HTTP, targets=[self.asg],
            health_check=elbv2.HealthCheck(path="/health/deep", interval=Duration.seconds(10),
                                           healthy_threshold_count=2,
                                           unhealthy_threshold_count=2),
            deregistration_delay=Duration.seconds(10))
        return (route53.RecordTarget.from_alias(r53targets.LoadBalancerTarget(self.alb)),
                self.alb.load_balancer_dns_name,
                self.alb.load_balancer_canonical_hosted_zone_id)

    # -- Lambda ------------------------------------------------------------------------------

    def _lambda_app(self, vpc: ec2.IVpc, database: DatabaseStack,
                    env: dict[str, str]) -> tuple[route53.RecordTarget, str, str]:
        v, r = self.view, self.region_spec
        role = lambda_role(self, "AppRole", vpc=True)
        self._allow_secret(role, database)
        self._allow_lease(role)
        self._allow_sessions(role, database)
        sg = ec2.SecurityGroup(self, "AppFnSg", vpc=vpc, description="app Lambda")
        self.app_function = lambda_.Function(
            self, "AppFn", function_name=v.names.app_function(r.aws_region),
            runtime=LAMBDA_RUNTIME, handler="regionguard.app.lambda_handler.handler",
            code=lambda_code(self), role=role, vpc=vpc, security_groups=[sg],
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
            memory_size=512, timeout=Duration.seconds(15), environment=env,
            tracing=lambda_.Tracing.ACTIVE,
            log_group=log_group(self, "AppFnLogs", self.log_key),
        )
        justify(self.app_function, RUNTIME_NAG)
        justify(role, {"AwsSolutions-IAM5": "xray:PutTraceSegments and PutTelemetryRecords "
                       "(active tracing) support no resource scoping"})
        target: lambda_.IFunction = self.app_function
        if v.settings.provisioned_concurrency and (
                r.home_role is Role.PRIMARY or r.standby_capacity):
            target = lambda_.Alias(
                self, "Live", alias_name="live", version=self.app_function.current_version,
                provisioned_concurrent_executions=v.settings.provisioned_concurrency)
        cors = v.settings.cors_origins
        self.http_api = apigw.HttpApi(
            self, "AppApi", api_name=f"{v.names.app}-{r.name}",
            default_integration=integrations.HttpLambdaIntegration("App", target),
            disable_execute_api_endpoint=True,
            cors_preflight=apigw.CorsPreflightOptions(
                allow_origins=list(cors), allow_methods=[
                    apigw.CorsHttpMethod.GET, apigw.CorsHttpMethod.POST,
                    apigw.CorsHttpMethod.DELETE, apigw.CorsHttpMethod.OPTIONS],
                allow_headers=["content-type", "authorization"],
                expose_headers=["retry-after", "x-regionguard-written-in"],
                max_age=Duration.hours(1)) if cors else None)
        self._access_logs(self.http_api, "AppApiLogs")
        justify(self.http_api, {"AwsSolutions-APIG4": "the workload API is public by design "
                                "(orders); only /health-check carries an authorizer"})
        domain = apigw.DomainName(self, "Domain", domain_name=self.host,
                                  certificate=self.certificate)
        apigw.ApiMapping(self, "Mapping", api=self.http_api, domain_name=domain)
        self.api_domain = domain
        # `<domain>` (the failover or latency record, and CloudFront's API origin) reaches this
        # Region's API only if the API knows that name too: API Gateway routes by Host
        shared = apigw.DomainName(self, "SharedDomain", domain_name=v.settings.domain,
                                  certificate=self.certificate)
        apigw.ApiMapping(self, "SharedMapping", api=self.http_api, domain_name=shared)
        self._shared_alias = (shared.regional_domain_name, shared.regional_hosted_zone_id)
        return (route53.RecordTarget.from_alias(r53targets.ApiGatewayv2DomainProperties(
                    domain.regional_domain_name, domain.regional_hosted_zone_id)),
                domain.regional_domain_name, domain.regional_hosted_zone_id)

    def _access_logs(self, api: apigw.HttpApi, id: str) -> None:
        """Access logs and the stage's throttling (seed 002), from the topology."""
        group = log_group(self, id, self.log_key)
        stage = api.default_stage.node.default_child  # type: ignore[union-attr]
        stage.default_route_settings = apigw.CfnStage.RouteSettingsProperty(  # type: ignore[union-attr]
            throttling_rate_limit=self.view.settings.api_rate_limit,
            throttling_burst_limit=self.view.settings.api_burst_limit)
        stage.access_log_settings = apigw.CfnStage.AccessLogSettingsProperty(  # type: ignore[union-attr]
            destination_arn=group.log_group_arn,
            format='{"requestId":"$context.requestId","ip":"$context.identity.sourceIp",'
                   '"route":"$context.routeKey","status":"$context.status",'
                   '"latency":"$context.responseLatency"}')

    def _allow_lease(self, role: iam.IRole) -> None:
        """The app reads the arbiter's `state` item (its write lease) from either replica, and
        writes only its own Region's lease record there (`until_s`, nothing else)."""
        n = self.view.names
        tables = [n.arn("dynamodb", r, f"table/{n.state_table()}")
                  for r in self.view.replica_regions]
        role.add_to_principal_policy(iam.PolicyStatement(
            actions=list(APP_LEASE_READ_ACTIONS), resources=tables))
        role.add_to_principal_policy(iam.PolicyStatement(
            actions=list(APP_LEASE_RECORD_ACTIONS), resources=tables,
            conditions=app_lease_record_condition(self.region_spec.name)))

    def _allow_sessions(self, role: iam.IRole, database: DatabaseStack) -> None:
        """The app's sessions: its own Region's replica only, with the actions the registry
        names (never the other Region's, which it never calls), and that replica's key
        (this Region's database stack holds it) only through DynamoDB in this Region."""
        r = self.region_spec.aws_region
        role.add_to_principal_policy(iam.PolicyStatement(
            actions=list(APP_SESSION_ACTIONS),
            resources=app_session_resources(self.view.names, r)))
        role.add_to_principal_policy(iam.PolicyStatement(
            actions=list(SESSION_KEY_ACTIONS), resources=[database.sessions_key.key_arn],
            conditions={"StringEquals": {"kms:ViaService": f"dynamodb.{r}.amazonaws.com"}}))

    def _allow_secret(self, role: iam.IRole, database: DatabaseStack) -> None:
        """Read the DB secret in this Region (the primary's secret, or its replica) through the
        role's own policy (a grant on the secret and key would make the database stack depend
        on this one). The primary's copy is encrypted with the database CMK; a replica with
        Secrets Manager's key of its Region, which needs no grant."""
        r = self.region_spec.aws_region
        role.add_to_principal_policy(iam.PolicyStatement(
            actions=["secretsmanager:GetSecretValue"],
            resources=[self.view.names.db_secret_arn_pattern(r),
                       self.view.names.admin_secret_arn_pattern(r),
                       *([self.view.names.origin_secret_arn_pattern(r)]
                         if self.view.serverless else [])]))
        if not database.endpoint_host:  # the restored instance's endpoint, by its identifier
            role.add_to_principal_policy(iam.PolicyStatement(
                actions=["rds:DescribeDBInstances"],
                resources=[self.view.names.arn("rds", r, f"db:{database.restore_into}")]))
        if database.secret is not None:
            role.add_to_principal_policy(iam.PolicyStatement(
                actions=["kms:Decrypt"], resources=[database.key.key_arn]))
        if self.admin_key is not None:
            role.add_to_principal_policy(iam.PolicyStatement(
                actions=["kms:Decrypt"], resources=[self.admin_key.key_arn]))

    # -- DNS ---------------------------------------------------------------------------------

    def _records(self, target: route53.RecordTarget, dns_name: str, zone_id: str) -> None:
        """`<region>.<domain>`, and this region's half of `<domain>`: owned here, never edited
        by the engine. Its health check asks this region's own entry point, so DNS follows the
        write lease (failover) or the region's health (latency) on Route 53's data plane."""
        v, r = self.view, self.region_spec
        route53.ARecord(self, "RegionalRecord", zone=self.zone, record_name=self.host,
                        target=target)
        shared_dns, shared_zone = getattr(self, "_shared_alias", (dns_name, zone_id))
        props: dict[str, Any] = {
            "hosted_zone_id": v.settings.hosted_zone_id, "name": v.settings.domain,
            "set_identifier": r.name,
            "health_check_id": self._region_health_check().attr_health_check_id,
        }
        if v.settings.dns_record == "cname":  # its own TTL: clients follow a failover sooner
            props.update(type="CNAME", ttl=str(v.settings.dns_ttl_s),
                         resource_records=[shared_dns])
        else:  # the target's TTL (an ALB's 60 s); alias queries are not billed
            props.update(type="A", alias_target=route53.CfnRecordSet.AliasTargetProperty(
                dns_name=shared_dns, hosted_zone_id=shared_zone, evaluate_target_health=True))
        if v.routing == "latency":
            props["region"] = r.aws_region
        else:
            props["failover"] = "PRIMARY" if r.home_role is Role.PRIMARY else "SECONDARY"
        route53.CfnRecordSet(self, "AppRecord", **props)

    def _region_health_check(self) -> route53.CfnHealthCheck:
        """HTTPS on this region's host: `/health/route` (200 only while the region holds the
        write lease) for failover records, `/health/deep` for latency records. Route 53's
        checkers are a global data plane: no Region, and no engine call, is needed for DNS to
        follow."""
        v = self.view
        path = "/health/deep" if v.routing == "latency" else "/health/route"
        return route53.CfnHealthCheck(self, "RegionHealthCheck", health_check_config=(
            route53.CfnHealthCheck.HealthCheckConfigProperty(
                type="HTTPS", fully_qualified_domain_name=self.host, resource_path=path,
                port=443, request_interval=v.settings.dns_check_interval_s,
                failure_threshold=v.settings.dns_failure_threshold)),
            health_check_tags=[route53.CfnHealthCheck.HealthCheckTagProperty(
                key="Name", value=f"{v.names.app}-{self.region_spec.name}-route")])

    # -- /health-check -----------------------------------------------------------------------

    def _health_domain(self, api: apigw.HttpApi) -> None:
        """`health.<domain>`, latency-routed to this Region's health API while this Region's
        app answers at all (`/health`, shallow: any live Region can report every Region's
        health from its own replica of the state table)."""
        v, r = self.view, self.region_spec
        domain = apigw.DomainName(self, "HealthDomain", domain_name=v.names.health_host(),
                                  certificate=self.certificate)
        apigw.ApiMapping(self, "HealthMapping", api=api, domain_name=domain)
        check = route53.CfnHealthCheck(self, "HealthApiCheck", health_check_config=(
            route53.CfnHealthCheck.HealthCheckConfigProperty(
                type="HTTPS", fully_qualified_domain_name=self.host, resource_path="/health",
                port=443, request_interval=30, failure_threshold=3)),
            health_check_tags=[route53.CfnHealthCheck.HealthCheckTagProperty(
                key="Name", value=f"{v.names.app}-{r.name}-alive")])
        route53.CfnRecordSet(
            self, "HealthRecord", hosted_zone_id=v.settings.hosted_zone_id,
            name=v.names.health_host(), type="A", set_identifier=r.name, region=r.aws_region,
            alias_target=route53.CfnRecordSet.AliasTargetProperty(
                dns_name=domain.regional_domain_name,
                hosted_zone_id=domain.regional_hosted_zone_id, evaluate_target_health=False),
            health_check_id=check.attr_health_check_id)

    def _health_check_api(self, table_name: str) -> None:
        """GET /health-check behind a Cognito JWT authorizer, served by the function that a
        schedule also runs every minute to write this region's health into the global table."""
        v, r = self.view, self.region_spec
        pool = cognito.UserPool(
            self, "Users", self_sign_up_enabled=False, mfa=cognito.Mfa.REQUIRED,
            mfa_second_factor=cognito.MfaSecondFactor(otp=True, sms=False),
            password_policy=cognito.PasswordPolicy(
                min_length=14, require_digits=True, require_lowercase=True,
                require_symbols=True, require_uppercase=True),
            feature_plan=cognito.FeaturePlan.PLUS,
            standard_threat_protection_mode=cognito.StandardThreatProtectionMode.FULL_FUNCTION,
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY)
        client = pool.add_client("HealthClient", auth_flows=cognito.AuthFlow(user_srp=True),
                                 generate_secret=False)
        role = lambda_role(self, "HealthRole", vpc=False)
        table_arn = v.names.arn("dynamodb", r.aws_region, f"table/{table_name}")
        role.add_to_policy(iam.PolicyStatement(
            actions=["dynamodb:PutItem", "dynamodb:GetItem"],
            resources=[table_arn]))
        self.health_function = lambda_.Function(
            self, "HealthFn", function_name=v.names.health_function(r.aws_region),
            runtime=LAMBDA_RUNTIME, handler="regionguard.providers.aws.health.handler",
            code=lambda_code(self), role=role, timeout=Duration.seconds(10), memory_size=256,
            environment={"RG_REGION": r.name, "RG_STATE_TABLE": table_name,
                         "RG_REGIONS": ",".join(x.name for x in v.regions),
                         "RG_HEALTH_URL": f"https://{self.host}/health/deep"},
            log_group=log_group(self, "HealthFnLogs", self.log_key),
        )
        justify(self.health_function, RUNTIME_NAG)
        events.Rule(self, "HealthSchedule", schedule=events.Schedule.rate(Duration.minutes(1)),
                    targets=[targets.LambdaFunction(self.health_function)])
        api = apigw.HttpApi(self, "HealthApi", api_name=f"{v.names.app}-health-{r.name}",
                            disable_execute_api_endpoint=True)  # only by its custom domain
        self._access_logs(api, "HealthApiLogs")
        self._health_domain(api)
        authorizer = authorizers.HttpJwtAuthorizer(
            "Cognito", jwt_issuer=f"https://cognito-idp.{r.aws_region}.amazonaws.com/"
                                  f"{pool.user_pool_id}",
            jwt_audience=[client.user_pool_client_id])
        api.add_routes(path="/health-check", methods=[apigw.HttpMethod.GET],
                       integration=integrations.HttpLambdaIntegration(
                           "Health", self.health_function),
                       authorizer=authorizer)
        self.health_api = api
        self.user_pool = pool
