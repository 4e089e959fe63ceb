internal import Postgres

/// The accounts context's own tables, in its own schema: each account as of its newest event,
/// and every credit and charge by the caller's id (what makes a retried request a no-op).
enum AccountsSchema {
  static let migrations = [
    Migration(version: 5001, name: "accounts.tables", sql: """
      CREATE SCHEMA IF NOT EXISTS accounts;
      CREATE TABLE accounts.accounts (
        student_id text PRIMARY KEY,
        version bigint NOT NULL CHECK (version > 0),
        balance_cents bigint NOT NULL CHECK (balance_cents >= 0),
        charged_cents bigint NOT NULL
      );
      -- kind: 'credit' or 'charge'; refunded: a charge given back.
      CREATE TABLE accounts.movements (
        movement_id text NOT NULL,
        kind text NOT NULL,
        student_id text NOT NULL REFERENCES accounts.accounts (student_id),
        amount_cents bigint NOT NULL CHECK (amount_cents > 0),
        refunded boolean NOT NULL DEFAULT false,
        PRIMARY KEY (kind, movement_id)
      );
      """),
  ]
}
