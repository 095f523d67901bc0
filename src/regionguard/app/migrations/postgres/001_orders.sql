-- The workload's domain table. `region` is the database region that accepted the write and
-- `epoch` the fencing token it held: two rows with one epoch and two regions are a split brain.
CREATE TABLE IF NOT EXISTS orders (
    id          bigserial PRIMARY KEY,
    request_id  text NOT NULL UNIQUE,
    customer    text NOT NULL,
    item        text NOT NULL,
    quantity    integer NOT NULL CHECK (quantity > 0),
    region      text NOT NULL,
    served_by   text NOT NULL,
    epoch       bigint NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
