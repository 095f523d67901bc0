"""AWS WAF web ACLs (seed 002): AWS managed rule groups (common exploits, known bad inputs, IP
reputation) and a rate-based rule per client IP. CLOUDFRONT scope (us-east-1) for the edge
distribution, which fronts the static site and the API (WAF cannot attach to an API Gateway
HTTP API); REGIONAL scope for an ALB."""

from __future__ import annotations

from aws_cdk import aws_wafv2 as waf
from constructs import Construct

MANAGED = ("AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet",
           "AWSManagedRulesAmazonIpReputationList")


def _visibility(name: str) -> waf.CfnWebACL.VisibilityConfigProperty:
    return waf.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True, metric_name=name, sampled_requests_enabled=True)


def web_acl(scope: Construct, id: str, *, name: str, waf_scope: str,
            rate_limit: int) -> waf.CfnWebACL:
    rules = [waf.CfnWebACL.RuleProperty(
        name=group, priority=i,
        override_action=waf.CfnWebACL.OverrideActionProperty(none={}),
        statement=waf.CfnWebACL.StatementProperty(
            managed_rule_group_statement=waf.CfnWebACL.ManagedRuleGroupStatementProperty(
                vendor_name="AWS", name=group)),
        visibility_config=_visibility(group)) for i, group in enumerate(MANAGED)]
    rules.append(waf.CfnWebACL.RuleProperty(
        name="RatePerIp", priority=len(MANAGED),
        action=waf.CfnWebACL.RuleActionProperty(block={}),
        statement=waf.CfnWebACL.StatementProperty(
            rate_based_statement=waf.CfnWebACL.RateBasedStatementProperty(
                limit=rate_limit, aggregate_key_type="IP")),
        visibility_config=_visibility("RatePerIp")))
    return waf.CfnWebACL(
        scope, id, name=name, scope=waf_scope,
        default_action=waf.CfnWebACL.DefaultActionProperty(allow={}),
        visibility_config=_visibility(name), rules=rules)
