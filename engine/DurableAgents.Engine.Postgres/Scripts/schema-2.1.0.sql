-- DurableAgents PostgreSQL schema 2.1.0. Released: never edit; add schema-x.y.z.sql instead.
-- Host liveness: every host with a worker heartbeats here, counting up beats. A host whose beats stop
-- changing for DurableAgents:HostDeadAfter, as another host observes it on its own clock (so clock skew
-- between hosts does not matter), has its leases released for the others at once; a host starting with
-- the same id releases what its previous run held. Lease owners are "<host id>/...".
CREATE TABLE {schema}.hosts (
    host_id       text   NOT NULL PRIMARY KEY,
    incarnation   text   NOT NULL,
    started_at    bigint NOT NULL,
    heartbeat_at  bigint NOT NULL,
    beats         bigint NOT NULL DEFAULT 0
);
