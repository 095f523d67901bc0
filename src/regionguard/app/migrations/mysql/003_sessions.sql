-- Sessions and preferences (app/sessions), for an app without the DynamoDB table: small JSON
-- documents with an expiry; expired rows are filtered on read. Lengths follow the API's limits.
CREATE TABLE IF NOT EXISTS sessions (
    id          VARCHAR(128) NOT NULL PRIMARY KEY,
    data        TEXT NOT NULL,
    expires_at  DOUBLE NOT NULL,
    updated_at  DOUBLE NOT NULL,
    region      VARCHAR(64) NOT NULL,
    INDEX sessions_expires_at (expires_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
