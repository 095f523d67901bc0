-- The workload's domain table (MySQL). `region` is the database region that accepted the write
-- and `epoch` the fencing token it held: two rows with one epoch and two regions are a split
-- brain. Lengths follow the API's limits (app/main.py).
CREATE TABLE IF NOT EXISTS orders (
    id          BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    request_id  VARCHAR(128) NOT NULL UNIQUE,
    customer    VARCHAR(200) NOT NULL,
    item        VARCHAR(200) NOT NULL,
    quantity    INT NOT NULL CHECK (quantity > 0),
    region      VARCHAR(64) NOT NULL,
    served_by   VARCHAR(64) NOT NULL,
    epoch       BIGINT NOT NULL,
    created_at  TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
