-- The fencing token's row (the AWS world fences by the write lease; the row keeps the same
-- shape as PostgreSQL's for /health/deep).
CREATE TABLE IF NOT EXISTS regionguard_epoch (
    id          INT NOT NULL PRIMARY KEY CHECK (id = 1),
    epoch       BIGINT NOT NULL,
    region      VARCHAR(64),
    updated_at  TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
) ENGINE = InnoDB;
INSERT INTO regionguard_epoch (id, epoch) VALUES (1, 1) ON DUPLICATE KEY UPDATE id = id;

-- `verify` writes here, never into user data.
CREATE TABLE IF NOT EXISTS regionguard_canary (
    id          BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    token       VARCHAR(128) NOT NULL UNIQUE,
    region      VARCHAR(64) NOT NULL,
    epoch       BIGINT NOT NULL,
    created_at  TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
