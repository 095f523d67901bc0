"""The arbiter table's client: items by key, on the nearest replica that answers.

Every read and write of the arbiter goes through `ArbiterClient`, whichever port it serves (the
state store, approvals, readiness, the journal), so the replica order, the meaning of a failed
condition and the translation of AWS errors live here once. The guarantees, for every method:
- strongly consistent: a read sees every write acknowledged before it, on any replica (MRSC);
- bounded: each replica costs at most the clients' connect and read timeouts, and there are
  two (this Region's first, then whichever answered last, then the other); a site with no
  replica (the witness) sends its reads to both at once, and the first answer wins;
- `ConditionFailed` when a condition did not hold: an answer (another writer won), never
  retried on another replica;
- `ProviderError` when no replica answers; nothing is retried on the same replica (the
  caller's step owns the retry budget).
Writes are idempotent only as far as their conditions make them so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from regionguard.providers.aws.boundary import error_code, expected
from regionguard.providers.aws.context import AwsContext

CONDITION_FAILED = "ConditionalCheckFailedException"
T = TypeVar("T")
Item = dict[str, Any]  # an item in DynamoDB's typed form: {"epoch": {"N": "3"}, ...}


def _condition_failed(exc: BaseException) -> bool:
    return isinstance(exc, ClientError) and error_code(exc) == CONDITION_FAILED


class ConditionFailed(Exception):
    """A conditional write lost: the item is not in the expected state."""


def _key(key: str) -> Item:
    return {"pk": {"S": key}}


def _expression(condition: str | None, values: Mapping[str, Any] | None,
                names: Mapping[str, str] | None) -> dict[str, Any]:
    """DynamoDB's arguments for a condition and its placeholders (only those given: it
    refuses empty ones)."""
    out: dict[str, Any] = {}
    if condition is not None:
        out["ConditionExpression"] = condition
    if values:
        out["ExpressionAttributeValues"] = dict(values)
    if names:
        out["ExpressionAttributeNames"] = dict(names)
    return out


class ArbiterClient:
    """The arbiter table (`pk` is its only key), called on the nearest replica first."""

    def __init__(self, ctx: AwsContext) -> None:
        self.ctx = ctx
        self.table = ctx.names.state_table()
        self.nearest = ctx.clients.nearest(self.table, ctx.replica_order(), _condition_failed)
        # a site with no replica of its own (the witness, an operator's machine) races its
        # reads over both replicas: an outage of either costs it no timeout (writes are not
        # raced: a losing copy that lands late could overwrite a newer item); an app
        # region's site asks its own replica first
        self.races = ctx.runs_in not in ctx.view.replica_regions

    def get(self, key: str) -> Item | None:
        """The item at `key` (a strongly consistent read), None when there is none."""
        item: Item | None = self._call("get_item", Key=_key(key), ConsistentRead=True,
                                       race=True).get("Item")
        return item

    def put(self, key: str, attributes: Mapping[str, Any], *, condition: str | None = None,
            values: Mapping[str, Any] | None = None,
            names: Mapping[str, str] | None = None) -> None:
        """Replace the item at `key` with `attributes` (its `pk` added), if `condition` holds."""
        self._call("put_item", Item={**_key(key), **attributes},
                   **_expression(condition, values, names))

    def update(self, key: str, expression: str, *, condition: str | None = None,
               values: Mapping[str, Any] | None = None,
               names: Mapping[str, str] | None = None) -> None:
        """Apply the update `expression` to the item at `key`, if `condition` holds."""
        self._call("update_item", Key=_key(key), UpdateExpression=expression,
                   **_expression(condition, values, names))

    def delete(self, key: str, *, condition: str | None = None,
               values: Mapping[str, Any] | None = None,
               names: Mapping[str, str] | None = None) -> None:
        """Delete the item at `key` (nothing when there is none), if `condition` holds."""
        self._call("delete_item", Key=_key(key), **_expression(condition, values, names))

    def get_many(self, keys: Sequence[str]) -> list[Item]:
        """The items at `keys` that exist, in one strongly consistent batch read (at most 100
        keys; in no particular order)."""
        request = {self.table: {"Keys": [_key(k) for k in keys], "ConsistentRead": True}}

        def batch(region: str) -> list[Item]:  # a batch names the table per key set
            out = self.ctx.clients.get("dynamodb", region).batch_get_item(RequestItems=request)
            items: list[Item] = out.get("Responses", {}).get(self.table, [])
            return items

        return self._nearest("batch_get_item", batch, race=True)

    def scan(self, prefix: str) -> Iterator[list[Item]]:
        """The items whose key begins with `prefix`, a page at a time (strongly consistent).
        A replica failing part-way raises `ProviderError` after the pages already given."""
        kwargs: dict[str, Any] = {
            "FilterExpression": "begins_with(pk, :prefix)", "ConsistentRead": True,
            "ExpressionAttributeValues": {":prefix": {"S": prefix}}}
        while True:
            out = self._call("scan", race=True, **kwargs)
            yield list(out.get("Items", []))
            if "LastEvaluatedKey" not in out:
                return
            kwargs["ExclusiveStartKey"] = out["LastEvaluatedKey"]

    def _call(self, operation: str, race: bool = False, **kwargs: Any) -> dict[str, Any]:
        """The one dispatcher: `operation` on the table, nearest replica first (or raced,
        for a call whose repeat changes nothing, from a site with no replica)."""
        def call(region: str) -> dict[str, Any]:
            client = self.ctx.clients.get("dynamodb", region)
            result: dict[str, Any] = getattr(client, operation)(TableName=self.table, **kwargs)
            return result

        return self._nearest(operation, call, race)

    def _nearest(self, operation: str, call: Callable[[str], T], race: bool = False) -> T:
        """`call` on the nearest replica that answers; a failed condition is the one answer
        (it is not tried elsewhere), the loss of every replica a `ProviderError`."""
        with expected(f"arbiter {self.table} {operation}", CONDITION_FAILED) as lost:
            if race and self.races:
                return self.nearest.race(call)
            return self.nearest.call(call)
        raise ConditionFailed(lost.detail)
