-- The fencing token: one row, written by `promote` on the new primary. The app refuses a write
-- whose front-door epoch header differs from this value.
CREATE TABLE IF NOT EXISTS regionguard_epoch (
    id          integer PRIMARY KEY CHECK (id = 1),
    epoch       bigint NOT NULL,
    region      text,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO regionguard_epoch (id, epoch) VALUES (1, 1) ON CONFLICT (id) DO NOTHING;

-- `verify` writes here, never into user data.
CREATE TABLE IF NOT EXISTS regionguard_canary (
    id          bigserial PRIMARY KEY,
    token       text NOT NULL UNIQUE,
    region      text NOT NULL,
    epoch       bigint NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
