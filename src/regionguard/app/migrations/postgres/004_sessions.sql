-- Sessions and preferences (app/sessions): small JSON documents with an expiry, in the local
-- world only (on AWS they live in a DynamoDB global table). Expired rows are filtered on read.
CREATE TABLE IF NOT EXISTS sessions (
    id          text PRIMARY KEY,
    data        text NOT NULL,
    expires_at  double precision NOT NULL,
    updated_at  double precision NOT NULL,
    region      text NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_expires_at ON sessions (expires_at);

-- written under the write lease locally, so fenced like an order (003_fence.sql): a primary
-- whose region lost its lease refuses session writes too, from whoever sends them
DROP TRIGGER IF EXISTS regionguard_fence_sessions ON sessions;
CREATE CONSTRAINT TRIGGER regionguard_fence_sessions
    AFTER INSERT OR UPDATE OR DELETE ON sessions
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION regionguard_fence_check();
