"""The order in which the stacks must be deployed, and why.

Stacks in one Region that share a value get a dependency from CDK. Stacks in two Regions never
share values (they address each other by deterministic names), so CloudFormation cannot know
that the standby's read replica needs the primary's instance to exist, or that the primary's
bucket replicates into the standby's (and a stack that names a resource by a deterministic
name, such as the sessions table's keys by their alias, shares no value with its owner even in
one Region). Those orderings are declared here, with their reason, as explicit stack
dependencies: `cdk deploy --all` honours them, and `regionguard synth --plan` prints them as
waves (every stack of a wave may deploy in parallel).
"""

from __future__ import annotations

import aws_cdk as cdk

from regionguard.infra.model import BuiltApp, Edge


def cross_region_edges(built: BuiltApp) -> list[Edge]:
    """The orderings between Regions (and within one, by name) that no shared value
    expresses."""
    view = built.view
    primary = built.regions[view.primary.name]
    standby = built.regions[view.standby.name]
    edges: list[Edge] = []
    if view.replica:
        what = ("the secondary cluster joins the global cluster"
                if view.settings.database == "aurora-global"
                else "the read replica is created from the primary instance")
        edges.append(Edge(primary.database, standby.database, what))
    # the secret's replica in the standby Region is created by the primary's database stack
    edges.append(Edge(primary.database, standby.compute,
                      "the app reads the database secret's replica in its own Region"))
    if built.state is not None:
        # the state stack names each replica's key by its alias: no value tells CloudFormation
        # (in the primary's Region either), so the keys' stacks go first
        for regional in (primary, standby):
            edges.append(Edge(regional.database, built.state,
                              "the sessions table's replica in this Region is encrypted "
                              "with its key"))
    for regional in (primary, standby):
        if built.state is not None and regional.compute.region != built.state.region:
            edges.append(Edge(built.state, regional.compute,
                              "the app confirms its write lease from the arbiter table"))
    edges.append(Edge(standby.backup, primary.backup,
                      "the backup plan copies into the other Region's vault"))
    if primary.static is not None and standby.static is not None:
        edges.append(Edge(standby.static, primary.static,
                          "replication needs its destination bucket (versioned)"))
    if built.edge is not None:
        if built.state is not None and built.state.region != built.edge.region:
            edges.append(Edge(built.state, built.edge,
                              "CloudFront's origin header resolves the origin secret's replica"))
        for regional in (primary, standby):
            if regional.static is not None:
                edges.append(Edge(regional.static, built.edge,
                                  "CloudFront reads both Regions' buckets"))
    for guard in built.guards.values():
        if built.state is not None:
            edges.append(Edge(built.state, guard, "the guard's arbiter table"))
    standby_guard = built.guards.get(view.standby.aws_region)
    if built.trigger is not None and standby_guard is not None:
        edges.append(Edge(standby_guard, built.trigger,
                          "the alarm topic subscribes the standby Region's guard"))
    return edges


def declare(built: BuiltApp) -> list[Edge]:
    """Add every cross-Region ordering as a stack dependency; return them (with reasons)."""
    edges = cross_region_edges(built)
    for e in edges:
        e.after.add_stack_dependency(e.before, e.why)
    return edges


def waves(assembly: cdk.cx_api.CloudAssembly) -> list[list[str]]:
    """Topological levels of the synthesized stacks' dependencies (the references CDK found
    and the orderings declared above): wave N needs only waves before it."""
    stacks = {s.id: s for s in assembly.stacks}
    needs = {sid: {d.id for d in s.dependencies if d.id in stacks} for sid, s in stacks.items()}
    out: list[list[str]] = []
    done: set[str] = set()
    while len(done) < len(stacks):
        ready = sorted(sid for sid in stacks if sid not in done and needs[sid] <= done)
        if not ready:
            raise ValueError("stack dependencies form a cycle: "
                             + ", ".join(sorted(set(stacks) - done)))
        out.append([stacks[sid].stack_name for sid in ready])
        done.update(ready)
    return out
