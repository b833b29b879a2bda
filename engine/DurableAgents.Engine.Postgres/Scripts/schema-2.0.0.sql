-- DurableAgents PostgreSQL schema 2.0.0. Released: never edit; add schema-x.y.z.sql instead.
-- History and inbox rows hold Durable Task protocol events (Microsoft.DurableTask.Protobuf
-- HistoryEvent) as canonical protobuf JSON. A 1.x database that holds instances is refused at
-- start (its histories are in the pre-SDK format); an empty one is upgraded by this script.
ALTER TABLE {schema}.instances ADD COLUMN tags text;
