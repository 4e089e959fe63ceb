internal import Postgres

/// The analytics context's own tables, in its own schema: projections of the scan stream,
/// and how far into the log they are.
enum AnalyticsSchema {
  static let migrations = [
    Migration(version: 4001, name: "analytics.projections", sql: """
      CREATE SCHEMA IF NOT EXISTS analytics;
      -- The last log position the projections include: each page of events is applied in one
      -- transaction that moves it, so a page applied again changes nothing.
      CREATE TABLE analytics.progress (
        singleton bool PRIMARY KEY DEFAULT true CHECK (singleton),
        position bigint NOT NULL
      );
      INSERT INTO analytics.progress (position) VALUES (0);
      CREATE TABLE analytics.occupancy (
        location text PRIMARY KEY,
        occupancy bigint NOT NULL CHECK (occupancy >= 0),
        updated_at timestamptz NOT NULL
      );
      CREATE TABLE analytics.hourly (
        location text NOT NULL,
        hour timestamptz NOT NULL,
        scans_in bigint NOT NULL,
        scans_out bigint NOT NULL,
        PRIMARY KEY (location, hour)
      );
      CREATE INDEX hourly_by_hour ON analytics.hourly (hour);
      CREATE TABLE analytics.daily_visitors (
        day date NOT NULL,
        location text NOT NULL,
        card_id text NOT NULL,
        PRIMARY KEY (day, location, card_id)
      );
      CREATE TABLE analytics.student_days (
        student_id text NOT NULL,
        day date NOT NULL,
        scans bigint NOT NULL,
        first_scan timestamptz NOT NULL,
        last_scan timestamptz NOT NULL,
        PRIMARY KEY (student_id, day)
      );
      CREATE TABLE analytics.student_day_locations (
        student_id text NOT NULL,
        day date NOT NULL,
        location text NOT NULL,
        PRIMARY KEY (student_id, day, location)
      );
      -- Moves the position from `expected` to `through`, or fails (QA001) when another
      -- projector or a rebuild moved it first: the page is then read again.
      CREATE FUNCTION analytics.advance(expected bigint, through bigint) RETURNS void
      LANGUAGE plpgsql AS $$
      BEGIN
        UPDATE analytics.progress SET position = through WHERE position = expected;
        IF NOT FOUND THEN
          RAISE EXCEPTION 'the analytics projection is no longer at %', expected USING ERRCODE = 'QA001';
        END IF;
      END $$;
      """),
    Migration(version: 4002, name: "analytics.visitor-counts", sql: """
      -- Unique visitors over a range of days without a distinct count over every visit per
      -- query. For each visit (a card's first scan at a location on a day), `since` is the day of
      -- that card's previous visit there ('-infinity' when it has none in the 40 days before). A
      -- card visits a location in [d1, d2] (at most 32 days) exactly once with since < d1, on its
      -- first day in the range, so the range's unique visitors are
      --   sum(visitors) WHERE day BETWEEN d1 AND d2 AND since < d1
      -- over at most 41 rows per location and day.
      CREATE TABLE analytics.location_visits (
        location text NOT NULL,
        day date NOT NULL,
        since date NOT NULL,
        visitors bigint NOT NULL,
        PRIMARY KEY (location, day, since)
      );
      CREATE INDEX location_visits_by_day ON analytics.location_visits (day);
      CREATE INDEX daily_visitors_by_card ON analytics.daily_visitors (location, card_id, day);

      CREATE FUNCTION analytics.visit_since(day date, previous date) RETURNS date
      LANGUAGE sql IMMUTABLE AS $$
        SELECT CASE WHEN previous IS NULL OR previous < day - 40 THEN '-infinity'::date ELSE previous END
      $$;

      -- Moves the counts of the (location, card) pairs whose visits changed from what their
      -- visits were before (inserted: without `days`; deleted: with them) to what they are now.
      CREATE FUNCTION analytics.recount_visits(locations text[], cards text[], days date[], inserted bool) RETURNS void
      LANGUAGE plpgsql AS $$
      DECLARE
        zero_locations text[];
        zero_days date[];
        zero_since date[];
      BEGIN
        WITH changed AS (
          SELECT * FROM unnest(locations, cards, days) AS c(location, card_id, day)
        ), visits AS (
          SELECT v.location, v.card_id, v.day, true AS is_now,
                 NOT (inserted AND EXISTS (SELECT 1 FROM changed c WHERE (c.location, c.card_id, c.day) = (v.location, v.card_id, v.day))) AS was
          FROM analytics.daily_visitors v
          WHERE (v.location, v.card_id) IN (SELECT DISTINCT c.location, c.card_id FROM changed c)
          UNION ALL
          SELECT c.location, c.card_id, c.day, false, true FROM changed c WHERE NOT inserted
        ), counted AS (
          SELECT v.location, v.day, analytics.visit_since(v.day, lag(v.day) OVER (PARTITION BY v.location, v.card_id ORDER BY v.day)) AS since, 1 AS n
          FROM visits v WHERE v.is_now
          UNION ALL
          SELECT v.location, v.day, analytics.visit_since(v.day, lag(v.day) OVER (PARTITION BY v.location, v.card_id ORDER BY v.day)), -1
          FROM visits v WHERE v.was
        ), moved AS (
          INSERT INTO analytics.location_visits AS l (location, day, since, visitors)
          SELECT c.location, c.day, c.since, sum(c.n) FROM counted c GROUP BY c.location, c.day, c.since HAVING sum(c.n) <> 0
          ON CONFLICT (location, day, since) DO UPDATE SET visitors = l.visitors + EXCLUDED.visitors
          RETURNING l.location, l.day, l.since, l.visitors
        )
        SELECT array_agg(m.location), array_agg(m.day), array_agg(m.since) INTO zero_locations, zero_days, zero_since
        FROM moved m WHERE m.visitors = 0;
        -- A count that reached 0 is no row, as if it had never been (a rebuild makes none).
        DELETE FROM analytics.location_visits l USING unnest(zero_locations, zero_days, zero_since) AS z(location, day, since)
        WHERE (l.location, l.day, l.since) = (z.location, z.day, z.since) AND l.visitors = 0;
      END $$;

      -- Kept by triggers, so that every writer of analytics.daily_visitors (this version's
      -- projection, an older one during a rolling upgrade, a rebuild) keeps the counts too.
      CREATE FUNCTION analytics.visits_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM analytics.recount_visits(array_agg(location), array_agg(card_id), array_agg(day), true) FROM new_visits;
        RETURN NULL;
      END $$;
      CREATE FUNCTION analytics.visits_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM analytics.recount_visits(array_agg(location), array_agg(card_id), array_agg(day), false) FROM old_visits;
        RETURN NULL;
      END $$;
      CREATE FUNCTION analytics.visits_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        TRUNCATE analytics.location_visits;
        RETURN NULL;
      END $$;
      CREATE TRIGGER count_inserted AFTER INSERT ON analytics.daily_visitors
        REFERENCING NEW TABLE AS new_visits FOR EACH STATEMENT EXECUTE FUNCTION analytics.visits_inserted();
      CREATE TRIGGER count_deleted AFTER DELETE ON analytics.daily_visitors
        REFERENCING OLD TABLE AS old_visits FOR EACH STATEMENT EXECUTE FUNCTION analytics.visits_deleted();
      CREATE TRIGGER count_truncated AFTER TRUNCATE ON analytics.daily_visitors
        FOR EACH STATEMENT EXECUTE FUNCTION analytics.visits_truncated();

      -- The visits projected before this version.
      INSERT INTO analytics.location_visits (location, day, since, visitors)
      SELECT location, day, since, count(*) FROM (
        SELECT location, day, analytics.visit_since(day, lag(day) OVER (PARTITION BY location, card_id ORDER BY day)) AS since
        FROM analytics.daily_visitors
      ) v GROUP BY location, day, since;
      """),
  ]

  /// The projection's tables, emptied by a rebuild (analytics.location_visits with
  /// analytics.daily_visitors, by its trigger).
  static let tables: StaticString = "analytics.occupancy, analytics.hourly, analytics.daily_visitors, analytics.student_days, analytics.student_day_locations"
}
