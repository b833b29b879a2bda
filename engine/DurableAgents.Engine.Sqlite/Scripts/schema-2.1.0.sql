-- DurableAgents SQLite schema 2.1.0. Released: never edit; add schema-x.y.z.sql instead.
-- Host liveness: every host with a worker heartbeats here, counting up beats. A host whose beats stop
-- changing for DurableAgents:HostDeadAfter, as another host observes it on its own clock (so clock skew
-- between hosts does not matter), has its leases released for the others at once; a host starting with
-- the same id releases what its previous run held. Lease owners are "<host id>/...".
CREATE TABLE hosts (
    host_id       TEXT    NOT NULL PRIMARY KEY,
    incarnation   TEXT    NOT NULL,
    started_at    INTEGER NOT NULL,
    heartbeat_at  INTEGER NOT NULL,
    beats         INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
