"""Sessions on AWS: this Region's replica of the DynamoDB global table, and no other.

`PutItem` without a condition is the whole write: DynamoDB replicates it to the other Region
asynchronously and resolves concurrent writes to one item by last writer wins ("global tables
use a last writer wins reconciliation", DynamoDB developer guide, global tables: how it works),
so the app never needs a lock, a lease or a second Region to take a session. Reads are
eventually consistent, local, and filter expired items (TTL deletion is a background sweep).

Throttling is the client's to retry later (503 + Retry-After), as is a replica that does not
answer: a session store that is briefly unreachable must not become a server error.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from regionguard.app.errors import Unavailable
from regionguard.app.sessions import Route, Session

log = logging.getLogger("regionguard.app.sessions")

THROTTLED = frozenset({"ProvisionedThroughputExceededException", "ThrottlingException",
                       "RequestLimitExceeded"})


class DynamoDBSessions:
    uses_route = False  # no lease, no front door's epoch: every Region writes its replica

    def __init__(self, table: str, region: str, client: Any) -> None:
        """`client`: a boto3 DynamoDB client for `region` (this app's own Region)."""
        self.table, self.region, self.client = table, region, client

    def put(self, session: Session, route: Route) -> None:
        self._call("put_item", Item={
            "id": {"S": session.id},
            "data": {"S": json.dumps(session.data, separators=(",", ":"))},
            "expires_at": {"N": str(int(session.expires_at))},  # whole seconds (the API's)
            "updated_at": {"N": f"{session.updated_at:.3f}"},
            "region": {"S": session.region},
        })

    def get(self, session_id: str) -> Session | None:
        item = self._call("get_item", Key={"id": {"S": session_id}}).get("Item")
        if item is None:
            return None
        try:
            return Session(id=item["id"]["S"], data=json.loads(item["data"]["S"]),
                           expires_at=float(item["expires_at"]["N"]),
                           updated_at=float(item["updated_at"]["N"]),
                           region=item["region"]["S"])
        except (KeyError, TypeError, ValueError):  # written by something else than this app
            log.error("session %s in %s is not in this app's form: %s", session_id,
                      self.region, sorted(item))
            raise Unavailable(f"session {session_id} is stored in a form this app cannot "
                              "read; write it again", retry_after_s=60) from None

    def delete(self, session_id: str, route: Route) -> None:
        self._call("delete_item", Key={"id": {"S": session_id}})

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        try:
            answer: dict[str, Any] = getattr(self.client, operation)(TableName=self.table,
                                                                     **kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in THROTTLED:
                raise Unavailable(f"the sessions table in {self.region} is throttling "
                                  "requests; retry shortly", retry_after_s=1) from None
            log.warning("sessions %s in %s failed: %s", operation, self.region, code)
            raise Unavailable(f"the sessions table in {self.region} refused the request "
                              f"({code}); retry shortly", retry_after_s=2) from None
        except BotoCoreError as exc:  # the Region's endpoint does not answer
            log.warning("sessions %s in %s: %s", operation, self.region, exc)
            raise Unavailable(f"the sessions table in {self.region} does not answer; retry "
                              "shortly", retry_after_s=2) from None
        return answer


def dynamodb_sessions(table: str, region: str, clients: Any = None) -> DynamoDBSessions:
    """The store for this Region's replica; boto3 is imported only in the AWS world."""
    from regionguard.providers.aws.clients import AwsClients

    clients = clients or AwsClients()
    return DynamoDBSessions(table, region, clients.get("dynamodb", region))
