-- DurableAgents SQLite schema 2.1.0. Released: never edit; add schema-x.y.z.sql instead.
-- Host liveness: every host with a worker heartbeats here. The leases of a host whose heartbeat is
-- older than DurableAgents:HostDeadAfter are released for the others at once; a host starting with the
-- same id releases what its previous run held. Lease owners are "<host id>/...".
CREATE TABLE hosts (
    host_id       TEXT    NOT NULL PRIMARY KEY,
    incarnation   TEXT    NOT NULL,
    started_at    INTEGER NOT NULL,
    heartbeat_at  INTEGER NOT NULL
) WITHOUT ROWID;
