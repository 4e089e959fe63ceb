internal import Postgres

/// The card office's own tables, in its own schema: each saga as of its newest event (the
/// runner's to-do list and GetSaga's answer), and every card number it handed out.
enum CardOfficeSchema {
  static let migrations = [
    Migration(version: 6001, name: "cards.tables", sql: """
      CREATE SCHEMA IF NOT EXISTS cards;
      -- `record` is the campus.cards.v1.Saga message; `traceparent` the call's that started it.
      CREATE TABLE cards.sagas (
        saga_id text PRIMARY KEY,
        version bigint NOT NULL CHECK (version > 0),
        state int NOT NULL,
        traceparent text NOT NULL DEFAULT '',
        record bytea NOT NULL
      );
      CREATE INDEX sagas_unfinished ON cards.sagas (saga_id) WHERE state IN (1, 3);
      CREATE SEQUENCE cards.number_seq;
      CREATE TABLE cards.numbers (
        card_id text PRIMARY KEY,
        saga_id text NOT NULL UNIQUE,
        released boolean NOT NULL DEFAULT false
      );
      """),
  ]
}
