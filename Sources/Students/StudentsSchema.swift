internal import Postgres

/// The students context's own tables, in its own schema: the read model of the student
/// aggregate (written in the same transaction as its events) and which card is whose.
enum StudentsSchema {
  static let migrations = [
    Migration(version: 2001, name: "students.read-model", sql: """
      CREATE SCHEMA IF NOT EXISTS students;
      -- Each student as of their newest event; `state` is the campus.students.v1.Student message.
      CREATE TABLE students.students (
        student_id text PRIMARY KEY,
        version bigint NOT NULL CHECK (version > 0),
        status int NOT NULL,
        program text NOT NULL,
        state bytea NOT NULL
      );
      CREATE INDEX students_by_status ON students.students (status, student_id);
      CREATE INDEX students_by_program ON students.students (program, student_id);
      -- Every card ever issued belongs to one student for good (lost cards stay theirs).
      CREATE TABLE students.cards (
        card_id text PRIMARY KEY,
        student_id text NOT NULL REFERENCES students.students (student_id)
      );
      """),
    Migration(version: 2002, name: "students.keys", sql: """
      -- Each student's key for their personal fields in the log (AES-256-GCM); erasing the
      -- student deletes it, and every copy of those fields with it.
      CREATE TABLE students.keys (
        student_id text PRIMARY KEY,
        key bytea NOT NULL
      );
      """),
  ]
}
