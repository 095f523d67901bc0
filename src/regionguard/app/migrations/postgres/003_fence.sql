-- The database's own fence (a dead man's switch): while its region's apps hold the write lease
-- they keep `writable_until` ahead, on this database's own clock, by what is left of their
-- lease; a transaction that changes `orders` and commits after it is refused by the database
-- itself (a constraint trigger, deferred to the commit), whoever sends it. So a primary whose
-- region lost its lease (cut off, or revoked) stops taking writes within the lease even from a
-- client that bypasses the app, and nothing outside the region has to reach it.
-- No row: no fence (an app run without a lease, which writes only with the front door's epoch).
CREATE TABLE IF NOT EXISTS regionguard_fence (
    id              integer PRIMARY KEY CHECK (id = 1),
    writable_until  timestamptz NOT NULL,
    region          text NOT NULL,
    epoch           bigint NOT NULL
);

CREATE OR REPLACE FUNCTION regionguard_fence_check() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    until timestamptz;
BEGIN
    SELECT writable_until INTO until FROM regionguard_fence WHERE id = 1;
    IF until IS NOT NULL AND clock_timestamp() > until THEN
        RAISE EXCEPTION 'regionguard fence: this database''s region holds no write lease since %', until
            USING ERRCODE = 'RGF01',
                  HINT = 'writes go to the region that holds the write lease';
    END IF;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS regionguard_fence_orders ON orders;
CREATE CONSTRAINT TRIGGER regionguard_fence_orders
    AFTER INSERT OR UPDATE OR DELETE ON orders
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION regionguard_fence_check();
